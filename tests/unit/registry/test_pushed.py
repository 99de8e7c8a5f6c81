"""The record of earlier pushes (registry.pushed): which repositories of a registry
hold a blob; bounded, and a hint that never fails a push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyarch.registry import pushed
from polyarch.registry.pushed import MAX_REPOS, PushRecord


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def test_the_most_recent_repositories_come_first_and_are_bounded(tmp_path: Path) -> None:
    rec = PushRecord(tmp_path, "Registry.example:5000")
    d = digest(1)
    for i in range(MAX_REPOS + 2):
        rec.add(f"team/app{i}", [d])
    rec.add("team/app1", [d])  # pushed there again: first once more
    got = PushRecord(tmp_path, "registry.example:5000").sources([d, digest(2)])
    assert got == {d: ["team/app1", "team/app5", "team/app4", "team/app3"]}


def test_the_record_keeps_its_newest_digests(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pushed, "MAX_DIGESTS", 10)
    rec = PushRecord(tmp_path, "r")
    many = [digest(i) for i in range(15)]
    rec.add("team/a", many[:8])
    rec.add("team/a", many[8:])
    rec.add("team/b", many[:1])  # pushed again: among the newest now
    kept = json.loads(rec.file.read_text())
    assert list(kept) == [*many[6:], many[0]]
    assert rec.sources(many[1:6]) == {}


@pytest.mark.parametrize("content", [
    b"not json", b"[1, 2]", b'{"md5:00": ["x"]}',
    b'{"sha256:' + b"0" * 64 + b'": "team/a"}',  # repositories not a list
])
def test_a_record_that_is_not_one_is_ignored(tmp_path: Path, content: bytes) -> None:
    rec = PushRecord(tmp_path, "r")
    rec.file.write_bytes(content)
    assert rec.sources([digest(0)]) == {}
    rec.add("team/b", [digest(1)])  # and is replaced by the next push
    assert rec.sources([digest(1)]) == {digest(1): ["team/b"]}


def test_a_record_over_the_size_limit_is_not_read(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rec = PushRecord(tmp_path, "r")
    rec.add("team/a", [digest(1)])
    monkeypatch.setattr(pushed, "MAX_BYTES", 10)
    assert rec.sources([digest(1)]) == {}


def test_a_record_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "r.json").mkdir()  # a directory where the record's file would be
    rec = PushRecord(tmp_path, "r")
    rec.add("team/a", [digest(1)])
    assert rec.sources([digest(1)]) == {}
    assert not list(tmp_path.glob("*.tmp"))
