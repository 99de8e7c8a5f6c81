"""polyarch merge: join per-platform images into one index, verify it, push it, move the tags."""

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


@click.command("merge")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@table_options("merge")
@config_option
@click.option("--dry-run", is_flag=True, help="Resolve the sources and show the index; push"
                                              " nothing.")
@json_option
def command(sources: tuple[str, ...], dry_run: bool, json_mode: bool, **kw: Any) -> int:
    """Join SOURCEs (build descriptors from 'polyarch build --push', or image references:
    tags or digests, single-platform images or indexes) into one index, verify it, and
    publish it under every -t tag, as 'publish' does."""
    from polyarch import ci
    from polyarch.commands._render import image
    from polyarch.pipeline import merge as merging
    from polyarch.pipeline.verify import VerificationFailed
    from polyarch.session import Session

    rep = reporter(json_mode)
    opts = load_options(kw)
    # The expected platforms are the configured ones, with the same default as publish:
    # a build job that silently did not run fails the merge.
    with Session(opts, rep, dry_run=dry_run) as s:
        try:
            done = merging.merge(s, sources, expected=opts.platforms)
        except VerificationFailed as e:
            ci.write_outputs(e.doc)
            if json_mode:
                rep.emit_json(e.doc)
            raise
    if not dry_run:
        ci.write_outputs(done.result.to_json())
    if json_mode:
        rep.emit_json(done.to_json())
        return 0
    if dry_run:
        rep.info(done.plan.index.data.decode().rstrip())
        return 0
    image(rep, done.result)
    rep.table(None, ["platform", "source"],
              [(str(e.platform), e.source.given) for e in done.plan.entries])
    return 0
