"""PA002 fixed-from-platform: ``FROM --platform=<literal>`` in a stage that a target of
another platform builds, and the image itself built ``FROM --platform=$BUILDPLATFORM``.

Error when the pinned stage is (the base of) the image being built: every variant
carries the pinned platform's files. Warning for a helper stage that runs commands
without naming the target (its output is made for the pinned platform only, and it
is emulated on other build machines). A pinned stage that only provides files (web
assets, ``tonistiigi/xx``) or is selected per platform (``FROM base-${TARGETARCH}``)
is fine. The image stage (or its base) on ``$BUILDPLATFORM`` is an error: each variant
is the build machine's base image, unless it is ``scratch`` holding only
architecture-independent files.
"""

from __future__ import annotations

import re

from polyarch.lint.arch import arch_vars
from polyarch.lint.context import LintContext
from polyarch.lint.graph import PLATFORM_ARGS
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import ASSET_PATH, target_aware

HINT = (
    "drop --platform (the stage then runs on each target platform), or use "
    "--platform=$BUILDPLATFORM for a stage whose output does not depend on the architecture "
    "(sources, assets, cross-compilers)"
)


BUILD_HINT = (
    "drop --platform from the stage the image is built from (it then runs on each target "
    "platform); keep --platform=$BUILDPLATFORM on builder stages that cross-compile"
)


def _arch_independent_scratch(ctx: LintContext, st: Stage) -> bool:
    """A ``scratch`` image stage whose files are all architecture-independent output
    (``dist/``, bundles, assets): no base image, nothing that runs."""
    for g, v in ctx.reached(st.index):
        if (v.image or "").lower() != "scratch":
            return False
        for u in g.uses:
            if u.consumer == st.index and not all(ASSET_PATH.search(p.rstrip("/"))
                                                  for p in u.paths or ["/"]):
                return False
    for inst in st.instructions:
        if inst.keyword in ("COPY", "ADD") and not inst.flags.get("from"):
            return False
    return True


def _final_on_build(ctx: LintContext, st: Stage) -> None:
    """The image itself on ``$BUILDPLATFORM``: every variant is the build machine's."""
    if not ctx.multi_arch:
        return
    views = [(g, v) for g, v in ctx.reached(st.index)
             if v.kind == "build" and st.index in g.lineage()]
    if not views or _arch_independent_scratch(ctx, st):
        return
    image = views[0][1].image or st.image
    ctx.add("PA002", "error", st.from_inst.line,
            f"stage {st.label} is (the base of) the image being built and runs on "
            f"--platform={st.platform}: every variant ({', '.join(str(g.platform) for g, _ in views)})"
            f" gets the build machine's {image!r} and whatever runs in it, not the target's",
            BUILD_HINT, st)


def _argument_platform(ctx: LintContext, st: Stage) -> None:
    """``FROM --platform=linux/${ARCH}`` where every variable is a build argument without
    a value that follows the target (no default, not a platform ARG, not assigned from
    one): the platform is whatever ``--build-arg`` gives, one for every target, and no
    valid platform at all when it is not given."""
    reached = ctx.reached(st.index)
    if not ctx.multi_arch or not reached or any(v.kind != "unknown" for _, v in reached):
        return
    names = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", st.platform or ""))
    if not names:
        return
    texts = [f"{d.name}={d.default}" for d in ctx.df.global_args if d.default is not None]
    follows = arch_vars(texts, set(PLATFORM_ARGS), False)
    declared = {d.name for d in ctx.df.global_args}
    if names & follows or not names <= declared:
        return
    args = ", ".join(sorted(names))
    final = any(st.index in g.lineage() for g, _ in reached)
    if final:
        ctx.add("PA002", "error", st.from_inst.line,
                f"stage {st.label} is (the base of) the image being built and takes its "
                f"platform from build argument {args} (--platform={st.platform}), which no "
                "target platform sets: every variant gets the one platform passed with "
                "--build-arg, and without it the platform is invalid", ARG_HINT, st)
    elif any(i.keyword == "RUN" for i in st.instructions) and not target_aware(ctx, st):
        ctx.add("PA002", "warning", st.from_inst.line,
                f"stage {st.label} takes its platform from build argument {args} "
                f"(--platform={st.platform}), the same for every target: anything it builds "
                "is for that one platform", ARG_HINT, st)


ARG_HINT = (
    "drop --platform (the stage then runs on each target platform), or derive it from the "
    "target: --platform=$TARGETPLATFORM, or $BUILDPLATFORM for a stage whose output does not "
    "depend on the architecture"
)


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        if st.platform is None:
            continue
        _final_on_build(ctx, st)
        _argument_platform(ctx, st)
        others = sorted({str(g.platform) for g, v in ctx.reached(st.index)
                         if v.kind == "fixed" and v.runs_on is not None
                         and v.runs_on.architecture != g.platform.architecture})
        if not others:
            continue
        pinned = next(v.pinned for _, v in ctx.reached(st.index) if v.pinned)
        via = f" (from the default of ARG {st.platform})" if "$" in st.platform else ""
        final = any(st.index in g.lineage() for g, _ in ctx.reached(st.index))
        if final:
            ctx.add("PA002", "error", st.from_inst.line,
                    f"stage {st.label} is pinned to --platform={pinned}{via} and is (the base "
                    f"of) the image built for {', '.join(others)}: that variant would carry "
                    f"{pinned} content", HINT, st)
        elif any(i.keyword == "RUN" for i in st.instructions) and not target_aware(ctx, st):
            ctx.add("PA002", "warning", st.from_inst.line,
                    f"stage {st.label} is pinned to --platform={pinned}{via} and runs commands "
                    f"for {', '.join(others)} too: anything it builds is for {pinned} only, "
                    "and it runs emulated on other build machines", HINT, st)
