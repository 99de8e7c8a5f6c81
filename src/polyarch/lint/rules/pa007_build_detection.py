"""PA007 build-platform-detection (info): ``uname -m``, ``dpkg --print-architecture``...
in a ``$BUILDPLATFORM`` stage report the build machine, not the target."""

from __future__ import annotations

from polyarch.lint.arch import RUNTIME_DETECT
from polyarch.lint.context import LintContext
from polyarch.lint.shell import blank_comments


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        if {v.kind for _, v in ctx.reached(st.index)} != {"build"}:
            continue
        for inst in st.instructions:
            if inst.keyword != "RUN":
                continue
            for t in inst.texts():
                m = RUNTIME_DETECT.search(blank_comments(t.value))
                if m:
                    ctx.add("PA007", "info", t.line_at(m.start()),
                            f"stage {st.label} runs on $BUILDPLATFORM, where "
                            f"{m.group(0).strip()!r} reports the build machine's architecture, "
                            "not the target's",
                            "fine for tools that run during the build; for anything that ends "
                            "up in the image use ARG TARGETARCH / TARGETPLATFORM", st)
                    break
