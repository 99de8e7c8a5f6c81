"""Unit tests: pure logic, no processes.

Every test here runs with ``subprocess.Popen`` (and so ``subprocess.run``) replaced by
a function that fails the test: a unit test that would start docker, podman, git or a
registry belongs under ``tests/engine/``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .inprocess import Result


def _no_process(*args: Any, **kwargs: Any) -> NoReturn:
    argv = args[0] if args else kwargs.get("args")
    raise AssertionError(f"a unit test tried to start a process: {argv!r}")


@pytest.fixture(autouse=True)
def _forbid_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "Popen", _no_process)


@pytest.fixture(autouse=True)
def _own_engine_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Engine look-ups kept by earlier commands on this machine are not this test's:
    each test keeps its own (:mod:`polyarch.engines.remembered`)."""
    from polyarch.engines import remembered

    monkeypatch.setattr(remembered, "cache_root", lambda env: tmp_path / "engine-answers")


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``polyarch ARGS`` in process (in ``cwd``, with ``env`` added) and capture it."""
    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        from polyarch import cli

        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            for k, v in (env or {}).items():
                m.setenv(k, v)
            capsys.readouterr()
            code = cli.run(list(args))
            cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)
    return run
