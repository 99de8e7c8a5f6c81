"""The record of earlier pushes (registry.pushed): which repositories of a registry
hold a blob, read and written a shard at a time, bounded, a hint that never fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from polyarch.registry import pushed
from polyarch.registry.pushed import MAX_PER_SHARD, MAX_REPOS, PushRecord


def digest(shard: str, n: int) -> str:
    return f"sha256:{shard}{n:062x}"


def test_the_most_recent_repositories_come_first_and_are_bounded(tmp_path: Path) -> None:
    rec = PushRecord(tmp_path, "Registry.example:5000")
    d = digest("ab", 1)
    for i in range(MAX_REPOS + 2):
        rec.add(f"team/app{i}", [d])
    rec.add("team/app1", [d])  # pushed there again: first once more
    got = PushRecord(tmp_path, "registry.example:5000").sources([d, digest("ab", 2)])
    assert got == {d: ["team/app1", "team/app5", "team/app4", "team/app3"]}


def test_a_push_reads_and_writes_only_the_shards_of_its_blobs(tmp_path: Path) -> None:
    rec = PushRecord(tmp_path, "127.0.0.1:5000")
    mine = [digest("00", 1), digest("00", 2), digest("7f", 1)]
    rec.add("team/app", mine)
    assert sorted(os.listdir(rec.dir)) == ["00.json", "7f.json"]
    assert len(json.loads((rec.dir / "00.json").read_text())) == 2
    assert rec.sources([digest("7f", 1), digest("ff", 1), "sha256:short", "md5:x"]) == {
        digest("7f", 1): ["team/app"]}


def test_each_shard_keeps_its_newest_digests(tmp_path: Path) -> None:
    rec = PushRecord(tmp_path, "r")
    many = [digest("c3", i) for i in range(MAX_PER_SHARD + 5)]
    rec.add("team/a", many[:10])
    rec.add("team/a", many[10:])
    kept = json.loads((rec.dir / "c3.json").read_text())
    assert len(kept) == MAX_PER_SHARD
    assert list(kept) == many[5:]  # the oldest five were forgotten
    assert rec.sources(many[:5]) == {}


@pytest.mark.parametrize("content", [
    b"not json", b"[1, 2]", b'{"sha256:' + b"00" * 32 + b'": ["x"]}',  # another shard's
    b'{"sha256:' + b"c3" + b"0" * 62 + b'": "team/a"}',  # repositories not a list
])
def test_a_shard_that_is_not_a_record_is_ignored(tmp_path: Path, content: bytes) -> None:
    rec = PushRecord(tmp_path, "r")
    rec.dir.mkdir()
    (rec.dir / "c3.json").write_bytes(content)
    assert rec.sources([digest("c3", 0), digest("00", 0)]) == {}
    rec.add("team/b", [digest("c3", 1)])  # and is replaced by the next push
    assert rec.sources([digest("c3", 1)]) == {digest("c3", 1): ["team/b"]}


def test_a_shard_over_the_size_limit_is_not_read(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rec = PushRecord(tmp_path, "r")
    rec.add("team/a", [digest("c3", 1)])
    monkeypatch.setattr(pushed, "MAX_BYTES", 10)
    assert rec.sources([digest("c3", 1)]) == {}


def test_the_one_file_record_of_before_is_removed(tmp_path: Path) -> None:
    old = tmp_path / "127.0.0.1%3A5000.json"
    old.write_text(json.dumps({digest("c3", 1): ["team/a"]}))
    rec = PushRecord(tmp_path, "127.0.0.1:5000")
    assert rec.sources([digest("c3", 1)]) == {}  # a hint: not read in its old form
    rec.add("team/b", [digest("c3", 2)])
    assert not old.exists()


def test_a_record_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "r").write_text("a file where the record's directory would be")
    rec = PushRecord(tmp_path, "r")
    rec.add("team/a", [digest("c3", 1)])
    assert rec.sources([digest("c3", 1)]) == {}
