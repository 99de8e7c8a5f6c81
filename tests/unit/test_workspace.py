"""The cache directory: where it is, when it refuses a build, what pruning removes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from polyarch.errors import EnvironmentProblem
from polyarch.workspace import Workspace, default_root


def test_the_cache_directory_follows_the_environment(tmp_path: Path) -> None:
    assert default_root({"POLYARCH_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    assert default_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "polyarch"
    assert default_root({}) == Path.home() / ".cache" / "polyarch"


def test_a_cache_directory_that_is_a_file_is_an_environment_problem(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    ws = Workspace(tmp_path / "file")
    with pytest.raises(EnvironmentProblem) as e:
        ws.check()
    assert str(tmp_path / "file") in e.value.message and "POLYARCH_CACHE_DIR" in (e.value.hint or "")


def test_too_little_free_space_is_refused_before_a_build(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="MiB free"):
        Workspace(tmp_path).check(need_bytes=1 << 62)


def _build(ws: Workspace, name: str, size: int, age_days: float, now: float) -> Path:
    d = ws.builds / name
    d.mkdir(parents=True)
    (d / "blob").write_bytes(b"x" * size)
    t = now - age_days * 86400
    os.utime(d, (t, t))
    return d


def test_pruning_removes_old_builds_then_the_oldest_over_the_size_cap(tmp_path: Path) -> None:
    ws, now = Workspace(tmp_path), time.time()
    old = _build(ws, "old", 10, 9, now)
    a = _build(ws, "a", 600, 3, now)
    b = _build(ws, "b", 600, 2, now)
    c = _build(ws, "c", 600, 1, now)
    removed = ws.prune(keep_bytes=1300, keep_days=7, now=now)
    assert removed == [old, a]
    assert b.exists() and c.exists()


def test_new_build_directories_are_unique_and_empty(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    one, two = ws.new_build("publish"), ws.new_build("publish")
    assert one != two and not any(one.iterdir()) and one.parent == ws.builds
