"""PA009 platform-arg-default (error): ``ARG TARGETARCH=amd64`` (or any default on an
automatic platform ARG, in a stage or globally, e.g. ``ARG BUILDPLATFORM=linux/amd64``).

BuildKit lets the default win over the value the builder sets, so every variant is
built as if for that platform: the arm64 image downloads or compiles amd64 files.
"""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.graph import BUILD_VARS, PLATFORM_ARGS, auto_args
from polyarch.lint.model import ArgDecl, Stage
from polyarch.lint.parser import parse_arg
from polyarch.lint.shellwords import try_expand


def _report(ctx: LintContext, decl: ArgDecl, stage: Stage | None, where: str) -> None:
    if decl.default is None or decl.name not in PLATFORM_ARGS:
        return
    if re.fullmatch(r"\$\{?" + decl.name + r"\}?", decl.default.strip("\"'")):
        return  # ARG TARGETARCH=$TARGETARCH: the builder's value again
    wrong = []
    for g in ctx.graphs:
        auto = auto_args(g.platform, g.build)
        got = try_expand(decl.default, auto)
        if got is None or got.result != auto[decl.name] or decl.name in BUILD_VARS:
            wrong.append(str(g.platform))
    if not wrong:
        return
    value = decl.default
    if decl.name in BUILD_VARS:
        effect = ("BUILDPLATFORM stages then claim that platform whatever machine builds them, "
                  "and cross-compilation picks the wrong host")
    else:
        effect = f"the images for {', '.join(wrong)} are built as if for {value}"
    ctx.add("PA009", "error", decl.line,
            f"{where}`ARG {decl.name}={value}` overrides the value the builder sets: {effect}",
            f"declare it without a value (`ARG {decl.name}`); the builder always sets it", stage)


def check(ctx: LintContext) -> None:
    for decl in ctx.df.global_args:
        _report(ctx, decl, None, "global ")
    for st in ctx.reachable_stages():
        for inst in st.instructions:
            if inst.keyword == "ARG":
                for decl in parse_arg(inst, ctx.df.escape):
                    _report(ctx, decl, st, f"stage {st.label}: ")
