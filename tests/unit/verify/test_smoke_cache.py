"""The smoke cache: passes kept per (manifest digest, command, entrypoint, engine)."""

from __future__ import annotations

from pathlib import Path

from polyarch.checks.smoke import SmokeCache, SmokeResult

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
OK = [SmokeResult("ok", "uname -m: aarch64"),
      SmokeResult("ok", "smoke command 'x' exited 0", "x 1.2.3")]


def test_a_pass_is_found_again_under_the_same_key_only(tmp_path: Path) -> None:
    c = SmokeCache(tmp_path / "smoke")
    assert c.get(D1, "x", None, "docker") is None
    c.put(D1, "x", None, "docker", OK)
    assert c.get(D1, "x", None, "docker") == OK
    assert c.get(D2, "x", None, "docker") is None  # another manifest
    assert c.get(D1, "y", None, "docker") is None  # another command
    assert c.get(D1, "", None, "docker") is None  # uname only is not the same as "x"
    assert c.get(D1, "x", "/bin/sh", "docker") is None  # another entrypoint
    assert c.get(D1, "x", None, "podman") is None  # another engine


def test_failures_and_warnings_are_not_kept(tmp_path: Path) -> None:
    c = SmokeCache(tmp_path / "smoke")
    c.put(D1, "x", None, "docker", [OK[0], SmokeResult("error", "exited 1")])
    c.put(D2, "x", None, "docker", [SmokeResult("warning", "could not run uname")])
    assert c.get(D1, "x", None, "docker") is None
    assert c.get(D2, "x", None, "docker") is None
    assert not list((tmp_path / "smoke").glob("*.json"))


def test_a_damaged_or_foreign_record_is_a_miss(tmp_path: Path) -> None:
    c = SmokeCache(tmp_path / "smoke")
    c.put(D1, "x", None, "docker", OK)
    (record,) = (tmp_path / "smoke").glob("*.json")
    for text in ("{", "[]", '{"digest": "sha256:0", "results": [["ok", null]]}',
                 '{"digest": "' + D1 + '", "results": [1]}', "x" * (65 * 1024)):
        record.write_text(text)
        assert c.get(D1, "x", None, "docker") is None, text


def test_an_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "smoke"
    blocker.write_text("a file where the directory would be")
    c = SmokeCache(blocker)
    c.put(D1, "x", None, "docker", OK)  # no exception: the next run smokes again
    assert c.get(D1, "x", None, "docker") is None
