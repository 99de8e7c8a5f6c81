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


_VALUE_LIKE = re.compile(r"(?:linux|windows|darwin|amd64|arm64|arm|386|x86_64|aarch64|ppc64le"
                         r"|s390x|riscv64|v[5-8])(?:/[\w./-]*)?")


def _space_default(ctx: LintContext, decls: list[ArgDecl], stage: Stage | None) -> None:
    """``ARG TARGETARCH amd64``: BuildKit reads two ARG names without values, so the
    builder's value is used; the author probably meant a default (which PA009 reports)."""
    for a, b in zip(decls, decls[1:], strict=False):
        if (a.name in PLATFORM_ARGS and a.default is None and b.default is None
                and _VALUE_LIKE.fullmatch(b.name)):
            ctx.add("PA009", "info", a.line,
                    f"`ARG {a.name} {b.name}` declares two ARGs, {a.name} and {b.name!r}, "
                    f"neither with a value (BuildKit's ARG has no `NAME value` form): "
                    f"{a.name} keeps the builder's value",
                    f"write `ARG {a.name}` alone; `ARG {a.name}={b.name}` would override the "
                    "builder's value for every platform", stage)


def check(ctx: LintContext) -> None:
    for decl in ctx.df.global_args:
        _report(ctx, decl, None, "global ")
    in_stage = {id(i) for st in ctx.df.stages for i in st.instructions}
    for inst in ctx.df.instructions:
        if inst.keyword == "ARG" and id(inst) not in in_stage:
            _space_default(ctx, parse_arg(inst, ctx.df.escape), None)
    for st in ctx.reachable_stages():
        for inst in st.instructions:
            if inst.keyword == "ARG":
                decls = parse_arg(inst, ctx.df.escape)
                for decl in decls:
                    _report(ctx, decl, st, f"stage {st.label}: ")
                _space_default(ctx, decls, st)
