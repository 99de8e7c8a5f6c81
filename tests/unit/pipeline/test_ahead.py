"""The platforms judged while the engine finishes the build (pipeline/ahead.py): read
from the layout's blobs before its index.json is written, silently; the verification
after the build takes the verdicts; with targets, the blobs of the platforms that passed
begin to leave; a pass that cannot read what it needs ends without a word."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from oci_images import make_layer, write_oci_layout

from polyarch.checks import deep
from polyarch.checks.verify import verify_source
from polyarch.config import Options
from polyarch.output import Reporter
from polyarch.pipeline.ahead import JudgeAhead
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import OCILayout
from polyarch.session import Session
from polyarch.workspace import Workspace

BOTH = parse_platforms("linux/amd64,linux/arm64")


def _checked() -> threading.Event:
    """The registry check beside the build: passed."""
    e = threading.Event()
    e.set()
    return e


def _written(d: Path) -> tuple[Path, str]:
    """A layout of two platforms as the engine leaves it before buildx ends: every blob,
    no index.json yet. Returns it and its index's digest."""
    a = make_layer({"bin/a": b"a" * 5000}, "gzip")
    b = make_layer({"bin/b": b"b" * 7000}, "gzip")
    write_oci_layout(d, [("linux/amd64", [(*a, "gzip")]), ("linux/arm64", [(*b, "gzip")])])
    root = json.loads((d / "index.json").read_text())["manifests"][0]["digest"]
    (d / "index.json").rename(d / "index.later")
    return d, root


def _session(tmp_path: Path, **opts: Any) -> Session:
    return Session(Options(platforms=tuple(BOTH), **opts), Reporter(),
                   ws=Workspace(tmp_path / "cache"))


def _merges(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    merges: list[int] = []
    real = deep.merge
    monkeypatch.setattr(deep, "merge", lambda scans: merges.append(1) or real(scans))
    return merges


def _no_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    """No base image to read, no mount source to find: the early push goes straight to
    ``push_blobs`` (which each test stubs)."""
    from polyarch.pipeline import bases
    from polyarch.registry import mounts

    monkeypatch.setattr(bases, "dockerfile_bases", lambda *_a, **_kw: [])
    monkeypatch.setattr(mounts, "mount_sources", lambda *_a, **_kw: {})


def test_the_platforms_are_judged_before_index_json_and_the_verdicts_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay)
    ahead(root, _checked())
    first = ahead._thread
    ahead("sha256:" + "0" * 64, _checked())  # a second call starts nothing
    assert ahead._thread is first
    judged, early, dropped = ahead.finish(None)
    assert (ahead.platforms, ahead.layers_read) == (2, 2)
    assert early is None and dropped == ""  # (no targets: nothing to push)
    assert capsys.readouterr() == ("", "")  # nothing said while the build still runs
    (lay / "index.later").rename(lay / "index.json")
    merges = _merges(monkeypatch)
    report = verify_source(OCILayout(lay), BOTH, cache=s.layer_cache, check_cached=False,
                           judged=judged, processes=0)
    assert report.ok and merges == [] and report.layers_read == 0
    s.close()


@pytest.mark.parametrize("damage", ["blob", "digest", "verify"])
def test_a_pass_that_cannot_judge_ends_without_a_word(
        damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path, verify=damage != "verify")
    if damage == "blob":  # a layer not stored yet
        index = json.loads((lay / "blobs/sha256" / root[7:]).read_bytes())
        man = json.loads((lay / "blobs/sha256" / index["manifests"][1]["digest"][7:])
                         .read_bytes())
        (lay / "blobs/sha256" / man["layers"][0]["digest"][7:]).unlink()
    ahead = JudgeAhead(s, lay)
    ahead(root if damage != "digest" else "sha256:" + "1" * 64, _checked())
    judged, _, _ = ahead.finish(None)
    assert ahead.platforms == 0 and ahead.layers_read == 0
    assert capsys.readouterr() == ("", "")
    if damage != "blob":
        # Nothing was taken ahead: the verification after the build judges both.
        (lay / "index.later").rename(lay / "index.json")
        merges = _merges(monkeypatch)
        verify_source(OCILayout(lay), BOTH, cache=None, judged=judged, processes=0)
        assert merges == [1, 1]
    s.close()


