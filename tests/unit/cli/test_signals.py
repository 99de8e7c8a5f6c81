"""The CLI run in the caller's own process (tests, programs using polyarch as a library):
the SIGTERM and SIGHUP handlers it installs while a command runs are put back after."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import pytest

from polyarch import cli, interrupt


def _callers_own(signum: int, frame: FrameType | None) -> None:
    """A handler of the caller's."""


@pytest.mark.parametrize("argv", [["--version"], ["no-such-command"], ["lint", "--help"]])
def test_the_callers_handlers_are_back_after_a_command(argv: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    seen: list[object] = []
    real_install = interrupt.install

    def spying_install() -> Callable[[], None]:
        restore = real_install()
        seen.append(signal.getsignal(signal.SIGTERM))  # what the command runs with
        return restore

    monkeypatch.setattr(interrupt, "install", spying_install)
    signal.signal(signal.SIGTERM, _callers_own)
    try:
        cli.run(argv)
        assert seen == [interrupt._on_signal]
        assert signal.getsignal(signal.SIGTERM) is _callers_own
        assert signal.getsignal(signal.SIGHUP) is before[signal.SIGHUP]
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def test_off_the_main_thread_nothing_is_installed_or_restored() -> None:
    got: list[object] = []
    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=lambda: got.append(interrupt.install()))
    t.start()
    t.join(10)
    assert len(got) == 1 and signal.getsignal(signal.SIGTERM) is before
