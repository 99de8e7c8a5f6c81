"""What a publish of a project's images needs beyond the publish of one image: the
prebuild commands of an entry, the check of every image's options before anything
runs, and the result of the whole run (:class:`ProjectResult`). The flow itself is
:func:`polyarch.pipeline.publish.publish`, the same for one image and for a project;
the ``[[image]]`` entries are read in :mod:`polyarch.pipeline.images`.
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from polyarch import proc, redact
from polyarch.config import Options
from polyarch.errors import BuildError, ConfigError, EnvironmentProblem
from polyarch.output import Reporter
from polyarch.pipeline.images import ImageSpec, Project, image_options
from polyarch.pipeline.result import SCHEMA_VERSION, ImageResult


def prebuild(spec: ImageSpec, root: Path, rep: Reporter, *, skip: bool, dry_run: bool,
             log_dir: Path) -> None:
    """The entry's prebuild commands, before its build: run (:func:`run_prebuild`), or
    printed in a dry run; not with ``--skip-prebuild`` (``skip``)."""
    if spec.prebuild and skip:
        rep.info(f"{spec.name}: prebuild skipped (--skip-prebuild)")
    elif not dry_run:
        run_prebuild(spec, root, rep, log_dir)
    elif spec.prebuild:
        for cmd in spec.prebuild:
            rep.info(f"# prebuild ({root}): {cmd}")


def run_prebuild(spec: ImageSpec, root: Path, rep: Reporter, log_dir: Path) -> None:
    """Run the entry's prebuild commands in order. Their output goes to a log file (an
    ``npm pack`` of a workspace prints thousands of lines), not to the terminal; a
    command that fails shows its last lines and where the whole log is."""
    for n, cmd in enumerate(spec.prebuild, 1):
        log = log_dir / f"prebuild-{spec.name}-{n}.log"
        lines: list[str] = []
        with rep.group(f"{spec.name}: prebuild: {cmd}"):
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                sink = log.open("w")
            except OSError as e:
                raise EnvironmentProblem(f"cannot write the prebuild log {log}: {e.strerror}",
                                         hint="set POLYARCH_CACHE_DIR to a writable directory"
                                         ) from None
            with sink:
                keep = _LogTail(sink, lines)
                # In a process group of its own, ended with the command: a background
                # child ('server &') does not outlive the prebuild, nor polyarch. Not
                # checked here: the exit status and the log are reported first, then a
                # failure is raised below with the masked tail of the output.
                r = proc.run(["sh", "-c", cmd], cwd=root, check=False, on_line=keep,
                             merge_output=True, timeout=None, idle_timeout=proc.idle_timeout(),
                             end_group=True)
            rep.info(f"exit {r.returncode}; output in {log}")
            if r.left_running:
                rep.warn(f"image {spec.name!r}: prebuild command {cmd!r} left processes"
                         " running in the background; they were stopped")
        if not r.ok:
            raise BuildError(f"image {spec.name!r}: prebuild command {cmd!r} failed with exit"
                             f" status {r.returncode} (whole output: {log})",
                             detail="\n".join(redact.text(x) for x in lines) or None)


class _LogTail:
    """Writes each line (masked) to the log and keeps the last 40."""

    def __init__(self, sink: IO[str], lines: list[str]) -> None:
        self.sink, self.lines = sink, lines

    def __call__(self, line: str) -> None:
        self.sink.write(redact.text(line) + "\n")
        self.lines.append(line)
        del self.lines[:-40]


@dataclass(frozen=True)
class ImageOutcome:
    """One image of a project and what publishing it did."""

    name: str
    result: ImageResult

    def reference(self) -> str:
        """``REF@sha256:...`` of a published image; "" when no tag points at it (its
        verification failed, or a dry run built nothing)."""
        return self.result.reference() if self.result.promoted else ""


@dataclass(frozen=True)
class ProjectResult:
    """What a publish of a project's images did, in the order they were published (an
    image whose verification failed comes last, not promoted)."""

    images: tuple[ImageOutcome, ...]

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION,
                "images": [{"name": o.name, "reference": o.reference(), **o.result.to_json()}
                           for o in self.images]}


def check_plan(project: Project, specs: Sequence[ImageSpec], base: Options,
               env: Mapping[str, str]) -> None:
    """Resolve every image's options before anything runs, so that a bad value in the
    last image stops the run before the first one is published; and refuse two images
    that would be published under one tag (the second would silently replace the first)."""
    owner: dict[str, str] = {}
    for spec in specs:
        deps = {d: f"{d}@sha256:{'0' * 64}" for d in spec.depends_on}
        opts = image_options(spec, base, project.root, env, deps)
        if not opts.tags and not opts.images:
            raise ConfigError(f"{spec.where}: no tag to publish to",
                              hint="set 'tags', 'name-from' or 'images' in the [[image]] entry")
        for t in opts.tags:
            other = owner.setdefault(str(t), spec.name)
            if other != spec.name:
                raise ConfigError(f"{project.path}: images {other!r} and {spec.name!r} would both"
                                  f" be published as {t}",
                                  hint="give each [[image]] its own 'tags' (or name-from)")
