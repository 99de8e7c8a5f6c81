"""The check made while the engine builds (pipeline.build._Alongside): its error stops
the build through the command's cancel token and is what the build step raises."""

from __future__ import annotations

import threading

import pytest

from polyarch import settings
from polyarch.config import load_settings
from polyarch.errors import FatalError, RegistryError
from polyarch.pipeline.build import _Alongside


def test_a_check_that_passes_leaves_nothing_to_raise() -> None:
    ran = threading.Event()
    a = _Alongside(ran.set)
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

    a = _Alongside(check)
    with pytest.raises(RegistryError) as e:
        a.settle()
    assert e.value is refused and a.cancel.error is refused


def test_a_bug_in_the_check_stops_the_build_and_is_raised_as_it_is() -> None:
    """Not a silent pass: the build is cancelled, and the CLI reports the bug itself
    (exit 70, its traceback with POLYARCH_DEBUG=1)."""
    def check() -> None:
        raise KeyError("oops")

    a = _Alongside(check)
    with pytest.raises(KeyError, match="oops"):
        a.settle()
    assert isinstance(a.cancel.error, FatalError)


def test_a_check_that_never_ends_is_given_up_within_its_bound() -> None:
    release = threading.Event()
    a = _Alongside(lambda: release.wait(30))
    with (settings.using(load_settings({"POLYARCH_COMMAND_TIMEOUT": "0.1",
                                        "POLYARCH_REGISTRY_TIMEOUT": "0.05"})),
          pytest.raises(RegistryError, match=r"did not finish within 0\.3 s")):
        a.settle()
    release.set()
