"""The platforms judged while the engine finishes the build (pipeline/ahead.py): read
from the layout's blobs before its index.json is written, silently; the verification
after the build takes the verdicts; with targets, the blobs of the platforms that passed
begin to leave; a pass that cannot read what it needs ends without a word."""

from __future__ import annotations

import json
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


def test_the_platforms_are_judged_before_index_json_and_the_verdicts_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay)
    ahead(root)
    ahead("sha256:" + "0" * 64)  # (a second call starts nothing)
    judged = ahead.finish()
    assert (ahead.platforms, ahead.layers_read) == (2, 2)
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
    ahead(root if damage != "digest" else "sha256:" + "1" * 64)
    judged = ahead.finish()
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

    monkeypatch.setattr(overlap, "SIDE_BY_SIDE_FROM", 1)
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay)
    ahead(root)
    ahead.finish()
    assert ahead.platforms == 0
    s.close()


def test_with_targets_the_blobs_of_platforms_that_passed_begin_to_leave(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Silently: the verification after the build says what each platform handed over,
    and hands over nothing twice."""
    from polyarch.pipeline import bases, overlap
    from polyarch.registry import mounts
    from polyarch.registry import push as push_mod

    monkeypatch.setattr(bases, "dockerfile_bases", lambda *_a, **_kw: [])
    monkeypatch.setattr(mounts, "mount_sources", lambda *_a, **_kw: {})
    sent: list[set[str]] = []

    def push_blobs(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int],
                   **_kw: Any) -> tuple[dict[str, int], int]:
        sent.append(set(blobs))
        return {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0

    monkeypatch.setattr(push_mod, "push_blobs", push_blobs)
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay, [parse_ref("registry.example:5000/team/app:v1")])
    ahead(root)
    judged = ahead.finish()
    early = ahead.early
    assert early is not None and ahead.root == root
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


def test_a_build_that_fails_after_its_export_stops_the_early_push(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.pipeline import bases
    from polyarch.registry import mounts
    from polyarch.registry import push as push_mod

    monkeypatch.setattr(bases, "dockerfile_bases", lambda *_a, **_kw: [])
    monkeypatch.setattr(mounts, "mount_sources", lambda *_a, **_kw: {})
    monkeypatch.setattr(push_mod, "push_blobs", lambda *_a, **_kw: (
        {"exists": 0, "mounted": 0, "uploaded": 1}, 0))
    lay, root = _written(tmp_path / "lay")
    s = _session(tmp_path)
    ahead = JudgeAhead(s, lay, [parse_ref("registry.example:5000/team/app:v1")])
    ahead(root)
    started = ahead.stop()
    assert ahead.early is not None and ahead.early.failed == "cancelled"
    assert started == len(ahead.early.started) > 0
    assert JudgeAhead(s, lay).stop() == 0  # no pass, nothing left
    s.close()
