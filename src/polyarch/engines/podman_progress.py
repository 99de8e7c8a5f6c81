"""Following ``podman build``: step events per platform from its log file as they
happen, and a failed build's own text turned into a typed error."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from polyarch.engines.base import StepEvent
from polyarch.errors import BuildError
from polyarch.platforms import Platform

_STEP = re.compile(r"^(?:\[(linux/[a-z0-9]+(?:/v\d)?)\] )?(STEP \d+/\d+: .*|COMMIT.*)$")


class StepLog:
    """Turns podman's step output into :class:`StepEvent` s and keeps it for errors.

    Podman prefixes each step with ``[platform]`` when it builds several platforms;
    with one platform the prefix is missing and the step belongs to that platform.
    """

    def __init__(self, platforms: Sequence[Platform],
                 on_step: Callable[[StepEvent], None] | None) -> None:
        self.only = str(platforms[0]) if len(platforms) == 1 else None
        self.on_step = on_step
        self.lines: list[str] = []
        self.open: dict[str | None, tuple[str, float, bool]] = {}  # platform -> step
        self.last_platform: str | None = self.only
        self.output: dict[tuple[str | None, str], list[str]] = {}
        self.failed: list[tuple[str | None, str]] = []

    def feed(self, line: str) -> None:
        self.lines.append(line)
        m = _STEP.match(line)
        if m is None:
            cur = self.open.get(self.last_platform)
            if cur is not None:
                if line.startswith("--> Using cache"):
                    self.open[self.last_platform] = (cur[0], cur[1], True)
                elif not line.startswith("--> "):
                    self.output.setdefault((self.last_platform, cur[0]), []).append(line)
            return
        plat = m.group(1) or self.only
        name = m.group(2)
        self._close(plat, None)
        self.last_platform = plat
        self.open[plat] = (name, time.monotonic(), False)
        self._emit(StepEvent(plat, name, "started"))

    def finish(self, error: str | None) -> None:
        for plat in list(self.open):
            if error:
                self.failed.append((plat, self.open[plat][0]))
            self._close(plat, error)

    def failed_step(self) -> tuple[str | None, str, str] | None:
        """(platform, step, its output) of the first step that was running when the build
        failed."""
        if not self.failed:
            return None
        plat, name = self.failed[0]
        return plat, name, "\n".join(self.output.get((plat, name), []))

    def _close(self, plat: str | None, error: str | None) -> None:
        cur = self.open.pop(plat, None)
        if cur is None:
            return
        name, started, cached = cur
        state = "error" if error else ("cached" if cached else "done")
        self._emit(StepEvent(plat, name, state, error, time.monotonic() - started))

    def _emit(self, ev: StepEvent) -> None:
        if self.on_step is not None:
            self.on_step(ev)


class _Follow:
    """Follow a growing file in a thread and pass each complete line to a callback."""

    def __init__(self, path: Path, on_line: Callable[[str], None]) -> None:
        self.path = path
        self.on_line = on_line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Follow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        buf = ""
        with self.path.open("r", encoding="utf-8", errors="replace") as f:
            while True:
                stopping = self._stop.is_set()
                chunk = f.read()
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for line in lines:
                        self._deliver(line.rstrip("\r"))
                elif stopping:
                    break
                else:
                    self._stop.wait(0.1)
        if buf:
            self._deliver(buf)

    def _deliver(self, line: str) -> None:
        # A broken progress display must not kill the build.
        with contextlib.suppress(Exception):
            self.on_line(line)


# -- errors --------------------------------------------------------------------------

def build_reason(stderr: str) -> str:
    """The most specific line of podman's own error text."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        m = re.match(r"^\*?\s*(building at STEP .*)$", ln)
        if m:
            return m.group(1)
    for ln in reversed(lines):
        if ln.startswith("Error:"):
            return ln.removeprefix("Error:").strip()
    return lines[-1] if lines else "podman build failed"


def build_failure(stderr: str, steps: StepLog) -> BuildError:
    """A failed ``podman build`` with podman's own text: the failing step's output, then
    podman's error."""
    reason = build_reason(stderr)
    parts = []
    failed = steps.failed_step()
    where = ""
    if failed is not None:
        plat, name, out = failed
        where = f" ({plat})" if plat and not steps.only else ""
        parts.append(f"--- {f'[{plat}] ' if plat else ''}{name}")
        if out.strip():
            parts.append("\n".join(out.rstrip().splitlines()[-30:]))
    elif steps.lines:
        parts.append("\n".join(steps.lines[-30:]))
    if stderr.strip():
        parts.append("\n".join(stderr.rstrip().splitlines()[-30:]))
    return BuildError(f"build failed{where}: {reason}", detail="\n".join(parts) or None)
