"""The CLI run in process (``polyarch.cli.run``) with its exit code and captured output:
what the ``run_cli`` fixture of ``conftest.py`` returns."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def error_line(run: Result) -> str:
    """The one ``polyarch: error:`` line of a run (fails when there are none or several)."""
    lines = [ln for ln in run.err.splitlines() if ln.startswith("polyarch: error:")]
    assert len(lines) == 1, run.err
    return lines[0]
