"""Engine tests: everything under this folder runs against the real engine and
registries that ``scripts/engine up`` starts; ``tests/conftest.py`` marks them
``engine`` (a missing engine fails them under ``CI=true`` and skips them elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import LocalRegistry


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of this test alone: its catalog and blob store say what was pushed."""
    reg = LocalRegistry(tmp_path / "own-registry")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """POLYARCH_CACHE_DIR of this test alone (the CLI runs inherit it)."""
    d = tmp_path / "polyarch-cache"
    monkeypatch.setenv("POLYARCH_CACHE_DIR", str(d))
    return d
