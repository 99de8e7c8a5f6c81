"""Ctrl-C, SIGTERM and SIGHUP: stop cleanly and say what state things are in.

SIGTERM and SIGHUP (the terminal or the ssh session closed) are turned into
:class:`Terminated` (SIGINT already raises KeyboardInterrupt), so the same unwinding
runs for all three: the step in progress stops, tags already moved are put back
(``pipeline.tag``), the session removes its build directories, the CLI kills what
polyarch started and prints one line built from :func:`phase` (where the terminal is
gone, that line is lost and nothing else fails), then exits 130 (SIGINT), 143 (SIGTERM)
or 129 (SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

_phase = "starting: nothing was built or pushed"


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (a BaseException, like KeyboardInterrupt: no ``except
    Exception`` swallows it)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def what(self) -> str:
        if self.signum == signal.SIGHUP:
            return "hung up (SIGHUP)"
        return "terminated (SIGTERM)"


def set_phase(text: str) -> None:
    """Where the command is, said as what an interruption would leave behind."""
    global _phase
    _phase = text


def phase() -> str:
    return _phase


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second signal during the clean-up (putting tags back) must not
    # cut it short. (A handler, not SIG_IGN: a command started during the clean-up does
    # not inherit an ignored SIGTERM.)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _again)
    raise Terminated(signum)


def _again(signum: int, frame: FrameType | None) -> None:
    """A further SIGTERM or SIGHUP while the first one is being handled: nothing more."""


def install() -> Callable[[], None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (main thread only; a no-op
    elsewhere). Returns what puts the handlers there before back: a caller that runs
    the CLI in its own process (a test runner, a program using polyarch as a library)
    keeps its own handling of those signals once the command has ended."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in before:
        signal.signal(s, _on_signal)

    def restore() -> None:
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    return restore