def test_with_much_to_read_nothing_is_judged_ahead(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build's layers are read by the verification after the build, where the
    first platform to pass starts its push while the other is still read."""
    from polyarch.pipeline import overlap

    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    asked: list[int] = []
    real = overlap.bytes_to_read
    monkeypatch.setattr(overlap, "bytes_to_read", lambda *a: asked.append(1) or real(*a))
    monkeypatch.setattr(overlap, "SIDE_BY_SIDE_FROM", 1)
    ahead = JudgeAhead(s, lay)
    ahead(root, _checked())
    ahead.finish(None)
    assert ahead.platforms == 0 and asked == [1]  # (it got as far as asking)
    monkeypatch.setattr(overlap, "SIDE_BY_SIDE_FROM", 8 << 20)
    again = JudgeAhead(s, lay)
    again(root, _checked())
    again.finish(None)
    assert again.platforms == 2
    s.close()


def test_the_pass_waits_for_the_registry_check_and_ends_if_it_fails(
        tmp_path: Path) -> None:
    """What the check learns (the registry's password) is looked for: nothing is judged
    before it passed, and nothing at all when the build ends without it passing."""
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    checked = threading.Event()
    ahead = JudgeAhead(s, lay)
    ahead(root, checked)
    time.sleep(0.3)
    assert ahead.platforms == 0 and ahead._thread is not None and ahead._thread.is_alive()
    checked.set()
    ahead.finish(None)
    assert ahead.platforms == 2
    never = JudgeAhead(s, lay)
    never(root, threading.Event())
    assert never.stop() == "" and never._thread is not None
    never._thread.join(5)
    assert not never._thread.is_alive() and never.platforms == 0
    s.close()


def test_with_targets_the_blobs_of_platforms_that_passed_begin_to_leave(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Silently: the verification after the build says what each platform handed over,
    and hands over nothing twice."""
    from polyarch.pipeline import overlap
    from polyarch.registry import push as push_mod

    _no_bases(monkeypatch)
    sent: list[set[str]] = []

    def push_blobs(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int],
                   **_kw: Any) -> tuple[dict[str, int], int]:
        sent.append(set(blobs))
        return {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0

    monkeypatch.setattr(push_mod, "push_blobs", push_blobs)
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay, [parse_ref("registry.example:5000/team/app:v1")])
    ahead(root, _checked())
    judged, early, dropped = ahead.finish(root)
    assert early is not None and dropped == ""
    early.finish()
    assert capsys.readouterr() == ("", "")
    # Each platform's layer, then (with the last platform) the configs.
    assert len(sent) == 2 and all(sent) and early.error is None
    index = json.loads((lay / "blobs/sha256" / root[7:]).read_bytes())
    assert set(early.released) == {m["digest"] for m in index["manifests"]}
    (lay / "index.later").rename(lay / "index.json")
    full = OCILayout(lay)
    own, _ = overlap.owners(full, full.root())
    before = len(sent)
    overlap.verify_platforms(s, full, full.root(), BOTH, early, own, judged)
    cap = capsys.readouterr()
    said = cap.err + cap.out
    assert said.count("passed: pushing") == 2, said
    assert len(sent) == before  # nothing handed over twice
    s.close()


def test_a_build_that_fails_after_its_export_stops_the_early_push_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first platform's batch is on its way, and the second platform still being
    judged, when the build fails: the batch ends, the second platform's never starts,
    and what left is said ("" when nothing)."""
    from polyarch.checks import verify as verify_mod
    from polyarch.registry import push as push_mod

    _no_bases(monkeypatch)
    judging: list[int] = []
    real = verify_mod.verify_source

    def slow_second(*a: Any, **kw: Any) -> Any:
        judging.append(1)
        if len(judging) == 2:
            time.sleep(0.5)  # the build fails meanwhile
        return real(*a, **kw)

    monkeypatch.setattr(verify_mod, "verify_source", slow_second)
    going, release = threading.Event(), threading.Event()
    batches: list[set[str]] = []

    def push_blobs(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int],
                   **_kw: Any) -> tuple[dict[str, int], int]:
        batches.append(set(blobs))
        going.set()
        assert release.wait(10)
        return {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0

    monkeypatch.setattr(push_mod, "push_blobs", push_blobs)
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay, [parse_ref("registry.example:5000/team/app:v1")])
    ahead(root, _checked())
    assert going.wait(10)
    threading.Timer(0.3, release.set).start()
    left = ahead.stop()
    assert len(judging) == 2 and len(batches) == 1  # the second batch never started
    n = len(batches[0])
    assert left == f"{n} verified blob{'s' if n != 1 else ''} of platforms that passed" \
                   f" {'was' if n == 1 else 'were'} pushed by digest"
    assert JudgeAhead(s, lay).stop() == ""  # no pass: nothing left
    s.close()


def test_build_and_verify_says_what_left_when_the_build_fails_after_its_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The build's command fails after the exporter's step (here: the event, then the
    error): the early push the pass started ends, and a line before the error says
    what left."""
    from polyarch.engines import BuildRequest
    from polyarch.errors import BuildError
    from polyarch.pipeline import build as build_step
    from polyarch.pipeline import local
    from polyarch.pipeline.plan import Plan
    from polyarch.registry import push as push_mod

    _no_bases(monkeypatch)
    monkeypatch.setattr(push_mod, "push_blobs", lambda _c, _l, _r, blobs, **_kw: (
        {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0))
    lay, root = _written(tmp_path / "lay")

    def build(_s: Any, _plan: Any, _req: Any, *, alongside: Any = None,
              exported: Any = None) -> Any:
        exported(root, _checked())
        time.sleep(0.5)  # buildx finishing; then it fails
        raise BuildError("buildx failed after the export")

    monkeypatch.setattr(build_step, "build", build)
    s = _session(tmp_path)
    prep = local.Prepared(Plan(checks=[]), BuildRequest(context=tmp_path, dockerfile=tmp_path
                                                        / "Dockerfile", platforms=tuple(BOTH),
                                                        output=lay))
    with pytest.raises(BuildError):
        local.build_and_verify(s, prep, consequence="nothing was pushed",
                               push_to=[parse_ref("registry.example:5000/team/app:v1")])
    said = capsys.readouterr().err
    assert "verified blobs of platforms that passed were pushed by digest" in said, said
    assert "before the build failed or was interrupted (untagged, named by no manifest)" in said
    s.close()
