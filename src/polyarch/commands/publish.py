"""polyarch publish: build every platform, stage, verify, then move the tags."""

from __future__ import annotations

from typing import Any

import click

from polyarch.commands._common import build_options, load_options, reporter


@click.command("publish")
@build_options
@click.option("--verify/--no-verify", "verify", default=None,
              help="Verify the staged index before moving any tag (default: on).")
@click.option("--smoke", metavar="CMD", default=None,
              help="Also run CMD in every platform's image and check 'uname -m' inside.")
@click.option("--allow", "allow", multiple=True, metavar="PATH_GLOB",
              help="Known exception for the binaries and secrets checks (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; change nothing.")
def command(dry_run: bool, json_mode: bool, **kw: Any) -> int:
    """Build CONTEXT (default .) for every platform, verify it, publish it under each tag."""
    from polyarch import workflow

    rep = reporter(json_mode)
    opts = load_options(kw)
    try:
        result = workflow.publish(opts, rep, dry_run=dry_run)
    except workflow.PublishFailed as e:
        if json_mode:
            rep.emit_json(e.result.to_json())
        raise
    if json_mode:
        rep.emit_json(result.to_json())
        return 0
    if dry_run:
        return 0
    rep.info(f"index   {result.index_digest}")
    rep.table(None, ["platform", "digest", "build"],
              [(p.platform, p.digest, p.mode) for p in result.platforms])
    for t in result.tags:
        rep.info(f"tag     {t}")
    return 0
