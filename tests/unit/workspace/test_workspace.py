"""The cache directory: where it is, when it refuses a build, what pruning removes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from polyarch import settings
from polyarch.config import load_settings
from polyarch.errors import EnvironmentProblem
from polyarch.workspace import Workspace, default_root


def test_the_cache_directory_follows_the_setting_then_xdg(tmp_path: Path) -> None:
    with settings.using(load_settings({"POLYARCH_CACHE_DIR": str(tmp_path / "c")})):
        assert default_root(env={}) == tmp_path / "c"
        assert Workspace.open().root == tmp_path / "c"
    assert default_root(tmp_path / "given", env={}) == tmp_path / "given"
    assert default_root(env={"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "polyarch"
    assert default_root(env={}) == Path.home() / ".cache" / "polyarch"
    # A ~ in the variable is the home directory, as before.
    assert load_settings({"POLYARCH_CACHE_DIR": "~/pc"}).cache_dir == Path.home() / "pc"


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


def _blob(d: Path, content: bytes) -> str:
    import hashlib

    h = hashlib.sha256(content).hexdigest()
    (d / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (d / "blobs" / "sha256" / h).write_bytes(content)
    return h


def test_builds_share_one_blob_store_by_hard_links(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "cache")
    first = ws.new_build("one")
    assert ws.seed(first) == 0  # nothing stored yet
    base, old_top = _blob(first, b"base layer"), _blob(first, b"top v1")
    ws.absorb(first, {f"sha256:{base}", f"sha256:{old_top}"})
    assert sorted(os.listdir(ws.blob_store)) == sorted([base, old_top])

    second = ws.new_build("two")
    assert ws.seed(second) == 2
    seeded = second / "blobs" / "sha256" / base
    # The same file, not a copy: an exporter that finds it skips the blob.
    assert os.stat(seeded).st_ino == os.stat(ws.blob_store / base).st_ino
    new_top = _blob(second, b"top v2")
    ws.absorb(second, {f"sha256:{base}", f"sha256:{new_top}"})
    # The layout keeps only what its index reaches; the store gains the new blob.
    assert sorted(os.listdir(second / "blobs" / "sha256")) == sorted([base, new_top])
    assert sorted(os.listdir(ws.blob_store)) == sorted([base, old_top, new_top])


def test_a_rebuild_is_seeded_with_the_blobs_its_last_build_reached_only(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "cache")
    other = ws.new_build("other")
    foreign = _blob(other, b"another image's layer")
    ws.absorb(other, {f"sha256:{foreign}"}, key="other-image")
    first = ws.new_build("one")
    assert ws.seed(first, "app") == 1  # nothing listed for "app" yet: the whole store
    base, top = _blob(first, b"base layer"), _blob(first, b"top v1")
    ws.absorb(first, {f"sha256:{base}", f"sha256:{top}"}, key="app")
    assert sorted(os.listdir(first / "blobs" / "sha256")) == sorted([base, top])

    (ws.blob_store / top).unlink()  # pruned meanwhile: skipped, not an error
    second = ws.new_build("two")
    assert ws.seed(second, "app") == 1
    assert os.listdir(second / "blobs" / "sha256") == [base]
    # A list naming something else than blobs is not followed.
    (ws.seed_lists / "app").write_text(f"../../{'0' * 58}\n{base}\n")
    assert ws.seed(ws.new_build("three"), "app") == 1
    assert sorted(os.listdir(ws.blob_store)) == sorted([foreign, base])


def test_store_blobs_no_build_holds_are_pruned_by_age_then_size(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "cache")
    build = ws.new_build("b")
    held = _blob(build, b"held by a build" * 100)
    loose_old = _blob(build, b"old and loose" * 100)
    loose_new = _blob(build, b"new and loose" * 100)
    ws.absorb(build, {f"sha256:{h}" for h in (held, loose_old, loose_new)})
    for h in (loose_old, loose_new):
        (build / "blobs" / "sha256" / h).unlink()  # as when the build directory is removed
    now = time.time()
    os.utime(ws.blob_store / loose_old, (now - 30 * 86400, now - 30 * 86400))
    os.utime(ws.blob_store / held, (now - 30 * 86400, now - 30 * 86400))
    assert ws.prune_blobs(now=now) == 1
    assert sorted(os.listdir(ws.blob_store)) == sorted([held, loose_new])
    # Over the size cap: loose blobs go, a blob a build directory links to stays.
    assert ws.prune_blobs(keep_bytes=1, now=now) == 1
    assert os.listdir(ws.blob_store) == [held]


def test_seeding_never_fails_a_build(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "cache")
    ws.blob_store.parent.mkdir(parents=True)
    ws.blob_store.write_text("a file where the store would be")
    build = ws.new_build("b")
    assert ws.seed(build) == 0
    h = _blob(build, b"x")
    ws.absorb(build, {f"sha256:{h}"})  # cannot link into a file: the build keeps its blob
    assert os.listdir(build / "blobs" / "sha256") == [h]


def test_pruning_never_removes_a_directory_changed_since_it_was_asked_for(
        tmp_path: Path) -> None:
    # Pruning runs beside the build: the build's own directory, made after it started,
    # stays even when the size cap would take everything, and so does one whose time a
    # file system wrote a few milliseconds behind the clock.
    ws, now = Workspace(tmp_path), time.time()
    old = _build(ws, "old", 600, 1, now)
    new = _build(ws, "new", 600, -1 / 86400, now)  # made a second after pruning started
    lagging = _build(ws, "lagging", 600, 0.005 / 86400, now)
    assert ws.prune(keep_bytes=0, keep_days=7, now=now, spare_since=now - 600) == [old]
    assert new.exists() and lagging.exists()


def test_pruning_stops_when_asked(tmp_path: Path) -> None:
    ws, now = Workspace(tmp_path), time.time()
    a, b = _build(ws, "a", 10, 30, now), _build(ws, "b", 10, 20, now)
    stop = threading.Event()
    stop.set()
    assert ws.prune(now=now, stop=stop) == []
    assert a.exists() and b.exists()


def test_a_blob_linked_again_into_the_store_is_fresh(tmp_path: Path) -> None:
    # Pruned from the store while a build that had it seeded ran: linked back, with the
    # time of this build, not of the build that first made it.
    ws = Workspace(tmp_path / "cache")
    build = ws.new_build("b")
    blob = _blob(build, b"a layer" * 100)
    old = time.time() - 30 * 86400
    os.utime(build / "blobs" / "sha256" / blob, (old, old))
    ws.absorb(build, {f"sha256:{blob}"})
    assert time.time() - (ws.blob_store / blob).stat().st_mtime < 60


def test_a_session_prunes_once_beside_its_work_and_waits_for_it_when_it_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.session import Session

    ws, now = Workspace(tmp_path), time.time()
    old = _build(ws, "old", 10, 30, now)
    stale = ws.verify_cache / "rules" / ("ab" * 32 + ".json.z")  # a scan 40 days old
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    os.utime(stale, (now - 40 * 86400, now - 40 * 86400))
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = Workspace.prune

    def slow_prune(self: Workspace, **kw: object) -> list[Path]:
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(5)
        return real(self, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Workspace, "prune", slow_prune)
    s = Session(Options(platforms=()), Reporter(), ws=ws)
    s.prune_cache()
    assert started.wait(5)
    s.with_options(Options(platforms=())).prune_cache()  # another image of the same run: not again
    assert old.exists()  # the caller went on while pruning ran
    threading.Timer(0.2, release.set).start()
    assert stale.exists()
    s.close()
    assert not old.exists() and not stale.exists()  # closing waited for it
    assert calls == ["polyarch-prune"]


def test_a_failed_command_stops_the_pruning(tmp_path: Path) -> None:
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.session import Session

    s = Session(Options(platforms=()), Reporter(), ws=Workspace(tmp_path))
    s.close(failed=True)
    assert s.parts.stop_pruning.is_set()


def test_a_command_that_only_verifies_prunes_the_cache_too(tmp_path: Path) -> None:
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.session import Session

    ws, now = Workspace(tmp_path), time.time()
    old = _build(ws, "old", 10, 30, now)
    s = Session(Options(platforms=()), Reporter(), ws=ws)
    assert s.layer_cache.root == ws.verify_cache
    s.close()
    assert not old.exists()


def test_a_cache_pruned_minutes_ago_is_not_walked_again(tmp_path: Path) -> None:
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.session import PRUNE_EVERY, Session

    ws, now = Workspace(tmp_path), time.time()
    first = _build(ws, "first", 10, 30, now)
    with Session(Options(platforms=()), Reporter(), ws=ws) as s:
        s.prune_cache()
    assert not first.exists() and ws.pruned_stamp.exists()  # a complete pruning: stamped
    second = _build(ws, "second", 10, 30, now)
    with Session(Options(platforms=()), Reporter(), ws=ws) as s:
        s.prune_cache()
        assert s.parts.pruning is None  # pruned moments ago: no walk started
    assert second.exists()
    old = now - PRUNE_EVERY - 1
    os.utime(ws.pruned_stamp, (old, old))
    with Session(Options(platforms=()), Reporter(), ws=ws) as s:
        s.prune_cache()
    assert not second.exists()
