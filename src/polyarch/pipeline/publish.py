"""One image through the pipeline: plan -> build -> verify -> [outputs] -> push -> sign -> tag.

``publish`` is ``build --push`` plus tags. ``build`` stops after verification and
writes the verified layout where asked (``-o oci:PATH``, ``--load``), pushes it by digest
(``--push``, for split builds), or keeps it in the cache. A failed verification leaves
no manifest and no tag in any registry, and nothing a failing platform references (a
publish pushes layers of platforms that passed while the others are verified:
:mod:`polyarch.pipeline.overlap`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from polyarch.engines import BuildRequest
from polyarch.errors import UsageError
from polyarch.pipeline import build as build_step
from polyarch.pipeline import sign as sign_step
from polyarch.pipeline import verify as verify_step
from polyarch.pipeline.build import Built
from polyarch.pipeline.outputs import OutputPlan
from polyarch.pipeline.plan import Plan, registry_push_check, run_preflight
from polyarch.pipeline.push import Pushed, push, repositories
from polyarch.pipeline.result import ImageResult, require_ok
from polyarch.pipeline.tag import tag
from polyarch.pipeline.verify import Verified
from polyarch.refs import ImageRef
from polyarch.session import Session


def preflight(s: Session, *, need_push: bool) -> Plan:
    """Every check before building; stops at the first blocking problem (in a dry run
    only input errors stop it)."""
    opts, rep = s.opts, s.rep
    with rep.group("preflight"):
        plan = run_preflight(
            opts, build_engine=s.engine, need_push=need_push, allow_create=not s.dry_run,
            registry_check=None if s.dry_run else (lambda o: registry_push_check(o, s.client)))
        bad = plan.first_failure()
        # A dry run stops on input errors only; the others are warnings there.
        stops = bad is not None and (not s.dry_run or (
            bad.error is not None and bad.error.exit_code == 2))
        for c in plan.checks:
            # What stops the command is raised below and printed once, by the CLI.
            if not c.ok and (c.error is None or s.dry_run) and not (stops and c is bad):
                rep.warn(f"{c.name}: {c.detail}" + (f" ({c.remedy})" if c.remedy else ""))
    if stops:
        plan.raise_for_failure()
    s.engine.use_builder(plan.builder_arg)
    return plan


@dataclass
class Prepared:
    plan: Plan
    request: BuildRequest
    annotations: dict[str, str] = field(default_factory=dict)


def prepare(s: Session, *, need_push: bool, annotations: dict[str, str],
            label: str, extra_contexts: dict[str, str] | None = None) -> Prepared:
    """Preflight and the build request into a fresh directory of the cache."""
    if not s.dry_run:
        s.ws.check()
        s.ws.prune()  # old build directories: by age, then the oldest beyond the size cap
    plan = preflight(s, need_push=need_push)
    out = Path("<cache>/builds/<new>") if s.dry_run else s.build_dir(label)
    req = build_step.request(s.opts, out, annotations=annotations)
    if extra_contexts:
        req = replace(req, build_contexts={**req.build_contexts, **extra_contexts})
    return Prepared(plan, req, annotations)


def build_and_verify(s: Session, prep: Prepared, *, consequence: str,
                     see: Callable[[Built], str] | None = None) -> tuple[Built, Verified]:
    """Build into the cache and verify there; :class:`VerificationFailed` on errors.
    ``see(built)`` says how to read every finding of a verified image (printed with
    each platform's counts)."""
    built, verified, _ = build_verify_push(s, prep, consequence=consequence, see=see)
    return built, verified


def build_verify_push(s: Session, prep: Prepared, *, consequence: str,
                      see: Callable[[Built], str] | None = None,
                      push_to: Sequence[ImageRef] = ()) -> tuple[Built, Verified, Pushed | None]:
    """:func:`build_and_verify`; then, with ``push_to``, push the verified image there by
    digest (no tag): its platforms' layers while the others are still being verified,
    where that can be (:mod:`polyarch.pipeline.overlap`)."""
    from polyarch.pipeline import overlap

    built = build_step.build(s, prep.plan, prep.request)
    name = str(s.opts.tags[0]) if s.opts.tags else "the build"
    what = f"{name} ({built.digest[:19]}, local)"
    early: overlap.EarlyPush | None = None
    can = overlap.eligible(s, built.layout) if push_to else None
    try:
        if can is not None:
            lay, root = can
            own, sizes = overlap.owners(lay, root)
            early = overlap.EarlyPush(s, lay, root, repositories(push_to), sizes)
            with s.rep.group(f"verify {what}, platform by platform"):
                read = overlap.verify_platforms(s, lay, root, s.opts.platforms, early, own)
        verified = verify_step.verify_layout(
            s, built.layout, s.opts.platforms, what=what,
            phase=overlap.PHASE if early is not None and early.submitted
            else verify_step.NOTHING_PUSHED)
        if early is not None and verified.report is not None:
            # The layers the platform-by-platform passes read (the last pass found them
            # all in the layer cache).
            r = verified.report
            total = r.layers_read + r.layers_cached
            r.layers_read = min(total, r.layers_read + read)
            r.layers_cached = total - r.layers_read
        partial = ImageResult(built.digest, built.media_type,
                              tuple(str(t) for t in s.opts.tags), built.platforms,
                              built.seconds, verified)
        if early is not None and not verified.ok:
            # Nothing more leaves; the uploads in flight end (within their deadlines), so
            # the message says what the registry holds.
            early.finish(cancel=True)
            consequence = overlap.what_left(early, consequence)
        require_ok(verified, partial, consequence=consequence)
    except BaseException as e:
        if early is not None:
            # Nothing more leaves; the uploads in flight end (within their deadlines) so
            # the registry's state is settled when the error is reported, unless
            # interrupted (Ctrl-C, SIGTERM).
            early.finish(cancel=True, wait=isinstance(e, Exception))
        raise
    if verified.report is not None:
        s.rep.info(verified.report.summary())
        hint = see(built) if see else "this command with --json lists every finding"
        for line in verify_step.platform_lines(verified.report, hint):
            s.rep.info(line)
    pushed = push(s, built.layout, built.digest, push_to, early=early) if push_to else None
    return built, verified, pushed


def dry_run_result(s: Session, prep: Prepared, then: str) -> ImageResult:
    cmds = build_step.commands(s, prep.plan, prep.request)
    s.rep.info(f"# then: verify the layout on local disk, {then}")
    return ImageResult("", "", tuple(str(t) for t in s.opts.tags), dry_run=True,
                       commands=tuple(tuple(c) for c in cmds))


def require_tags(s: Session, what: str) -> Sequence[ImageRef]:
    if not s.opts.tags:
        raise UsageError(f"no tag given: {what} needs one",
                         hint="pass -t/--tag REGISTRY/REPO:TAG or set 'tags' in the config")
    return s.opts.tags


def publish(s: Session, *, extra_contexts: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None) -> ImageResult:
    """Build, verify, push by digest to every target repository, then move every tag."""
    from polyarch.pipeline.gittags import apply_git_tags

    if annotations is None:
        opts, annotations = apply_git_tags(s, lookup_existing=not s.dry_run)
        s = s.with_options(opts)
    targets = require_tags(s, "publish")
    signer = sign_step.signer(s)
    prep = prepare(s, need_push=True, annotations=annotations, label="publish",
                   extra_contexts=extra_contexts)
    if s.dry_run:
        repos = ", ".join(sorted({t.name for t in targets}))
        res = dry_run_result(s, prep, f"push it by digest to {repos}, then"
                             f"{' sign it by digest,' if signer else ''} tag"
                             f" {', '.join(str(t) for t in targets)}")
        signing = sign_step.dry_run_commands(s, signer, targets)
        for c in signing:
            s.rep.command(tuple(c))
        return replace(res, commands=res.commands + tuple(tuple(c) for c in signing))
    built, verified, pushed = build_verify_push(
        s, prep, consequence="nothing was pushed",
        see=lambda _b: f"polyarch verify --json {shlex.quote(str(targets[0]))} shows them",
        push_to=targets)
    assert pushed is not None
    build_step.export_cache(s, built)
    root = _root_bytes(built)
    signed = None
    if signer is not None or s.opts.attest_verification:
        signed = sign_step.sign(s, signer, built.digest, built.media_type, len(root), targets,
                                verified)
    tagged = tag(s, root, built.media_type, targets)
    return ImageResult(built.digest, built.media_type, tagged.tags, built.platforms,
                       built.seconds, verified, pushed, tagged, signed=signed)


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


def _root_bytes(built: Built) -> bytes:
    from polyarch.registry.layout import OCILayout

    # What was pushed by digest: for one platform, buildx's index.json lists the image
    # manifest itself (with its platform), and that file is not what the tag must name.
    return OCILayout(built.layout).manifest(built.digest).data


def build(s: Session, out: OutputPlan, *, annotations: dict[str, str] | None = None,
          extra_contexts: dict[str, str] | None = None) -> ImageResult:
    """``polyarch build``: build and verify; then write, load, push or keep the result."""
    from polyarch.pipeline import outputs
    from polyarch.pipeline.gittags import apply_git_tags

    if annotations is None:
        opts, annotations = apply_git_tags(s, lookup_existing=False)
        s = s.with_options(opts)
    outputs.check(s, out)
    prep = prepare(s, need_push=out.push, annotations=annotations, label="build",
                   extra_contexts=extra_contexts)
    if s.dry_run:
        return dry_run_result(s, prep, outputs.describe(s, out))
    built, verified = build_and_verify(s, prep, consequence="nothing was written or pushed",
                                       see=lambda b: _see_build(s, out, b))
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
                       kept, annotations=build_step.index_annotations(prep.request))
