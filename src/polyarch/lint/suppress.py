"""Inline suppressions: ``# polyarch: ignore=PA003`` (or ``ignore=PA001,PA003``, or
``ignore=all``) on a comment line silences those rules for the next instruction, or for
the instruction it sits in (a comment inside a continued instruction).
``# polyarch: ignore-file=PA001`` anywhere silences a rule for the whole file."""

from __future__ import annotations

import bisect
import re

from polyarch.lint.model import Dockerfile, Finding

_MARK = re.compile(r"^\s*#\s*polyarch:\s*(ignore|ignore-file)\s*=\s*([A-Za-z0-9_, ]+?)\s*$",
                   re.IGNORECASE)


def _ids(text: str) -> set[str]:
    return {x.strip().upper() for x in text.split(",") if x.strip()}


def apply(df: Dockerfile, findings: list[Finding]) -> list[Finding]:
    whole: set[str] = set()
    # line -> rules silenced on it
    per_line: dict[int, set[str]] = {}
    pending: list[tuple[int, set[str]]] = []
    spans = sorted((i.line, i.end_line) for i in df.instructions)
    for n, text in enumerate(df.lines, 1):
        m = _MARK.match(text)
        if not m:
            continue
        ids = _ids(m.group(2))
        if m.group(1).lower() == "ignore-file":
            whole |= ids
            continue
        pending.append((n, ids))
    starts = [a for a, _ in spans]
    for n, ids in pending:
        k = bisect.bisect_right(starts, n) - 1
        if k >= 0 and spans[k][1] >= n:
            span = spans[k]  # inside a continued instruction
        elif k + 1 < len(spans):
            span = spans[k + 1]  # the next instruction
        else:
            continue
        for ln in range(span[0], span[1] + 1):
            per_line.setdefault(ln, set()).update(ids)
    if not whole and not per_line:
        return findings

    def silenced(f: Finding) -> bool:
        ids = whole | per_line.get(f.line, set())
        return f.rule in ids or "ALL" in ids

    return [f for f in findings if not silenced(f)]
