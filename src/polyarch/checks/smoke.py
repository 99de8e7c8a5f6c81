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

import hashlib
import json
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from polyarch.errors import FatalError
from polyarch.platforms import Platform
from polyarch.proc import run

#: Seconds a smoke run may take by default (emulated start-up is slow); the
#: ``smoke-timeout`` option (``--smoke-timeout``, ``POLYARCH_SMOKE_TIMEOUT``) changes it.
TIMEOUT = 300.0
#: A cache record is a few hundred bytes; anything larger is not ours.
_RECORD_LIMIT = 64 * 1024


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
                run_argv: RunArgv = docker_run_argv,
                timeout: float = TIMEOUT) -> tuple[int, str, str]:
    argv = run_argv(image, platform, args, entrypoint=entrypoint)
    try:
        # A non-zero exit is the answer here (the finding), not a failure of polyarch.
        res = run(argv, check=False, timeout=timeout)
    except FatalError as e:
        return 127, "", e.message
    return res.returncode, res.stdout, res.stderr


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:400]


def smoke(platform: Platform, image: str, command: str | None,
          run_argv: RunArgv = docker_run_argv, timeout: float = TIMEOUT) -> list[SmokeResult]:
    """Run the checks for one platform; ``image`` is ``name@sha256:...`` of its manifest.
    ``run_argv`` is the engine's (docker by default; podman's under ``--engine podman``);
    each run ends after ``timeout`` seconds."""
    out: list[SmokeResult] = []
    rc, stdout, stderr = _docker_run(platform, image, ["-m"], entrypoint="uname",
                                     run_argv=run_argv, timeout=timeout)
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
        rc, stdout, stderr = _docker_run(platform, image, args, run_argv=run_argv,
                                         timeout=timeout)
        if rc != 0:
            out.append(SmokeResult("error", f"smoke command {command!r} exited {rc}:"
                                            f" {_tail(stderr or stdout) or 'no output'}"))
        else:
            first = next((ln.strip() for ln in (stdout or stderr).splitlines() if ln.strip()),
                         "")
            out.append(SmokeResult("ok", f"smoke command {command!r} exited 0", first[:200]))
    return out


@dataclass(frozen=True)
class SmokeCache:
    """Smoke results that passed, by (platform manifest digest, smoke command, smoke
    entrypoint, engine). A manifest digest names its config and every layer, so the same
    key runs the same bytes: a variant that passed is not run again. Only passes are
    kept (a failure or a warning is run again next time), one small JSON file each."""

    root: Path

    def _path(self, digest: str, command: str | None, entrypoint: str | None,
              engine: str) -> Path:
        key = json.dumps([digest, command, entrypoint, engine]).encode()
        return self.root / f"{hashlib.sha256(key).hexdigest()}.json"

    def get(self, digest: str, command: str | None, entrypoint: str | None,
            engine: str) -> list[SmokeResult] | None:
        path = self._path(digest, command, entrypoint, engine)
        try:
            with path.open("rb") as f:
                raw = f.read(_RECORD_LIMIT + 1)
            doc = json.loads(raw) if len(raw) <= _RECORD_LIMIT else None
        except (OSError, ValueError):
            return None
        if (not isinstance(doc, dict) or doc.get("digest") != digest
                or not isinstance(doc.get("results"), list)):
            return None
        out = []
        for item in doc["results"]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and (item[1] is None or isinstance(item[1], str))):
                return None
            out.append(SmokeResult("ok", item[0], item[1]))
        return out or None

    def put(self, digest: str, command: str | None, entrypoint: str | None, engine: str,
            results: Sequence[SmokeResult]) -> None:
        """Keep ``results`` when every one passed; a cache that cannot be written is
        skipped (the next run smokes again)."""
        if not results or any(r.severity != "ok" for r in results):
            return
        path = self._path(digest, command, entrypoint, engine)
        doc = {"digest": digest, "command": command, "entrypoint": entrypoint,
               "engine": engine, "results": [[r.message, r.first_line] for r in results],
               "when": time.time()}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, path)
        except OSError:
            return
