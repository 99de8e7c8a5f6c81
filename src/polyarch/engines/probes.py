"""Engine look-ups started early: ``docker info`` (which also lists the buildx
plugin's version) and ``docker buildx inspect`` take about as long as the Python imports
of a build, so ``publish`` and ``build`` start them first and preflight takes their
results.

Each result is used at most once, only by the same command line in the same environment
and only shortly after it started; anything else runs the command again. A result left
unused is dropped when the next command starts its look-ups.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from polyarch import proc
from polyarch.errors import EnvironmentProblem

#: Seconds after its start in which an early result may be used.
MAX_AGE = 10.0
INFO = ("info", "--format", "{{json .}}")
TIMEOUTS = {"info": 60.0, "version": 60.0, "inspect": 120.0}

_Key = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
_early: dict[_Key, tuple[float, Future[proc.Result]]] = {}
_lock = threading.Lock()


def _key(argv: Sequence[str]) -> _Key:
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DOCKER_")
                       or k in ("PATH", "HOME")))
    return tuple(argv), env


def docker_argv(docker_context: str | None, *args: str) -> list[str]:
    return ["docker", *(["--context", docker_context] if docker_context else []), *args]


def start(options: Mapping[str, Any]) -> None:
    """Start the look-ups preflight will make for these command-line options and the
    POLYARCH_* environment (when the engine is docker); a config file that says
    otherwise only leaves them unused. A look-up already started for the same command
    line (by :func:`start_from_argv`) is kept; any other is dropped."""

    def value(name: str) -> Any:
        return options.get(name) or os.environ.get(f"POLYARCH_{name.upper()}") or None

    if value("engine") not in (None, "docker") or value("nodes"):
        with _lock:
            _early.clear()
        return
    ctx, builder = value("docker_context"), value("builder")
    argvs = [docker_argv(ctx, *INFO),
             docker_argv(ctx, "buildx", "inspect", *([builder] if builder else []))]
    now = time.monotonic()
    with _lock:
        keys = [_key(argv) for argv in argvs]
        kept = {k: v for k, v in _early.items() if k in keys and now - v[0] <= MAX_AGE}
        _early.clear()
        _early.update(kept)
        for key, argv in zip(keys, argvs, strict=True):
            if key in _early:
                continue
            fut: Future[proc.Result] = Future()
            _early[key] = (now, fut)
            threading.Thread(target=_run, args=(fut, argv), daemon=True).start()


#: The flags of the options :func:`start` reads (config/table.py declares them).
ARGV_FLAGS = {"--engine": "engine", "--builder": "builder", "--context": "docker_context"}
#: What starts the look-ups from the raw command line.
ARGV_COMMANDS = ("publish", "build")


def start_from_argv(argv: Sequence[str]) -> None:
    """The look-ups of ``publish`` and ``build`` (not a dry run, not --help) started
    from the raw command line, before the command's module is imported and its options
    parsed: the command's own :func:`start` then keeps them when its parsed options name
    the same look-ups, and replaces them when not (a value this scan misread only
    costs a look-up nobody uses)."""
    if not argv or argv[0] not in ARGV_COMMANDS:
        return
    options: dict[str, str] = {}
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--":
            break
        if arg in ("--dry-run", "--help", "-h"):
            return
        flag, eq, value = arg.partition("=")
        if flag in ARGV_FLAGS:
            options[ARGV_FLAGS[flag]] = value if eq else next(rest, "")
    start(options)


def _timeout(argv: Sequence[str]) -> float:
    i = argv.index("buildx") + 1 if "buildx" in argv else argv.index("info")
    return TIMEOUTS[argv[i]]


def _run(fut: Future[proc.Result], argv: list[str]) -> None:
    try:
        fut.set_result(proc.run(argv, check=False, echo=False, timeout=_timeout(argv),
                                error_class=EnvironmentProblem))
    except BaseException as e:  # given to whoever takes the result
        fut.set_exception(e)


def run(argv: Sequence[str]) -> proc.Result:
    """The early result of ``argv`` if there is a fresh one, else run it now."""
    with _lock:
        started, fut = _early.pop(_key(argv), (0.0, None))
    if fut is not None and time.monotonic() - started <= MAX_AGE:
        return fut.result()
    return proc.run(argv, check=False, echo=False, timeout=_timeout(argv),
                    error_class=EnvironmentProblem)
