"""Kinds of the settings of the run (``SETTINGS`` in :mod:`polyarch.config.table`):
deadlines, paths, a git ref, a positive whole number. A refused value says what it is
not and how to write one (:class:`Refused`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from polyarch.config.kinds import Kind, _str


class Refused(ValueError):
    """A setting's value refused: what it is not, and how to write one (``{default}`` in
    the hint stands for the setting's default)."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def deadline(most: int) -> Kind:
    """Seconds above 0 and at most ``most``, as a float (``2.5``, ``1e3``)."""

    def parse(v: Any) -> float:
        n = -1.0
        if isinstance(v, int | float) and not isinstance(v, bool):
            n = float(v)
        elif isinstance(v, str) and _FLOAT.fullmatch(v.strip()):
            n = float(v.strip())
        if not 0 < n <= most:  # NaN fails too
            raise Refused("a number of seconds",
                          f"use a number between 0 and {most}, e.g. {{default}}")
        return n

    return Kind(parse, "a number of seconds", f"seconds, above 0 and at most {most}")


def _path(v: Any) -> Path:
    return Path(_str(v)).expanduser()


def _git_ref(v: Any) -> str:
    ref = _str(v).strip()
    if not ref.startswith("refs/"):
        raise Refused("a full ref", "write refs/heads/NAME, refs/tags/NAME or refs/pull/N/merge")
    return ref


def _positive_int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    s = v.strip() if isinstance(v, str) else ""
    if not (s.isascii() and s.isdigit() and len(s) < 10) or int(s) < 1:
        raise Refused("a positive whole number", "for example 7 or 12")
    return int(s)


PATH = Kind(_path, "a path", "a path (~ expands)")
GIT_REF = Kind(_git_ref, "a full ref", "refs/heads/NAME, refs/tags/NAME or refs/pull/N/merge")
POSITIVE_INT = Kind(_positive_int, "a positive whole number", "a whole number above 0")
