"""polyarch merge: join per-platform images into one index, verify it, promote the tags."""

from __future__ import annotations

from typing import Any

import click

from polyarch.commands._common import (
    config_option,
    json_option,
    load_options,
    reporter,
    table_options,
)
from polyarch.platforms import Platform


@click.command("merge")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@table_options("merge")
@config_option
@click.option("--dry-run", is_flag=True, help="Resolve the sources and show the index; push"
                                              " nothing.")
@json_option
def command(sources: tuple[str, ...], dry_run: bool, json_mode: bool, **kw: Any) -> int:
    """Join SOURCEs (build descriptors from 'polyarch build --stage', or image references:
    tags or digests, single-platform images or indexes) into one index, verify it, and
    publish it under every -t tag, as 'publish' does."""
    from polyarch import ci, workflow
    from polyarch import merge as merging

    rep = reporter(json_mode)
    opts = load_options(kw)
    # Platforms given anywhere (command line, environment, config file) are expected;
    # else merge expects the union of the sources' platforms.
    expected: tuple[Platform, ...] | None = (
        opts.platforms if opts.origin("platforms") != "default" else None)
    try:
        done = merging.merge(opts, sources, rep, expected=expected, dry_run=dry_run)
    except workflow.PublishFailed as e:
        ci.write_outputs(e.result.to_json())
        if json_mode:
            rep.emit_json(e.result.to_json())
        raise
    if not dry_run:
        ci.write_outputs(done.result.to_json())
    if json_mode:
        rep.emit_json(done.to_json())
        return 0
    r = done.result
    if dry_run:
        rep.info(done.plan.index.data.decode().rstrip())
        return 0
    rep.info(f"index   {r.index_digest}")
    rep.table(None, ["platform", "digest", "build", "source"],
              [(str(e.platform), e.digest, e.mode, e.source.given) for e in done.plan.entries])
    for t in r.tags:
        rep.info(f"tag     {t}")
    return 0
