"""The one subprocess runner: echo ``+ cmd``, stream or capture, keep the text,
raise a typed error that carries the command's own output on failure."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from polyarch.errors import EnvironmentProblem, FatalError


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

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
            message or f"{shlex.join(result.argv[:3])} ... exited with status {result.returncode}",
            detail=tail,
        )
        if error_class is not None:
            self.exit_code = error_class.exit_code


def _tail(text: str, lines: int = 40) -> str:
    parts = text.rstrip().splitlines()
    return "\n".join(parts[-lines:])


#: Where ``+ cmd`` echoes go; the CLI points it at its reporter.
echo_hook: Callable[[Sequence[str]], None] | None = None


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    echo: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
    error_class: type[FatalError] | None = None,
    error_message: str | None = None,
    merge_output: bool = False,
) -> Result:
    """Run ``argv``.

    With ``on_line`` the command's stderr (with ``merge_output``: stdout and stderr
    together) is streamed line by line to the callback as it arrives (the "tee"), and
    also kept for the error message. ``env`` entries are added to
    the current environment.
    """
    argv = tuple(str(a) for a in argv)
    if echo and echo_hook is not None:
        echo_hook(argv)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        if on_line is None:
            cp = subprocess.run(
                argv,
                capture_output=capture,
                text=True,
                env=full_env,
                cwd=cwd,
                input=input,
                timeout=timeout,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
            res = Result(argv, cp.returncode, cp.stdout or "", cp.stderr or "")
        else:
            res = _run_streaming(argv, full_env, cwd, on_line, timeout, merge_output)
    except FileNotFoundError as e:
        raise EnvironmentProblem(
            f"{argv[0]} not found", hint=f"install {argv[0]} or put it on PATH"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise (error_class or FatalError)(
            f"{shlex.join(argv[:3])} ... timed out after {timeout} s") from e
    if check and not res.ok:
        raise CommandFailed(res, error_message, error_class)
    return res


def _run_streaming(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
    on_line: Callable[[str], None],
    timeout: float | None,
    merge: bool = False,
) -> Result:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
        bufsize=1,
    )
    out_chunks: list[str] = []
    err_lines: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        out_chunks.append(proc.stdout.read())

    if merge:
        lines = proc.stdout
    else:
        t = threading.Thread(target=read_out, daemon=True)
        t.start()
        lines = proc.stderr
    assert lines is not None
    for line in lines:
        err_lines.append(line)
        try:
            on_line(line.rstrip("\n"))
        except Exception as e:  # a broken progress display must not kill the build
            print(f"polyarch: progress display failed: {e}", file=sys.stderr)
    rc = proc.wait(timeout=timeout)
    if not merge:
        t.join()
    return Result(argv, rc, "".join(out_chunks), "".join(err_lines))
