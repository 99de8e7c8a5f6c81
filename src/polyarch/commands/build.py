"""polyarch build --stage: build some platforms on this engine and stage them for a merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import build_options, check_writable, load_options, reporter


@click.command("build")
@build_options
@click.option("--stage", "stage", is_flag=True, default=True,
              help="Push to a staging tag in the target repository and write a build"
                   " descriptor (the default, and the only mode).")
@click.option("--descriptor", "descriptor", type=click.Path(path_type=Path), metavar="PATH",
              help="Where to write the build descriptor (default:"
                   " ./polyarch-build-<platforms>.json).")
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; change nothing.")
def command(stage: bool, descriptor: Path | None, dry_run: bool, json_mode: bool,
            **kw: Any) -> int:
    """Build CONTEXT (default .) for the given platforms on the current engine
    (DOCKER_HOST, --context), push the result to a staging tag in the repository of the
    first -t, and write a build descriptor for 'polyarch merge'. No final tag moves."""
    from polyarch import stage as staging

    rep = reporter(json_mode)
    if descriptor is not None:
        check_writable(descriptor, "--descriptor")
    opts = load_options(kw)
    result = staging.build_stage(opts, rep, descriptor_path=descriptor, dry_run=dry_run)
    if json_mode:
        rep.emit_json(result.to_json())
        return 0
    d = result.descriptor
    if d is None:
        return 0
    rep.table(None, ["platform", "manifest", "build"],
              [(p, d.manifests.get(p, ""), d.modes.get(p, "?")) for p in d.platforms])
    rep.info(f"staged      {d.reference}")
    rep.info(f"staging tag {d.staging}")
    rep.info(f"descriptor  {result.path}")
    return 0
