"""PA000 parse-error: what BuildKit would refuse (error), and a frontend it would use
instead of the standard one (note)."""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.shellwords import ExpandError, expand

_STANDARD = re.compile(r"^(?:docker\.io/)?docker/dockerfile(?:-upstream)?(?::[\w.-]+)?(?:@sha256:"
                       r"[0-9a-f]{64})?$")


def check(ctx: LintContext) -> None:
    for line, msg in ctx.df.problems:
        ctx.add("PA000", "error", line, msg, "fix the syntax; BuildKit would refuse this file",
                None)
    syntax = ctx.df.directives.get("syntax")
    if syntax and not _STANDARD.match(syntax.strip()):
        ctx.add("PA000", "note", 1,
                f"`# syntax={syntax}` selects a custom frontend: this file is linted as a "
                "standard Dockerfile, which that frontend may read differently",
                "nothing to do when the frontend is a drop-in (e.g. a mirror of "
                "docker/dockerfile)", None)
    for st in ctx.df.stages:
        for word in (st.image, st.platform or ""):
            try:
                expand(word, {}, escape=ctx.df.escape)
            except ExpandError as e:
                ctx.add("PA000", "error", st.from_inst.line,
                        f"FROM {word!r}: {e} (BuildKit refuses this)",
                        "fix the variable reference", st)
