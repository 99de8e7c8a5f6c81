"""polyarch publish: build every platform, push, and report the index."""

from __future__ import annotations

from typing import Any

import click

from polyarch.commands._common import build_options, load_options, reporter


@click.command("publish")
@build_options
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; change nothing.")
def command(dry_run: bool, json_mode: bool, **kw: Any) -> int:
    """Build CONTEXT (default .) for every platform and publish it under each tag."""
    from polyarch import workflow

    rep = reporter(json_mode)
    opts = load_options(kw)
    result = workflow.publish(opts, rep, dry_run=dry_run)
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
