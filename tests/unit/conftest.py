"""Unit tests: pure logic, no processes.

Every test here runs with ``subprocess.Popen`` (and so ``subprocess.run``) replaced by
a function that fails the test: a unit test that would start docker, podman, git or a
registry belongs under ``tests/engine/``.
"""

from __future__ import annotations

import subprocess
from typing import Any, NoReturn

import pytest


def _no_process(*args: Any, **kwargs: Any) -> NoReturn:
    argv = args[0] if args else kwargs.get("args")
    raise AssertionError(f"a unit test tried to start a process: {argv!r}")


@pytest.fixture(autouse=True)
def _forbid_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "Popen", _no_process)
