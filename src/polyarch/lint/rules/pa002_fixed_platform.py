"""PA002 fixed-from-platform: ``FROM --platform=<literal>`` in a stage that a target of
another platform builds.

Error when the pinned stage is (the base of) the image being built: every variant
carries the pinned platform's files. Warning for a helper stage that runs commands
without naming the target (its output is made for the pinned platform only, and it
is emulated on other build machines). A pinned stage that only provides files (web
assets, ``tonistiigi/xx``) or is selected per platform (``FROM base-${TARGETARCH}``)
is fine.
"""

from __future__ import annotations

from polyarch.lint.context import LintContext
from polyarch.lint.rules.common import target_aware

HINT = (
    "drop --platform (the stage then runs on each target platform), or use "
    "--platform=$BUILDPLATFORM for a stage whose output does not depend on the architecture "
    "(sources, assets, cross-compilers)"
)


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        if st.platform is None:
            continue
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
