"""Ctrl-C and SIGTERM: stop cleanly and say what state things are in.

SIGTERM is turned into :class:`Terminated` (SIGINT already raises KeyboardInterrupt), so
the same unwinding runs for both: the step in progress stops, tags already moved are put
back (``pipeline.tag``), the session removes its build directories, the CLI kills what
polyarch started and prints one line built from :func:`phase`, then exits 130 (SIGINT)
or 143 (SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_phase = "starting: nothing was built or pushed"


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: no ``except Exception``
    swallows it)."""


def set_phase(text: str) -> None:
    """Where the command is, said as what an interruption would leave behind."""
    global _phase
    _phase = text


def phase() -> str:
    return _phase


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install() -> None:
    """Turn SIGTERM into :class:`Terminated` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)
