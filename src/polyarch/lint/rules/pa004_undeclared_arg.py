"""PA004 undeclared-platform-arg (error): ``$TARGETARCH`` & co. used in a stage that
never declares them.

The builder sets the automatic platform ARGs in the global scope, where only ``FROM``
lines see them. Inside a stage the variable is empty until ``ARG TARGETARCH``, in that
stage or in a stage it is built ``FROM`` (BuildKit carries a stage's ARGs into the
stages built FROM it).
"""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.graph import PLATFORM_ARGS, stage_args
from polyarch.lint.parser import parse_arg

_REF = re.compile(
    r"(?<!\\)\$(?:\{(" + "|".join(PLATFORM_ARGS) + r")(?![A-Za-z0-9_])|("
    + "|".join(PLATFORM_ARGS) + r")(?![A-Za-z0-9_]))"
)


def check(ctx: LintContext) -> None:
    global_names = {a.name for a in ctx.df.global_args}
    for st in ctx.reachable_stages():
        g = next(g for g, _ in ctx.reached(st.index))
        first = st.instructions[0] if st.instructions else None
        _, declared = stage_args(ctx.df, g, st.index, upto=first)
        reported: set[str] = set()
        for inst in st.instructions:
            for t in inst.texts():
                for m in _REF.finditer(t.value):
                    name = m.group(1) or m.group(2)
                    if name in declared or name in reported:
                        continue
                    if re.search(rf"(?<![\w$]){name}=|\bfor\s+{name}\b|\bread\s+{name}\b",
                                 t.value):
                        continue
                    reported.add(name)
                    glob = (f"; the global `ARG {name}` only reaches FROM lines"
                            if name in global_names else "")
                    ctx.add("PA004", "error", t.line_at(m.start()),
                            f"stage {st.label}: {inst.keyword} uses ${name} but neither the "
                            f"stage nor one it is built FROM declares `ARG {name}`, so it is "
                            f"empty{glob}",
                            f"add `ARG {name}` (no value; the builder fills it in) after the "
                            f"FROM of stage {st.label}, before line {inst.line}", st)
            if inst.keyword == "ARG":
                declared.update(a.name for a in parse_arg(inst, ctx.df.escape))
            elif inst.keyword == "ENV":
                declared.update(w.split("=", 1)[0] for w in inst.args.value.split())
