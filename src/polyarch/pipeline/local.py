"""One image on local disk: preflight, the build request, the build into the cache and
its verification there. Nothing here moves a tag or writes a manifest to a registry;
the one thing that may leave is the early push of verified blobs
(:mod:`polyarch.pipeline.overlap`), which the caller asks for and then completes.

Used by both flows of :mod:`polyarch.pipeline.publish` (``publish`` and ``build``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch import interrupt
from polyarch.engines import BuildRequest
from polyarch.errors import UsageError
from polyarch.pipeline import build as build_step
from polyarch.pipeline import verify as verify_step
from polyarch.pipeline.build import Built
from polyarch.pipeline.plan import Plan, registry_push_check, run_preflight
from polyarch.pipeline.push import repositories
from polyarch.pipeline.result import ImageResult, require_ok
from polyarch.pipeline.verify import Verified
from polyarch.refs import ImageRef
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.pipeline.overlap import EarlyPush


def preflight(s: Session, *, need_push: bool, registry_later: bool = False) -> Plan:
    """Every check to make before building; stops at the first blocking problem (in a
    dry run only input errors stop it). ``registry_later``: the registry's check is left
    for the caller to make while the engine builds (:func:`registry_alongside`)."""
    opts, rep = s.opts, s.rep
    with rep.group("preflight"):
        plan = run_preflight(
            opts, build_engine=s.engine, need_push=need_push, allow_create=not s.dry_run,
            registry_check=None if s.dry_run or registry_later
            else (lambda o: registry_push_check(o, s.client)))
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
    #: The check made while the engine builds (the registry's), if any.
    alongside: build_step.AlongsideCheck | None = None


def prepare(s: Session, *, need_push: bool, annotations: dict[str, str],
            label: str, extra_contexts: dict[str, str] | None = None) -> Prepared:
    """Preflight and the build request into a fresh directory of the cache. Where the
    engine stops cleanly (buildx), the registry's check is made while it builds
    (:func:`registry_alongside`)."""
    if not s.dry_run:
        s.ws.check()
        s.prune_cache()  # old build directories and blobs, beside the build
    # Made while the engine builds where stopping the build stops all of it.
    later = (need_push and bool(s.opts.tags) and not s.dry_run
             and s.engine.cancels_cleanly)
    plan = preflight(s, need_push=need_push, registry_later=later)
    out = Path("<cache>/builds/<new>") if s.dry_run else s.build_dir(label)
    req = build_step.request(s.opts, out, annotations=annotations)
    if extra_contexts:
        req = replace(req, build_contexts={**req.build_contexts, **extra_contexts})
    return Prepared(plan, req, annotations, registry_alongside(s) if later else None)


def registry_alongside(s: Session) -> build_step.AlongsideCheck:
    """The registry's preflight check (push access to every tag's repository), made
    while the engine builds: it needs the HTTP client, whose imports take about as long
    as the engine's look-ups, and a build started alongside it costs nothing when the
    answer is yes. A no stops the build and is the error of the run, worded as if
    preflight had found it (nothing was pushed either way)."""

    def check() -> None:
        found = registry_push_check(s.opts, s.client)
        if found is not None:
            Plan(checks=[found]).raise_for_failure()

    return build_step.AlongsideCheck(check, len({t.name for t in s.opts.tags}))


@dataclass(frozen=True)
class Checked:
    """An image built into the cache and verified there. ``early``: the push of its
    verified blobs that went on during verification, for the push step to complete."""

    built: Built
    verified: Verified
    early: EarlyPush | None = None


def build_and_verify(s: Session, prep: Prepared, *, consequence: str,
                     see: Callable[[Built], str] | None = None,
                     push_to: Sequence[ImageRef] = ()) -> Checked:
    """Build into the cache and verify there; :class:`VerificationFailed` on errors.
    ``see(built)`` says how to read every finding of a verified image (printed with
    each platform's counts). With ``push_to``, the blobs of platforms that passed are
    pushed there by digest while the others are still being verified, where that can
    be (:mod:`polyarch.pipeline.overlap`); the caller's push completes it."""
    from polyarch.pipeline import leftover, overlap
    from polyarch.pipeline.ahead import JudgeAhead

    assert prep.request.output is not None
    # The platforms are judged while the engine finishes (:mod:`.ahead`), and the blobs
    # of those that passed begin to leave; those judged then, or on their own below,
    # are not judged again.
    ahead = JudgeAhead(s, prep.request.output, push_to)
    try:
        built = build_step.build(s, prep.plan, prep.request, alongside=prep.alongside,
                                 exported=ahead)
    except BaseException as e:
        left = ahead.stop(wait=isinstance(e, Exception))
        if left:
            s.rep.warn(f"{left} before the build failed or was interrupted (untagged,"
                       " named by no manifest)")
        raise
    name = str(s.opts.tags[0]) if s.opts.tags else "the build"
    what = f"{name} ({built.digest[:19]}, local)"
    early: overlap.EarlyPush | None = None
    try:
        can = overlap.eligible(s, built.layout) if push_to else None
        judged, early, dropped = ahead.finish(can[1].digest if can is not None else None)
        if dropped:
            s.rep.warn(dropped)
            interrupt.set_phase(overlap.PHASE)
            # (what a failed verification leaves, said below, counts them)
            consequence = f"{dropped}: untagged, named by no manifest; nothing else was pushed"
        read = ahead.layers_read  # layers read before this verification (not cached then)
        if can is not None:
            lay, root = can
            own, sizes = overlap.owners(lay, root)
            if early is None:
                early = overlap.EarlyPush(s, lay, root, repositories(push_to), sizes)
            with s.rep.group(f"verify {what}, platform by platform"):
                read += overlap.verify_platforms(s, lay, root, s.opts.platforms, early,
                                                 own, judged)
        verified = verify_step.verify_layout(
            s, built.layout, s.opts.platforms, what=what,
            phase=overlap.PHASE if dropped or (early is not None and early.submitted)
            else verify_step.NOTHING_PUSHED, judged=judged)
        if read and verified.report is not None:
            # The layers the passes before this one read (it found them all in the layer
            # cache, or judged already).
            r = verified.report
            total = r.layers_read + r.layers_cached
            r.layers_read = min(total, r.layers_read + read)
            r.layers_cached = total - r.layers_read
        partial = ImageResult(built.digest, built.media_type,
                              tuple(str(t) for t in s.opts.tags), built.platforms,
                              built.seconds, verified, context_bytes=built.context_bytes)
        if early is not None and not verified.ok:
            # Nothing more leaves; the uploads in flight end (within their deadlines), so
            # the message says what the registry holds.
            early.finish(cancel=True)
            consequence = leftover.what_left(early, consequence)
        require_ok(verified, partial, consequence=consequence)
    except BaseException as e:
        # Nothing more leaves; the uploads in flight end (within their deadlines) so
        # the registry's state is settled when the error is reported, unless
        # interrupted (Ctrl-C, SIGTERM). (Also an early push of the pass beside the
        # build not taken over yet.)
        ahead.stop(wait=isinstance(e, Exception))
        if early is not None:
            early.finish(cancel=True, wait=isinstance(e, Exception))
        raise
    if verified.report is not None:
        s.rep.info(verified.report.summary())
        hint = see(built) if see else "this command with --json lists every finding"
        for line in verify_step.platform_lines(verified.report, hint):
            s.rep.info(line)
    return Checked(built, verified, early)


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
