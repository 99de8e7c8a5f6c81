"""polyarch merge: join per-platform images into one index, verify it, push it, move the tags."""

from __future__ import annotations

from typing import Any

import click

from polyarch.commands._common import (
    check_hand_over,
    config_option,
    hand_over,
    json_option,
    load_options,
    reporter,
    save_failure_outputs,
    table_options,
)


@click.command("merge")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@table_options("merge")
@config_option
@json_option
def command(sources: tuple[str, ...], json_mode: bool, **kw: Any) -> int:
    """Join SOURCEs (build descriptors from 'polyarch build --push', or image references:
    tags or digests, single-platform images or indexes) into one index, verify it, and
    publish it under every -t tag, as 'publish' does."""
    from polyarch import ci
    from polyarch.commands import _render
    from polyarch.pipeline import merge as merging
    from polyarch.pipeline.result import VerificationFailed
    from polyarch.session import Session

    rep = reporter(json_mode)
    check_hand_over(rep)
    opts = load_options(kw)
    dry_run = opts.dry_run
    # The expected platforms are the configured ones, with the same default as publish:
    # a build job that silently did not run fails the merge.
    with Session(opts, rep, dry_run=dry_run) as s:
        try:
            done = merging.merge(s, sources, expected=opts.platforms)
        except VerificationFailed as e:
            save_failure_outputs(rep, e.result)
            if json_mode:
                rep.emit_json(e.doc)
            raise

    def show() -> None:
        if json_mode:
            rep.emit_json(done.to_json())
        else:
            _render.merged(rep, done)

    r = done.result
    hand_over(rep, None if dry_run else
              f"published {r.reference()} and moved its tags ({', '.join(r.tags)})",
              [] if dry_run else [("the CI outputs", lambda: ci.write_outputs(r))],
              show)
    return 0
