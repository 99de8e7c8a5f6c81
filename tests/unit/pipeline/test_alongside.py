"""The check made while the engine builds (pipeline.build._Alongside): its error stops
the build through the command's cancel token and is what the build step raises."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from polyarch import settings
from polyarch.config import load_settings
from polyarch.errors import FatalError, RegistryError
from polyarch.pipeline import build as build_module
from polyarch.pipeline.build import AlongsideCheck, _Alongside


def along(run: Callable[[], None], repositories: int = 1) -> _Alongside:
    """A check beside a build whose command has started."""
    a = _Alongside(AlongsideCheck(run, repositories))
    a.cancel.started.set()
    return a


def test_the_check_waits_for_the_builds_command_to_start() -> None:
    # Its imports would hold the interpreter while the build's command starts.
    ran = threading.Event()
    a = _Alongside(AlongsideCheck(ran.set))
    assert not ran.wait(0.2)
    a.cancel.started.set()
    a.settle()
    assert ran.is_set()


def test_a_check_whose_build_never_starts_runs_all_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_module, "START_WAIT", 0.1)
    ran = threading.Event()
    a = _Alongside(AlongsideCheck(ran.set))
    a.settle()
    assert ran.is_set()


def test_a_check_that_passes_leaves_nothing_to_raise() -> None:
    ran = threading.Event()
    a = along(ran.set)
    a.settle()
    assert ran.is_set() and a.cancel.error is None


def test_no_check_is_nothing_to_wait_for() -> None:
    a = _Alongside(None)
    a.settle()
    assert a.cancel.error is None


def test_a_blocking_problem_cancels_and_is_raised() -> None:
    refused = RegistryError("registry: 127.0.0.1:5000/team/app: unauthorized")

    def check() -> None:
        raise refused

    a = along(check)
    with pytest.raises(RegistryError) as e:
        a.settle()
    assert e.value is refused and a.cancel.error is refused


def test_a_refusal_comes_first_also_after_a_failed_build() -> None:
    refused = RegistryError("registry: refused")

    def check() -> None:
        raise refused

    a = along(check)
    with pytest.raises(RegistryError):
        a.settle(build_failed=True)


def test_a_bug_in_the_check_stops_the_build_and_is_raised_as_it_is() -> None:
    """Not a silent pass: the build is cancelled, and the CLI reports the bug itself
    (exit 70, its traceback with POLYARCH_DEBUG=1)."""
    def check() -> None:
        raise KeyError("oops")

    a = along(check)
    with pytest.raises(KeyError, match="oops"):
        a.settle()
    assert isinstance(a.cancel.error, FatalError)


SHORT = {"POLYARCH_COMMAND_TIMEOUT": "0.1", "POLYARCH_REGISTRY_TIMEOUT": "0.05"}


def test_a_check_that_never_ends_is_given_up_within_its_bound() -> None:
    release = threading.Event()
    with settings.using(load_settings(SHORT)):
        a = along(lambda: release.wait(30))
        with pytest.raises(RegistryError, match=r"did not finish within 0\.3 s"):
            a.settle()
    release.set()


def test_the_bound_grows_with_the_repositories_checked() -> None:
    with settings.using(load_settings(SHORT)):
        assert AlongsideCheck(lambda: None, 3).limit() == pytest.approx(0.9)
        assert AlongsideCheck(lambda: None, 0).limit() == pytest.approx(0.3)


def test_after_a_failed_build_an_unanswered_check_leaves_the_builds_error() -> None:
    release = threading.Event()
    with settings.using(load_settings(SHORT)):
        a = along(lambda: release.wait(30))
        a.settle(build_failed=True)  # nothing raised: the caller raises the build's error
    assert a.cancel.error is None
    release.set()
