"""polyarch publish: build every platform, verify it locally, push it, move the tags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from polyarch import ci, resultfiles
from polyarch.commands import _render
from polyarch.commands._common import (
    build_options,
    check_hand_over,
    check_writable,
    hand_over,
    load_options,
    reporter,
    save_failure_outputs,
)
from polyarch.config import Options
from polyarch.errors import FatalError, UsageError
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.pipeline.images import Project
    from polyarch.pipeline.project import ProjectResult
    from polyarch.pipeline.result import ImageResult


@click.command("publish")
@build_options("publish")
@click.option("--output-file", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH",
              help="Write the published reference with its digest (REF@sha256:...) to PATH;"
                   " one 'name=REF@sha256:...' line per image when a project has several."
                   " An existing file is kept unless --force.")
def command(json_mode: bool, output_file: Path | None, **kw: Any) -> int:
    """Build CONTEXT (default .) for every platform, verify it on local disk, push it by
    digest and move every tag to it. Nothing is pushed unless verification passed.

    In a project with [[image]] entries the argument names the image to publish (with
    what it depends on); without it every image is published in dependency order.
    """
    s, project, names = _start(json_mode, output_file, kw)
    rep, dry_run = s.rep, s.dry_run
    # One flow for both: a publish of one image is a project of one, whose result (and
    # --json document) is that image's own.
    with s:
        from polyarch.pipeline.project import ProjectResult
        from polyarch.pipeline.publish import publish

        try:
            done = publish(s, project, names=names, env=os.environ)
        except FatalError as e:
            partial = _partial(project is not None, e)
            if partial is not None:
                # The CI summary shows what failed verification, too.
                if not dry_run and (not isinstance(partial, ProjectResult) or partial.images):
                    save_failure_outputs(rep, partial)
                if json_mode:
                    rep.emit_json(partial.to_json())
            raise
    result = ProjectResult(tuple(done)) if project is not None else done[0].result
    # Only a complete run writes the file: CI steps after it read it as "all published".
    # One image: its bare reference (what a script reading the file expects); several:
    # one name=reference line each.
    writes: list[tuple[str, Any]] = []
    if output_file is not None and not dry_run and done:
        text = (f"{done[0].result.reference()}\n" if len(done) == 1 else
                "".join(f"{o.name}={o.reference()}\n" for o in done))
        writes.append((f"--output-file {output_file}",
                       lambda: resultfiles.write(output_file, text)))
    if not dry_run:
        writes.append(("the CI outputs", lambda: ci.write_outputs(result)))

    def show() -> None:
        if json_mode:
            rep.emit_json(result.to_json())
        elif not dry_run:
            for o in done:
                if project is not None:
                    rep.step(f"image {o.name}")
                _render.image(rep, o.result)

    moved = "; ".join(f"published {o.result.reference()} and moved its tags"
                      f" ({', '.join(o.result.tags)})" for o in done)
    hand_over(rep, None if dry_run or not done else moved, writes, show)
    return 0


def _start(json_mode: bool, output_file: Path | None,
           kw: dict[str, Any]) -> tuple[Session, Project | None, list[str]]:
    """What the command line asks for, checked before anything is built: the session
    (its engine's look-ups started first, while the rest is imported), the project of
    the config file (None: no [[image]] entries) and the images named (none: all)."""
    started = None
    if not kw.get("dry_run"):  # (a dry run the config asks for leaves them unused)
        from polyarch.engines import start_engine

        started = start_engine(kw)
    from polyarch.pipeline.images import load_project

    rep = reporter(json_mode)
    if output_file is not None:
        check_writable(output_file, "--output-file")
    check_hand_over(rep)
    project = load_project(kw.get("config_path"))
    names: list[str] = []
    if project is None:
        opts = _image_options(kw, output_file)
    else:
        opts, names = _project_options(project, kw, output_file)
    return Session(opts, rep, dry_run=opts.dry_run, started_engine=started), project, names


def _image_options(kw: dict[str, Any], output_file: Path | None) -> Options:
    """The options of a publish of one image (no [[image]] entries)."""
    opts = load_options(kw)
    _check_output_file(output_file, opts.force)
    if opts.repository is not None:
        raise UsageError(f"--repository ({opts.origin('repository')}) moves the images whose"
                         " name comes from name-from, and there is no [[image]] entry here",
                         hint="give the repository in -t instead")
    return opts


def _project_options(project: Project, kw: dict[str, Any],
                     output_file: Path | None) -> tuple[Options, list[str]]:
    """The options of a publish of a project, and the images named (none: all)."""
    name = kw.pop("context", None)
    if kw.get("tags"):
        raise UsageError(f"-t/--tag cannot be used with the images of {project.path}",
                         hint="set 'tags' (or name-from/tag-env) in the [[image]] entries")
    opts = load_options(kw)
    _check_output_file(output_file, opts.force)
    if opts.repository is not None and not any(i.name_from for i in project.images):
        raise UsageError(f"--repository ({opts.origin('repository')}) moves the images whose"
                         f" name comes from name-from, and no image of {project.path} has one",
                         hint="drop it, or use name-from in the [[image]] entries")
    return opts, [name] if name else []


def _partial(is_project: bool, e: FatalError) -> ImageResult | ProjectResult | None:
    """What a failed run shows in --json and the CI summary: the result of a failed
    verification (for one image, nothing for other errors; for a project, a project
    result holding that image, or none)."""
    from polyarch.pipeline.project import ImageOutcome, ProjectResult
    from polyarch.pipeline.result import VerificationFailed

    failed = e if isinstance(e, VerificationFailed) else None
    if not is_project:
        return failed.result if failed is not None else None
    return ProjectResult((ImageOutcome(failed.image_name or "", failed.result),) if failed
                         else ())


def _check_output_file(path: Path | None, force: bool) -> None:
    """Refuse, before anything is built, to replace a file a step before wrote."""
    if path is not None and path.exists() and not force:
        raise UsageError(f"--output-file {path} exists",
                         hint="remove it, or pass --force to overwrite it")
