"""Run the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def polyarch(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 600) -> Run:
    full = dict(os.environ)
    full.pop("POLYARCH_DEBUG", None)
    if env:
        full.update(env)
    cp = subprocess.run([sys.executable, "-m", "polyarch", *args], cwd=cwd, env=full,
                        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(cp.returncode, cp.stdout, cp.stderr)


def last_error_line(run: Run) -> str:
    lines = [ln for ln in run.err.splitlines() if ln.startswith("polyarch: error:")]
    assert lines, f"no error line in stderr:\n{run.err}"
    return lines[-1]
