"""Publishing a project of several images: every image built and verified on local disk
first (each dependent built on the verified layout of what it depends on), then all
pushed, then the tags moved in dependency order, with rollback. The ``[[image]]``
entries themselves are read in :mod:`polyarch.pipeline.images`.
"""


from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from polyarch import interrupt, proc, redact
from polyarch.config import Options
from polyarch.errors import BuildError, ConfigError, EnvironmentProblem, FatalError
from polyarch.output import Reporter
from polyarch.pipeline import build as build_step
from polyarch.pipeline.build import Built

#: Keys of an [[image]] entry that mean the same as at the top level.
from polyarch.pipeline.images import ImageSpec, Project, image_options, order
from polyarch.pipeline.result import SCHEMA_VERSION, ImageResult
from polyarch.pipeline.verify import Verified
from polyarch.refs import ImageRef
from polyarch.session import Session


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


@dataclass(frozen=True)
class _Ready:
    """An image of the project built and verified on local disk, not yet pushed."""

    spec: ImageSpec
    session: Session
    built: Built
    verified: Verified


def _final_repo(opts: Options) -> ImageRef:
    return opts.tags[0].untagged()


def publish_project(s: Session, project: Project, *, names: Sequence[str] = (),
                    env: Mapping[str, str],
                    on_done: Callable[[ImageOutcome], None] | None = None) -> list[ImageOutcome]:
    """Build and verify every image (dependencies first, each dependent built on the
    verified layout of what it depends on); only when all passed, push them all, then
    move the tags in dependency order, putting every moved tag back on failure."""
    from polyarch.pipeline.gittags import apply_git_tags
    from polyarch.pipeline.publish import (
        build_and_verify,
        dry_run_result,
        prepare,
        require_tags,
    )
    from polyarch.pipeline.result import VerificationFailed

    rep = s.rep
    specs = order(project, names)
    check_plan(project, specs, s.opts, env)
    from polyarch.pipeline.sign import signer

    signer(s)  # cosign and the key are checked before anything is built
    ready: dict[str, _Ready] = {}
    out: list[ImageOutcome] = []
    for spec in specs:
        with rep.group(f"image {spec.name}"):
            if spec.prebuild and s.opts.skip_prebuild:
                rep.info(f"{spec.name}: prebuild skipped (--skip-prebuild)")
            elif not s.dry_run:
                run_prebuild(spec, project.root, rep, s.ws.root / "logs")
            elif spec.prebuild:
                for cmd in spec.prebuild:
                    rep.info(f"# prebuild ({project.root}): {cmd}")
            pinned: dict[str, str] = {}
            contexts: dict[str, str] = {}
            for d in spec.depends_on:
                if d in ready:
                    r = ready[d]
                    pinned[d] = f"{_final_repo(r.session.opts)}@{r.built.digest}"
                    contexts[d] = f"oci-layout://{r.built.layout}@{r.built.digest}"
                else:  # dry run
                    pinned[d] = f"<{d}>@<digest of {d} built in this run>"
                    contexts[d] = f"oci-layout://<layout of {d}>@<digest>"
            si = s.with_options(image_options(spec, s.opts, project.root, env, pinned,
                                              contexts))
            opts, annotations = apply_git_tags(si, lookup_existing=not s.dry_run)
            si = si.with_options(opts)
            require_tags(si, f"image {spec.name!r}")
            prep = prepare(si, need_push=True, annotations=annotations, label=spec.name)
            if s.dry_run:
                res = dry_run_result(si, prep, f"push by digest to {opts.tags[0].name}, then tag")
                out.append(ImageOutcome(spec.name, res))
                continue
            try:
                hint = (f"polyarch verify --json {shlex.quote(str(opts.tags[0]))} shows"
                        " them, once the project is published")
                built, verified = build_and_verify(
                    si, prep, consequence="nothing of the project was pushed",
                    see=lambda _b: hint)  # noqa: B023 - called before the loop moves on
            except VerificationFailed as e:
                e.image_name = spec.name  # for the CI summary and --json of the project
                raise
            ready[spec.name] = _Ready(spec, si, built, verified)
    if s.dry_run:
        for o in out:
            if on_done is not None:
                on_done(o)
        return out
    return _push_and_tag(s, list(ready.values()), on_done)


def _push_and_tag(s: Session, ready: list[_Ready],
                  on_done: Callable[[ImageOutcome], None] | None) -> list[ImageOutcome]:
    from polyarch.pipeline import sign as sign_step
    from polyarch.pipeline.push import push
    from polyarch.pipeline.tag import TagMove, roll_back, tag
    from polyarch.registry.layout import OCILayout

    pushed = {}
    for r in ready:
        deps = [_final_repo(ready_dep.session.opts).repository for ready_dep in ready
                if ready_dep.spec.name in r.spec.depends_on]
        pushed[r.spec.name] = push(r.session, r.built.layout, r.built.digest,
                                   r.session.opts.tags, mount_from=deps)
        # The registry build cache holds the image's layers: written once the image
        # passed verification, as publish does for one image.
        build_step.export_cache(r.session, r.built)
    signer = sign_step.signer(s)
    signed = {}
    if signer is not None or s.opts.attest_verification:
        for r in ready:  # every image signed before the first tag moves
            root = OCILayout(r.built.layout).manifest(r.built.digest)
            signed[r.spec.name] = sign_step.sign(r.session, signer, r.built.digest,
                                                 root.media_type, len(root.data),
                                                 r.session.opts.tags, r.verified)
    moved: list[TagMove] = []
    out: list[ImageOutcome] = []
    try:
        for r in ready:
            root = OCILayout(r.built.layout).manifest(r.built.digest)
            tagged = tag(r.session, root.data, root.media_type, r.session.opts.tags,
                         title=f"tag image {r.spec.name}")
            moved += tagged.moves
            b = r.built
            out.append(ImageOutcome(r.spec.name, ImageResult(
                b.digest, b.media_type, tagged.tags, b.platforms, b.seconds, r.verified,
                pushed[r.spec.name], tagged, signed=signed.get(r.spec.name))))
    except BaseException as e:
        undone = roll_back(s.client, moved)
        interrupt.set_phase(f"moving the project's tags: {undone}")
        if isinstance(e, FatalError):
            e.message += f" (tags of the images before: {undone})"
        raise
    for o in out:
        if on_done is not None:
            on_done(o)
    return out
