"""Engine look-ups started early: ``docker info`` (which also lists the buildx plugin's
version) and ``docker buildx inspect`` take about as long as the Python imports of a
build, so ``publish`` and ``build`` make their engine first (:func:`polyarch.engines.start_engine`)
and it starts them, before the engine's own module is loaded; its preflight takes their
results.

The look-ups belong to the engine object that started them, or to the program's entry
(:func:`polyarch.engines.start_at_entry`), which starts them before the command line is
read and hands them to the engine made for the same command lines (:func:`adopt`).
Each result is used at most once, only for the same command line in the same
environment and only shortly after it started; anything else runs the command again.
A look-up started early may be answered from what an earlier command kept and the
daemon's fresh answer instead of running (:mod:`polyarch.engines.remembered`).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from polyarch import proc
from polyarch.errors import EnvironmentProblem

#: Seconds after its start in which an early result may be used.
MAX_AGE = 10.0
INFO = ("info", "--format", "{{json .}}")
TIMEOUTS = {"info": 60.0, "version": 60.0, "inspect": 120.0}

_Key = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
T = TypeVar("T")


def docker_argv(docker_context: str | None, *args: str) -> list[str]:
    """A ``docker`` command line, in ``docker_context`` when one is named."""
    return ["docker", *(["--context", docker_context] if docker_context else []), *args]


def buildx_argv(docker_context: str | None, plugin: str | None, *args: str) -> list[str]:
    """A buildx command line: the plugin run directly where it is known
    (:mod:`polyarch.engines.buildx_plugin`), else through ``docker buildx``."""
    if plugin is not None and docker_context is None:
        return [plugin, *args]
    return docker_argv(docker_context, "buildx", *args)


def preflight_argvs(docker_context: str | None, builder: str | None,
                    plugin: str | None = None) -> list[list[str]]:
    """The look-ups a buildx preflight makes: ``docker info`` and ``docker buildx
    inspect [BUILDER]``."""
    return [docker_argv(docker_context, *INFO),
            buildx_argv(docker_context, plugin, "inspect", *([builder] if builder else []))]


def _key(argv: Sequence[str]) -> _Key:
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DOCKER_")
                       or k in ("PATH", "HOME")))
    return tuple(argv), env


def _timeout(argv: Sequence[str]) -> float:
    if os.path.basename(argv[0]) == "docker-buildx":
        return TIMEOUTS[argv[1]]
    i = argv.index("buildx") + 1 if "buildx" in argv else argv.index("info")
    return TIMEOUTS[argv[i]]


# Probes are not checked: their callers read a non-zero exit as an answer (no engine, no
# buildx, no such builder) and word the error, if any, from what was printed.
def _run(fut: Future[proc.Result], argv: list[str], cancel: proc.Cancel) -> None:
    try:
        fut.set_result(proc.run(argv, check=False, echo=False, timeout=_timeout(argv),
                                error_class=EnvironmentProblem, cancel=cancel))
    except BaseException as e:  # given to whoever takes the result
        fut.set_exception(e)


#: Seconds beyond a look-up's own deadline that its result is waited for.
RESULT_GRACE = 10.0
#: Longest wait, at exit, for look-ups nobody took to be stopped (seconds).
ABANDON_WAIT = 1.0


class Probes:
    """One engine's look-up commands: started early in threads, or run when asked.

    Where an earlier command kept what it learnt (:mod:`polyarch.engines.remembered`),
    a started look-up is answered from that and the daemon's fresh ``/info`` instead;
    an answer taken from a command that ran is kept for the next commands."""

    def __init__(self) -> None:
        #: per command line: when it started, its result, and the fingerprint its
        #: answer is kept under once taken (None: not kept)
        self._early: dict[_Key, tuple[float, Future[proc.Result], str | None]] = {}
        self._lock = threading.Lock()
        self._cancel = proc.Cancel()
        self._threads: list[threading.Thread] = []
        #: command lines answered from what was kept (not kept again; forgotten when
        #: the preflight they answered fails)
        self.recalled: list[tuple[str, ...]] = []
        #: the daemon's description (``remembered.daemon_key``) once known, and the
        #: builder answers waiting for it to be kept
        self._daemon: str | None = None
        self._waiting: list[tuple[tuple[str, ...], str, str]] = []

    def _thread(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def start(self, argvs: Sequence[Sequence[str]]) -> None:
        """Start ``argvs``; those an earlier command kept an answer for are answered
        from it in one thread of their own (which runs them after all where the daemon
        does not answer or the answer no longer fits)."""
        from polyarch.engines import remembered

        kept: list[tuple[list[str], Future[proc.Result], str]] = []
        with self._lock:
            for argv in argvs:
                fut: Future[proc.Result] = Future()
                fp = _safe(remembered.fingerprint, argv, os.environ)
                self._early[_key(argv)] = (time.monotonic(), fut, fp)
                if fp is not None and _safe(remembered.kept_for, argv, os.environ, fp):
                    kept.append((list(argv), fut, fp))
                else:
                    self._thread(_run, fut, list(argv), self._cancel)
            if kept:
                self._thread(self._answer_kept, kept)

    def _answer_kept(self, kept: list[tuple[list[str], Future[proc.Result], str]]) -> None:
        from polyarch.engines import remembered

        env = os.environ
        try:
            sock = _safe(remembered.docker_socket, kept[0][0], env)
            info = _safe(remembered.daemon_info, sock) if sock is not None else None
            daemon = _safe(remembered.daemon_key, info) if info is not None else None
            if daemon is not None:
                with self._lock:
                    self._daemon = daemon
                    waiting, self._waiting = self._waiting, []
                for w_argv, w_fp, w_out in waiting:
                    _safe(remembered.keep, w_argv, env, w_fp, w_out, daemon)
            for argv, fut, fp in kept:
                answer = None
                if daemon is not None and info is not None:
                    part = _safe(remembered.recall, argv, env, fp,
                                 daemon if remembered.is_inspect(argv) else None)
                    if part is not None and remembered.is_info(argv):
                        answer = _safe(remembered.synthesized_info, info, part)
                    else:
                        answer = part
                if answer is None:  # as if nothing had been kept
                    self._thread(_run, fut, argv, self._cancel)
                    continue
                with self._lock:
                    self.recalled.append(tuple(argv))
                fut.set_result(proc.Result(tuple(argv), 0, answer, ""))
        except BaseException as e:  # no look-up is left without an answer
            for _argv, fut, _fp in kept:
                if not fut.done():
                    fut.set_exception(e)

    def forget_recalled(self) -> bool:
        """Forget the kept answers this engine's look-ups were answered from (they led
        to a failed preflight); whether there were any."""
        from polyarch.engines import remembered

        with self._lock:
            recalled, self.recalled = self.recalled, []
        for argv in recalled:
            _safe(remembered.forget, argv, os.environ)
        return bool(recalled)

    def abandon(self, wait: float = 0.0) -> None:
        """Nobody will take these results: stop the look-ups still running (within
        :data:`polyarch.proc.CANCEL_LATENCY`), waiting up to ``wait`` seconds for them
        to be stopped."""
        self._cancel.set(EnvironmentProblem("an engine look-up nobody needed was stopped"))
        end = time.monotonic() + wait
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))

    def started(self) -> list[tuple[str, ...]]:
        """The command lines started early whose result is not taken yet."""
        with self._lock:
            return sorted(argv for argv, _ in self._early)

    def run(self, argv: Sequence[str]) -> proc.Result:
        """The early result of ``argv`` if there is a fresh one (kept for the next
        commands), else run it now."""
        with self._lock:
            started, fut, fp = self._early.pop(_key(argv), (0.0, None, None))
        if fut is not None and time.monotonic() - started <= MAX_AGE:
            try:
                result = fut.result(timeout=_timeout(argv) + RESULT_GRACE)
            except TimeoutError:  # (concurrent.futures' is the built-in one since 3.11)
                raise EnvironmentProblem(
                    f"{' '.join(argv[:3])} gave no answer in {_timeout(argv):.0f} s",
                    hint="is the Docker engine responsive? (docker info)") from None
            if fp is not None and result.ok and tuple(argv) not in self.recalled:
                self._keep(tuple(argv), fp, result.stdout)
            return result
        return proc.run(argv, check=False, echo=False, timeout=_timeout(argv),
                        error_class=EnvironmentProblem)

    def _keep(self, argv: tuple[str, ...], fp: str, stdout: str) -> None:
        """Keep an answer for the next commands: where the environment puts the cache
        directory (a config file's ``cache_dir`` is read too late to look there), and a
        builder's once the daemon it is about is known."""
        from polyarch import settings
        from polyarch.engines import remembered

        chosen = settings.current().cache_dir
        if chosen is not None and _safe(lambda: Path(chosen).resolve() != remembered.cache_root(
                os.environ).parent.resolve()) is not False:
            return
        if remembered.is_info(argv):
            info = _safe(lambda: json.loads(stdout))
            daemon = _safe(remembered.daemon_key, info) if isinstance(info, dict) else None
            with self._lock:
                self._daemon = self._daemon or daemon
                waiting, self._waiting = self._waiting, []
            _safe(remembered.keep, argv, os.environ, fp, stdout)
            for w_argv, w_fp, w_out in waiting:
                _safe(remembered.keep, w_argv, os.environ, w_fp, w_out, self._daemon)
            return
        with self._lock:
            daemon = self._daemon
            if daemon is None:
                self._waiting.append((argv, fp, stdout))
                return
        _safe(remembered.keep, argv, os.environ, fp, stdout, daemon)


def _safe(fn: Callable[..., T], *args: object) -> T | None:
    """``fn(*args)``, or None when it fails: what was kept only ever saves time."""
    try:
        return fn(*args)
    except Exception:
        return None


#: The look-ups the program's entry started, until an engine takes them.
_at_entry: Probes | None = None
_entry_lock = threading.Lock()
_exit_hook = False


def start_at_entry(argvs: Sequence[Sequence[str]]) -> None:
    """Start ``argvs`` for the first engine that asks for the same command lines. What
    no engine has taken when the program ends is stopped then (:func:`abandon_entry`)."""
    global _at_entry, _exit_hook
    started = Probes()
    started.start(argvs)
    with _entry_lock:
        _at_entry = started
        if not _exit_hook:
            atexit.register(abandon_entry, ABANDON_WAIT)
            _exit_hook = True


def abandon_entry(wait: float = 0.0) -> None:
    """The entry's look-ups will not be taken (another engine, other command lines, the
    program ends): stop those still running."""
    global _at_entry
    with _entry_lock:
        entry, _at_entry = _at_entry, None
    if entry is not None:
        entry.abandon(wait)


def adopt(argvs: Sequence[Sequence[str]]) -> Probes:
    """Look-ups of ``argvs`` under way: the entry's when it started exactly these
    command lines (they are then no longer the entry's), else started now (and the
    entry's, if any, are stopped)."""
    global _at_entry
    with _entry_lock:
        entry, _at_entry = _at_entry, None
    if entry is not None and entry.started() == sorted(tuple(a) for a in argvs):
        return entry
    if entry is not None:
        entry.abandon()
    started = Probes()
    started.start(argvs)
    return started
