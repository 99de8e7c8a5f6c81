"""Fixtures of the engine tests: a machine for engine look-ups answered from what
earlier commands kept (:mod:`.remembered_machine`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .remembered_machine import Machine, make_machine


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    yield from make_machine(tmp_path, monkeypatch)


@pytest.fixture
def in_env(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> Machine:
    """The machine's environment is the process's (what the look-ups read)."""
    for k, v in machine.env.items():
        monkeypatch.setenv(k, v)
    for k in ("DOCKER_CONTEXT", "BUILDX_CONFIG", "BUILDX_BUILDER"):
        monkeypatch.delenv(k, raising=False)
    return machine
