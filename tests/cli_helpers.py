"""Run the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import re
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


def parse_github_output(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file as the runner does: ``k=v`` lines and heredocs."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_-]+)<<(.+)$", line)
        if m:
            key, delim = m.groups()
            value: list[str] = []
            while lines[i] != delim:
                value.append(lines[i])
                i += 1
            i += 1
            out[key] = "\n".join(value)
        else:
            key, _, value_ = line.partition("=")
            out[key] = value_
    return out
