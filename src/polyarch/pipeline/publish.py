"""The publish flow, the same for one image and for a project's images: plan -> build
-> verify (every image, on local disk) -> push -> sign -> tag. Also ``build``, the flow
of ``polyarch build``: plan -> build -> verify -> [outputs].

A run without ``[[image]]`` entries publishes one image, the options' context: a project
of one. A project's images are built in dependency order, each dependent on the
verified layout of what it depends on; nothing is pushed until every image passed, and
the tags move in dependency order, every moved tag put back when a later one fails.

``publish`` is ``build --push`` plus tags. ``build`` stops after verification and
writes the verified layout where asked (``-o oci:PATH``, ``--load``), pushes it by digest
(``--push``, for split builds), or keeps it in the cache. A failed verification leaves
no manifest and no tag in any registry, and nothing a failing platform references (a
publish of one image pushes blobs of platforms that passed while the others are
verified: :mod:`polyarch.pipeline.overlap`).

Each step is a module below this one, none of which calls back: :mod:`.images` (an
image's options), :mod:`.gittags`, :mod:`.local` (preflight, build, verify),
:mod:`.push`, :mod:`.sign`, :mod:`.tag`; :mod:`.project` holds what only a project has.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from polyarch import interrupt
from polyarch.errors import FatalError
from polyarch.pipeline import build as build_step
from polyarch.pipeline import sign as sign_step
from polyarch.pipeline.build import Built
from polyarch.pipeline.gittags import apply_git_tags
from polyarch.pipeline.images import ImageSpec, Project, image_options, order
from polyarch.pipeline.local import (
    Checked,
    Prepared,
    build_and_verify,
    dry_run_result,
    prepare,
    require_tags,
)
from polyarch.pipeline.outputs import OutputPlan
from polyarch.pipeline.project import ImageOutcome, check_plan, prebuild
from polyarch.pipeline.push import push
from polyarch.pipeline.result import ImageResult, VerificationFailed
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.pipeline.tag import TagMove
    from polyarch.signing.cosign import Signer


@dataclass(frozen=True)
class _Image:
    """One image of the run: ``spec`` None for the image of a run without ``[[image]]``
    entries (its options are the session's own)."""

    spec: ImageSpec | None

    @property
    def name(self) -> str:
        return self.spec.name if self.spec is not None else ""


@dataclass(frozen=True)
class _Ready:
    """An image built and verified on local disk, not yet pushed."""

    image: _Image
    session: Session  # with this image's options
    checked: Checked


def publish(s: Session, project: Project | None = None, *, names: Sequence[str] = (),
            env: Mapping[str, str] | None = None) -> list[ImageOutcome]:
    """Publish the options' image (``project`` None), or the images of ``project``
    named (with what they depend on; none named: all of them): build and verify every
    image, dependencies first; only when all passed, push them all by digest, sign them,
    then move the tags in dependency order. What each image's publish did, in that
    order (a dry run: the commands it would run)."""
    env = os.environ if env is None else env
    images = [_Image(None)]
    if project is not None:
        specs = order(project, names)
        check_plan(project, specs, s.opts, env)
        images = [_Image(spec) for spec in specs]
    signer = sign_step.signer(s)  # cosign and the key are checked before anything is built
    ready: dict[str, _Ready] = {}
    planned: list[ImageOutcome] = []
    for image in images:
        with _group(s, image):
            si, prep = _plan(s, project, image, ready, env)
            if s.dry_run:
                planned.append(ImageOutcome(image.name, _dry_run(si, prep, image, signer)))
            else:
                ready[image.name] = _Ready(image, si, _build_and_verify(si, prep, image))
    if s.dry_run:
        return planned
    return _push_sign_tag(s, list(ready.values()), signer, project is not None)


def _group(s: Session, image: _Image) -> contextlib.AbstractContextManager[object]:
    """A project's image is built in a group of its own."""
    return s.rep.group(f"image {image.name}") if image.spec else contextlib.nullcontext()


def _plan(s: Session, project: Project | None, image: _Image, ready: Mapping[str, _Ready],
          env: Mapping[str, str]) -> tuple[Session, Prepared]:
    """An image's session (its options, with the tags from git state) and its preflight
    and build request. A project's image: its prebuild commands first, and what it
    depends on pinned to the verified layouts built before it."""
    spec, si, label, what = image.spec, s, "publish", "publish"
    if spec is not None and project is not None:
        prebuild(spec, project.root, s.rep, skip=s.opts.skip_prebuild, dry_run=s.dry_run,
                 log_dir=s.ws.root / "logs")
        pinned, contexts = _pins(spec, ready)
        si = s.with_options(image_options(spec, s.opts, project.root, env, pinned, contexts))
        label, what = spec.name, f"image {spec.name!r}"
    opts, annotations = apply_git_tags(si, lookup_existing=not s.dry_run)
    si = si.with_options(opts)
    require_tags(si, what)
    return si, prepare(si, need_push=True, annotations=annotations, label=label)


def _pins(spec: ImageSpec, ready: Mapping[str, _Ready]) -> tuple[dict[str, str],
                                                                  dict[str, str]]:
    """What ``spec`` depends on: the final ``REPO@sha256:...`` (for labels) and the
    verified layout on local disk (the build context), by name."""
    pinned: dict[str, str] = {}
    contexts: dict[str, str] = {}
    for d in spec.depends_on:
        if d in ready:
            r = ready[d]
            built = r.checked.built
            pinned[d] = f"{r.session.opts.tags[0].untagged()}@{built.digest}"
            contexts[d] = f"oci-layout://{built.layout}@{built.digest}"
        else:  # dry run
            pinned[d] = f"<{d}>@<digest of {d} built in this run>"
            contexts[d] = f"oci-layout://<layout of {d}>@<digest>"
    return pinned, contexts


def _dry_run(si: Session, prep: Prepared, image: _Image, signer: Signer | None) -> ImageResult:
    """The commands an image's publish would run, and what would follow them."""
    targets = si.opts.tags
    if image.spec is not None:
        return dry_run_result(si, prep, f"push by digest to {targets[0].name}, then tag")
    repos = ", ".join(sorted({t.name for t in targets}))
    res = dry_run_result(si, prep, f"push it by digest to {repos}, then"
                         f"{' sign it by digest,' if signer else ''} tag"
                         f" {', '.join(str(t) for t in targets)}")
    signing = sign_step.dry_run_commands(si, signer, targets)
    for c in signing:
        si.rep.command(tuple(c))
    return replace(res, commands=res.commands + tuple(tuple(c) for c in signing))


def _build_and_verify(si: Session, prep: Prepared, image: _Image) -> Checked:
    """Build and verify an image in the cache. The image of a run without ``[[image]]``
    entries starts its push while it is verified; a project's images wait for each
    other (nothing of the project leaves before every image passed)."""
    first = str(si.opts.tags[0])
    if image.spec is None:
        return build_and_verify(
            si, prep, consequence="nothing was pushed", push_to=si.opts.tags,
            see=lambda _b: f"polyarch verify --json {shlex.quote(first)} shows them")
    try:
        return build_and_verify(
            si, prep, consequence="nothing of the project was pushed",
            see=lambda _b: f"polyarch verify --json {shlex.quote(first)} shows them,"
                           " once the project is published")
    except VerificationFailed as e:
        e.image_name = image.name  # for the CI summary and --json of the project
        raise


def _push_sign_tag(s: Session, ready: Sequence[_Ready], signer: Signer | None,
                   of_project: bool) -> list[ImageOutcome]:
    """Push every verified image by digest (a dependent mounts the blobs of what it
    depends on) and export its build cache, sign every one, then move the tags image by
    image: when a project's tag step fails, the tags of the images before are put back."""
    from polyarch.pipeline.tag import roll_back, tag  # (imported during the build)

    pushed = {}
    for r in ready:
        deps = [d.session.opts.tags[0].untagged().repository for d in ready
                if d.image.name in (r.image.spec.depends_on if r.image.spec else ())]
        built = r.checked.built
        pushed[r.image.name] = push(r.session, built.layout, built.digest, r.session.opts.tags,
                                    mount_from=deps, early=r.checked.early)
        # The registry build cache holds the image's layers: written once it passed.
        build_step.export_cache(r.session, built)
    signed = {}
    if signer is not None or s.opts.attest_verification:
        for r in ready:  # every image signed before the first tag moves
            built = r.checked.built
            signed[r.image.name] = sign_step.sign(
                r.session, signer, built.digest, built.media_type, len(_root_bytes(built)),
                r.session.opts.tags, r.checked.verified)
    moved: list[TagMove] = []
    out: list[ImageOutcome] = []
    try:
        for r in ready:
            b, name = r.checked.built, r.image.name
            tagged = tag(r.session, _root_bytes(b), b.media_type, r.session.opts.tags,
                         title=f"tag image {name}" if of_project else None)
            moved += tagged.moves
            out.append(ImageOutcome(name, ImageResult(
                b.digest, b.media_type, tagged.tags, b.platforms, b.seconds,
                r.checked.verified, pushed[name], tagged, signed=signed.get(name),
                context_bytes=b.context_bytes)))
    except BaseException as e:
        if of_project:
            undone = roll_back(s.client, moved)
            interrupt.set_phase(f"moving the project's tags: {undone}")
            if isinstance(e, FatalError):
                e.message += f" (tags of the images before: {undone})"
        raise
    return out


def _root_bytes(built: Built) -> bytes:
    from polyarch.registry.layout import OCILayout

    # What was pushed by digest: for one platform, buildx's index.json lists the image
    # manifest itself (with its platform), and that file is not what the tag must name.
    return OCILayout(built.layout).manifest(built.digest).data


def _see_build(s: Session, out: OutputPlan, built: Built) -> str:
    """How to read every finding of what ``polyarch build`` leaves behind."""
    if out.oci is not None:
        where = f"oci:{out.oci}"
    elif out.push and s.opts.tags:
        where = f"{s.opts.tags[0].name}@{built.digest}"
    elif not out.load:
        where = f"oci:{built.layout}"  # kept in the cache: nothing else was asked for
    else:
        return "this command with --json lists every finding"
    return f"polyarch verify --json {shlex.quote(where)} shows them"


def build(s: Session, out: OutputPlan, *, annotations: dict[str, str] | None = None,
          extra_contexts: dict[str, str] | None = None) -> ImageResult:
    """``polyarch build``: build and verify; then write, load, push or keep the result."""
    from polyarch.pipeline import outputs

    if annotations is None:
        opts, annotations = apply_git_tags(s, lookup_existing=False)
        s = s.with_options(opts)
    outputs.check(s, out)
    prep = prepare(s, need_push=out.push, annotations=annotations, label="build",
                   extra_contexts=extra_contexts)
    if s.dry_run:
        return dry_run_result(s, prep, outputs.describe(s, out))
    checked = build_and_verify(s, prep, consequence="nothing was written or pushed",
                               see=lambda b: _see_build(s, out, b))
    built, verified = checked.built, checked.verified
    done = outputs.write(s, out, built)
    pushed = None
    if out.push:
        pushed = push(s, built.layout, built.digest, require_tags(s, "--push"))
        build_step.export_cache(s, built)
        done.append(f"pushed {s.opts.tags[0].name}@{built.digest} (by digest, no tag)")
    kept = None
    if not done:
        s.keep(built.layout)
        kept = str(built.layout)
    return ImageResult(built.digest, built.media_type, tuple(str(t) for t in s.opts.tags),
                       built.platforms, built.seconds, verified, pushed, None, tuple(done),
                       kept, annotations=build_step.index_annotations(prep.request),
                       context_bytes=built.context_bytes)
