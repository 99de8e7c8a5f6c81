"""polyarch publish: build every platform, stage, verify, then move the tags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from polyarch import ci
from polyarch.commands._common import build_options, check_writable, load_options, reporter
from polyarch.errors import FatalError, UsageError
from polyarch.output import Reporter


@click.command("publish")
@build_options
@click.option("--verify/--no-verify", "verify", default=None,
              help="Verify the staged index before moving any tag (default: on).")
@click.option("--smoke", metavar="CMD", default=None,
              help="Also run CMD in every platform's image and check 'uname -m' inside.")
@click.option("--allow", "allow", multiple=True, metavar="PATH_GLOB",
              help="Known exception for the binaries and secrets checks (repeatable).")
@click.option("--output-file", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH",
              help="Write the published reference with its digest (REF@sha256:...) to PATH;"
                   " one 'name=REF@sha256:...' line per image in a project.")
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; change nothing.")
def command(dry_run: bool, json_mode: bool, output_file: Path | None, **kw: Any) -> int:
    """Build CONTEXT (default .) for every platform, verify it, publish it under each tag.

    In a project with [[image]] entries the argument names the image to publish (with
    what it depends on); without it every image is published in dependency order.
    """
    from polyarch import workflow
    from polyarch.project import load_project

    rep = reporter(json_mode)
    if output_file is not None:
        check_writable(output_file, "--output-file")
    project = load_project(kw.get("config_path"))
    if project is not None:
        return _publish_project(project, kw, rep, dry_run=dry_run, json_mode=json_mode,
                                output_file=output_file)
    opts = load_options(kw)
    try:
        result = workflow.publish(opts, rep, dry_run=dry_run)
    except workflow.PublishFailed as e:
        # The CI summary shows what failed verification, too.
        ci.write_outputs(e.result.to_json())
        if json_mode:
            rep.emit_json(e.result.to_json())
        raise
    if output_file is not None and not dry_run:
        _write(output_file, f"{result.tags[0]}@{result.index_digest}\n")
    if not dry_run:
        ci.write_outputs(result.to_json())
    if json_mode:
        rep.emit_json(result.to_json())
        return 0
    if dry_run:
        return 0
    _print_result(rep, result)
    return 0


def _publish_project(project: Any, kw: dict[str, Any], rep: Reporter, *, dry_run: bool,
                     json_mode: bool, output_file: Path | None) -> int:
    from polyarch import workflow
    from polyarch.project import publish_project

    name = kw.pop("context", None)
    if kw.get("tags"):
        raise UsageError(f"-t/--tag cannot be used with the images of {project.path}",
                         hint="set 'tags' (or name-from/tag-env) in the [[image]] entries")
    opts = load_options(kw)
    done: list[Any] = []
    try:
        publish_project(project, opts, rep, names=[name] if name else [], dry_run=dry_run,
                        env=os.environ, on_done=done.append)
    except FatalError as e:
        doc = _project_doc(done)
        if isinstance(e, workflow.PublishFailed):
            doc["images"].append({"name": e.image_name, "reference": "", **e.result.to_json()})
        if not dry_run and doc["images"]:
            ci.write_outputs(doc)
        if json_mode:
            rep.emit_json(doc)
        raise
    # Only a complete run writes the file: CI steps after it read it as "all published".
    if output_file is not None and not dry_run and done:
        _write(output_file, "".join(f"{o.name}={o.reference()}\n" for o in done))
    if not dry_run:
        ci.write_outputs(_project_doc(done))
    if json_mode:
        rep.emit_json(_project_doc(done))
    elif not dry_run:
        for o in done:
            rep.step(f"image {o.name}")
            _print_result(rep, o.result)
    return 0


def _project_doc(done: list[Any]) -> dict[str, Any]:
    return {"schema": 1, "images": [{"name": o.name, "reference": o.reference(),
                                     **o.result.to_json()} for o in done]}


def _print_result(rep: Reporter, result: Any) -> None:
    rep.info(f"index   {result.index_digest}")
    rep.table(None, ["platform", "digest", "build"],
              [(p.platform, p.digest, p.mode) for p in result.platforms])
    for t in result.tags:
        rep.info(f"tag     {t}")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as e:
        raise UsageError(f"cannot write --output-file {path}: {e.strerror}") from None
