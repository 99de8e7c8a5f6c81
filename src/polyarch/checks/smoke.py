"""Smoke runs: start each platform's image through the engine.

Two runs per platform: ``uname -m`` (is the machine inside the one the platform
names?) and, when asked, the user's command (does it exit 0?). Both go through
:func:`polyarch.proc.run` with ``docker run --rm --platform P IMAGE@DIGEST ...``; the
user's command follows ``docker run`` rules (it replaces the image's ``CMD`` and is
passed to its ``ENTRYPOINT`` when it has one).

An image whose arm64 entry holds x86-64 binaries runs fine on an x86-64 machine (no
emulator is involved): ``uname -m`` then says ``x86_64`` and the run is reported.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from polyarch.errors import FatalError
from polyarch.platforms import Platform
from polyarch.proc import run

#: Seconds a smoke run may take (emulated start-up is slow).
TIMEOUT = 300.0


@dataclass(frozen=True)
class SmokeResult:
    severity: str  # "error", "warning" or "ok"
    message: str
    #: The smoke command's first line of output (``ok`` results of the command only).
    first_line: str | None = None


class RunArgv(Protocol):
    """Builds the command that runs a container (an engine's ``run_argv``)."""

    def __call__(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]: ...


def docker_run_argv(ref: str, platform: Platform, command: Sequence[str], *,
                    entrypoint: str | None = None) -> list[str]:
    ep = ["--entrypoint", entrypoint] if entrypoint is not None else []
    return ["docker", "run", "--rm", "--platform", str(platform), *ep, ref, *command]


def _docker_run(platform: Platform, image: str, args: list[str],
                entrypoint: str | None = None,
                run_argv: RunArgv = docker_run_argv) -> tuple[int, str, str]:
    argv = run_argv(image, platform, args, entrypoint=entrypoint)
    try:
        res = run(argv, check=False, timeout=TIMEOUT)
    except FatalError as e:
        return 127, "", e.message
    return res.returncode, res.stdout, res.stderr


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:400]


def smoke(platform: Platform, image: str, command: str | None,
          run_argv: RunArgv = docker_run_argv) -> list[SmokeResult]:
    """Run the checks for one platform; ``image`` is ``name@sha256:...`` of its manifest.
    ``run_argv`` is the engine's (docker by default; podman's under ``--engine podman``)."""
    out: list[SmokeResult] = []
    rc, stdout, stderr = _docker_run(platform, image, ["-m"], entrypoint="uname",
                                     run_argv=run_argv)
    machine = stdout.strip()
    if rc != 0:
        out.append(SmokeResult("warning", f"could not run 'uname -m' in the image (exit {rc}):"
                                          f" {_tail(stderr) or 'no output'}"))
    elif machine != platform.uname:
        out.append(SmokeResult("error", f"'uname -m' inside says {machine!r}; {platform} should"
                                        f" say {platform.uname!r}"))
    else:
        out.append(SmokeResult("ok", f"uname -m: {machine}"))
    if command:
        args = shlex.split(command)
        rc, stdout, stderr = _docker_run(platform, image, args, run_argv=run_argv)
        if rc != 0:
            out.append(SmokeResult("error", f"smoke command {command!r} exited {rc}:"
                                            f" {_tail(stderr or stdout) or 'no output'}"))
        else:
            first = next((ln.strip() for ln in (stdout or stderr).splitlines() if ln.strip()),
                         "")
            out.append(SmokeResult("ok", f"smoke command {command!r} exited 0", first[:200]))
    return out
