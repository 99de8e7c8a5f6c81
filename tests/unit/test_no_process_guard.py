"""The unit-test guard itself: starting a process from a unit test fails it."""

from __future__ import annotations

import subprocess

import pytest


def test_starting_a_process_fails_a_unit_test() -> None:
    with pytest.raises(AssertionError, match="tried to start a process"):
        subprocess.run(["true"], check=False)
