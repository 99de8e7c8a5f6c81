"""The one subprocess runner: echo ``+ cmd``, stream or capture, keep the text,
raise a typed error that carries the command's own output on failure.

Every command has a deadline:

- a short command (``docker info``, ``inspect``, ``git``, a credential helper) gets a
  wall-clock deadline, :data:`DEFAULT_TIMEOUT` seconds unless the caller gives another
  (the ``command_timeout`` setting, ``POLYARCH_COMMAND_TIMEOUT``, changes the default);
- a long command (a build, a push, a prebuild command) has no wall-clock deadline, and
  the caller must say so: ``timeout=None`` with an inactivity deadline
  (``idle_timeout=proc.idle_timeout()``: the ``idle_timeout`` setting,
  ``POLYARCH_IDLE_TIMEOUT``, default :data:`DEFAULT_IDLE_TIMEOUT` s): the command fails
  when it has printed nothing (and written none of ``activity_paths``) for that long.

A deadline passed is :class:`CommandTimedOut` (exit 3), whose line names the command
by its program and subcommand only (never its arguments, which may hold secrets).

Each child runs in a process group of its own (a new session), so that everything it
started can be stopped together (:mod:`polyarch.procgroup`): on a deadline here, and on
SIGINT/SIGTERM by :func:`terminate_all`; and from another thread by a :class:`Cancel`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from polyarch import procgroup, settings
from polyarch.errors import EnvironmentProblem, FatalError

#: Wall-clock deadline of a short command, seconds, unless the run's settings say another.
DEFAULT_TIMEOUT = settings.DEFAULTS.command_timeout
#: Inactivity deadline of a long command (a build, a push), seconds, likewise.
DEFAULT_IDLE_TIMEOUT = settings.DEFAULTS.idle_timeout


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    #: With ``end_group``: processes of the command's group were still running when it
    #: ended, and were stopped.
    left_running: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandFailed(FatalError):
    """A command exited non-zero. ``detail`` holds the tail of its output."""

    def __init__(self, result: Result, message: str | None = None,
                 error_class: type[FatalError] | None = None) -> None:
        self.result = result
        tail = _tail(result.stderr or result.stdout)
        super().__init__(
            message or f"{command_name(result.argv)} exited with status {result.returncode}",
            detail=tail,
        )
        if error_class is not None:
            self.exit_code = error_class.exit_code


class CommandTimedOut(EnvironmentProblem):
    """A command passed its deadline and was stopped (exit 3)."""


def _tail(text: str, lines: int = 40) -> str:
    parts = text.rstrip().splitlines()
    return "\n".join(parts[-lines:])


def command_name(argv: Sequence[str]) -> str:
    """The program and its subcommands (``docker buildx build``), none of its options
    or arguments after the first option: what a message may show of a command line."""
    words = [os.path.basename(argv[0])] if argv else []
    if words and words[0].startswith("docker-"):  # a docker CLI plugin run directly
        words = ["docker", words[0][len("docker-"):]]
    for w in argv[1:3]:
        if w.startswith("-") or "=" in w or "/" in w or len(w) > 32:
            break
        words.append(w)
    return shlex.join(words)


def default_timeout() -> float:
    """The wall-clock deadline of short commands (the ``command_timeout`` setting,
    ``POLYARCH_COMMAND_TIMEOUT``)."""
    return settings.current().command_timeout


def idle_timeout() -> float:
    """The inactivity deadline of long commands (the ``idle_timeout`` setting,
    ``POLYARCH_IDLE_TIMEOUT``)."""
    return settings.current().idle_timeout


#: Where ``+ cmd`` echoes go; the CLI points it at its reporter.
echo_hook: Callable[[Sequence[str]], None] | None = None


class Cancel:
    """Stops a command :func:`run` runs, from another thread: once an error is set, run
    stops it with its process group within :data:`CANCEL_LATENCY` seconds (or does not
    start it) and raises that error, the first one set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: FatalError | None = None
        #: Set once run has started the command (work that waits for it to start does
        #: not hold the interpreter while it does).
        self.started = threading.Event()

    def set(self, error: FatalError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    @property
    def error(self) -> FatalError | None:
        with self._lock:
            return self._error


#: Longest time between :meth:`Cancel.set` and the command being stopped (seconds).
CANCEL_LATENCY = 0.2


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: ``timeout=DEFAULT``: the short-command deadline (:func:`default_timeout`).
DEFAULT = _Default()

# Children alive now, by pid (= their process group id). Plain dict operations only:
# terminate_all may run in a signal handler while the main thread is in run().
_live: dict[int, tuple[subprocess.Popen[bytes], tuple[str, ...]]] = {}
# Commands run() stopped because it was interrupted, for terminate_all's report.
_stopped: list[str] = []


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    echo: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
    timeout: float | None | _Default = DEFAULT,
    idle_timeout: float | None = None,
    activity_paths: Sequence[Path] = (),
    on_line: Callable[[str], None] | None = None,
    error_class: type[FatalError] | None = None,
    error_message: str | None = None,
    error: Callable[[Result], FatalError] | None = None,
    merge_output: bool = False,
    end_group: bool = False,
    cancel: Cancel | None = None,
) -> Result:
    """Run ``argv``; check its exit status unless ``check=False``.

    A non-zero exit raises :class:`CommandFailed`: ``error_message`` (default: the
    command and its status) with the tail of the command's output below it, and the exit
    code of ``error_class``. When the message or the class depend on what the command
    printed, ``error`` makes the exception from the :class:`Result` instead. Callers opt
    out (``check=False``) only where a non-zero exit is an answer, not a failure.

    ``end_group``: when the command ends, stop whatever it started that is still running
    in its process group (a shell command's ``cmd &``): a prebuild command must not leave
    processes behind that outlive polyarch.

    ``cancel``: another thread may stop the command; its error is raised here.

    ``timeout``: wall-clock seconds (default :func:`default_timeout`); ``None`` for a long
    command, which then needs ``idle_timeout``: seconds without output on stdout/stderr
    and without a change to any of ``activity_paths`` (a log file the command writes).

    With ``on_line`` the command's stderr (with ``merge_output``: stdout and stderr
    together) is passed line by line to the callback as it arrives (the "tee"), and
    also kept for the error message. ``env`` entries are added to the current environment.
    """
    argv = tuple(str(a) for a in argv)
    if error is not None and not check:
        raise ValueError("error= is what a checked command raises; it needs check=True")
    wall = default_timeout() if isinstance(timeout, _Default) else timeout
    if wall is None and idle_timeout is None:
        raise ValueError("a command without a wall-clock deadline needs idle_timeout")
    if idle_timeout is not None and not capture and not activity_paths:
        raise ValueError("idle_timeout needs the output captured or activity_paths")
    if cancel is not None and cancel.error is not None:
        raise cancel.error
    if echo and echo_hook is not None:
        echo_hook(argv)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture or on_line else None,
            stderr=(subprocess.STDOUT if merge_output else subprocess.PIPE)
            if capture or on_line else None,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as e:
        raise EnvironmentProblem(
            f"{argv[0]} not found", hint=f"install {argv[0]} or put it on PATH"
        ) from e
    except (ValueError, OSError) as e:  # a NUL in an argument, an unusable cwd, ...
        raise (error_class or EnvironmentProblem)(
            f"cannot start {command_name(argv)}: {e}") from e
    _live[p.pid] = (p, argv)
    if cancel is not None:
        cancel.started.set()
    try:
        res = _communicate(p, argv, input, wall, idle_timeout, activity_paths, on_line,
                           merge_output, cancel)
        if end_group and procgroup.running(p.pid):
            procgroup.end(p.pid)
            res = replace(res, left_running=True)
    except CommandTimedOut:
        raise  # stopped already
    except BaseException as e:
        if cancel is not None and e is cancel.error:
            raise  # stopped already, for the reason another thread gave
        # Interrupted (KeyboardInterrupt, a signal handler's exception): nothing this
        # command started is left running.
        if p.poll() is None or procgroup.alive(p.pid):
            procgroup.stop(p)
            _stopped.append(command_name(argv))
        raise
    finally:
        _live.pop(p.pid, None)
    if check and not res.ok:
        if error is not None:
            raise error(res)
        raise CommandFailed(res, error_message, error_class)
    return res


def _communicate(
    p: subprocess.Popen[bytes],
    argv: tuple[str, ...],
    input: str | None,
    wall: float | None,
    idle: float | None,
    activity_paths: Sequence[Path],
    on_line: Callable[[str], None] | None,
    merge: bool,
    cancel: Cancel | None = None,
) -> Result:
    chunks: queue.Queue[tuple[str, bytes | None]] = queue.Queue()
    readers: list[threading.Thread] = []

    def read(name: str, stream: IO[bytes]) -> None:
        try:
            while True:
                b = stream.read1(65536)  # type: ignore[attr-defined]
                if not b:
                    break
                chunks.put((name, b))
        except (OSError, ValueError):
            pass
        finally:
            chunks.put((name, None))

    for name, stream in (("out", p.stdout), ("err", p.stderr)):
        if stream is not None:
            t = threading.Thread(target=read, args=(name, stream), daemon=True)
            t.start()
            readers.append(t)
    if input is not None and p.stdin is not None:
        stdin = p.stdin

        def write() -> None:
            try:
                stdin.write(input.encode())
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    stdin.close()

        threading.Thread(target=write, daemon=True).start()

    streamed = "out" if merge else "err"
    data: dict[str, list[bytes]] = {"out": [], "err": []}
    partial = b""
    open_streams = len(readers)
    start = last = time.monotonic()
    exited_at: float | None = None

    def emit(line: bytes) -> None:
        assert on_line is not None
        try:
            on_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        except Exception as e:  # a broken progress display must not kill the build
            print(f"polyarch: progress display failed: {e}", file=sys.stderr)

    while True:
        got: tuple[str, bytes | None] | None = None
        if open_streams == 0:
            # Nothing to read: wait for the exit itself (the streams close a moment before
            # the exit status can be read; the queue would add up to CANCEL_LATENCY).
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(CANCEL_LATENCY)
        else:
            with contextlib.suppress(queue.Empty):
                got = chunks.get(timeout=CANCEL_LATENCY)
        if got is not None:
            name, b = got
            if b is None:
                open_streams -= 1
            else:
                last = time.monotonic()
                data[name].append(b)
                if on_line is not None and name == streamed:
                    partial += b
                    *lines, partial = partial.split(b"\n")
                    for line in lines:
                        emit(line)
        rc = p.poll()
        now = time.monotonic()
        if rc is not None:
            if open_streams == 0:
                break
            # The command has exited; something it started may still hold the pipes.
            exited_at = exited_at or now
            if now - exited_at > 2.0:
                break
            continue
        if cancel is not None and cancel.error is not None:
            procgroup.stop(p)
            raise cancel.error
        if wall is not None and now - start > wall:
            procgroup.stop(p)
            raise CommandTimedOut(
                f"{command_name(argv)} did not finish within {wall:g} s; it was stopped",
                hint="if it needs longer, raise POLYARCH_COMMAND_TIMEOUT (seconds)")
        if idle is not None and _idle_for(now, last, activity_paths) > idle:
            procgroup.stop(p)
            raise CommandTimedOut(
                f"{command_name(argv)} showed no progress for {idle:g} s; it was stopped",
                hint="if it can be silent for longer, raise POLYARCH_IDLE_TIMEOUT (seconds)")
    if on_line is not None and partial:
        emit(partial)
    out = _text(data["out"])
    err = _text(data["err"])
    return Result(argv, p.returncode if p.returncode is not None else -1, out, err)


def _text(parts: list[bytes]) -> str:
    return b"".join(parts).decode("utf-8", "replace").replace("\r\n", "\n")


def _idle_for(now: float, last: float, paths: Sequence[Path]) -> float:
    idle = now - last
    for path in paths:
        with contextlib.suppress(OSError):
            idle = min(idle, max(0.0, time.time() - path.stat().st_mtime))
    return idle


def live() -> list[tuple[str, ...]]:
    """The commands running now (argv), oldest first."""
    return [argv for _p, argv in list(_live.values())]


def terminate_all(grace: float = procgroup.KILL_GRACE) -> list[str]:
    """Stop every child still running, with its process group: SIGTERM, then SIGKILL
    to what is left after ``grace`` seconds. Returns the names of the commands stopped
    (for the one line that says what state things are in). Safe in a signal handler."""
    procs = list(_live.values())
    names = [*_stopped, *(command_name(argv) for _p, argv in procs)]
    _stopped.clear()
    for p, _argv in procs:
        procgroup.send(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p, _argv in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
        procgroup.send(p.pid, signal.SIGKILL)
    return names
