"""Which blobs may leave while verification goes on (pipeline/overlap.py): a layer once
every platform of the index that references it passed; the configs and what the
attestation manifests attached to the platforms reference once every platform passed;
what an attestation manifest attached to no platform of the index references never
early."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from oci_images import make_layer, write_oci_layout

from polyarch.pipeline.overlap import ATTESTATIONS, owners, releasable
from polyarch.pipeline.views import OnePlatform
from polyarch.registry import OCILayout


def _layout(d: Path) -> tuple[OCILayout, str, str, str, str]:
    """amd64: layer a; arm64: layers a (shared) and b. Returns the layout, the platform
    manifests' digests and the two layers' digests."""
    a = make_layer({"bin/a": b"a" * 5000}, "gzip")
    b = make_layer({"bin/b": b"b" * 7000}, "gzip")
    lay = OCILayout(write_oci_layout(d, [("linux/amd64", [(*a, "gzip")]),
                                         ("linux/arm64", [(*a, "gzip"), (*b, "gzip")])]))
    amd, arm = (str(m["digest"]) for m in lay.root().json["manifests"])
    layers = lay.manifest(arm).json["layers"]
    return lay, amd, arm, layers[0]["digest"], layers[1]["digest"]


def test_a_layer_shared_with_a_platform_not_yet_passed_stays(tmp_path: Path) -> None:
    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    own, sizes = owners(lay, lay.root())
    amd_cfg, arm_cfg = (lay.manifest(p).json["config"]["digest"] for p in (amd, arm))
    assert own[a] == {amd, arm} and own[b] == {arm}
    # amd64 passed, arm64 not (yet): its only layer is also arm64's; the configs wait
    # for both.
    assert releasable(own, {amd}, set()) == []
    assert releasable(own, {arm}, set()) == [b]
    assert set(releasable(own, {amd, arm}, {b})) == {a, amd_cfg, arm_cfg}
    assert sizes[a] > 0 and sizes[b] > 0


def _attach(lay: OCILayout, subjects: list[str | None]) -> list[tuple[str, str]]:
    """Add one attestation manifest per subject to ``lay``'s index (attached to that
    platform manifest; ``None``: to a digest the index does not name). Returns each
    one's (config, in-toto layer) digests."""
    import hashlib

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (lay.path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    root = lay.root()
    doc = root.json
    out = []
    for i, subject in enumerate(subjects):
        config = json.dumps({"architecture": "unknown", "os": "unknown", "n": i}).encode()
        stmt = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "n": i}).encode()
        cd, sd = put(config), put(stmt)
        man = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cd, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd,
                        "size": len(stmt), "annotations": {
                            "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
        }).encode()
        doc["manifests"].append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(man),
            "size": len(man), "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": subject or "sha256:" + "e" * 64}})
        out.append((cd, sd))
    index = json.dumps(doc).encode()
    (lay.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(index),
        "size": len(index)}]}))
    return out


def test_configs_and_attestations_wait_for_the_platforms_they_belong_to(
        tmp_path: Path) -> None:
    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    (amd_cfg, amd_stmt), (arm_cfg, arm_stmt), (orphan_cfg, orphan_stmt) = _attach(
        lay, [amd, arm, None])
    lay = OCILayout(lay.path)
    own, sizes = owners(lay, lay.root())
    configs = {p: lay.manifest(p).json["config"]["digest"] for p in (amd, arm)}
    # Configs and attached attestations wait for every platform, not for the whole index.
    assert own[configs[amd]] == own[configs[arm]] == {amd, arm}
    assert own[amd_stmt] == own[arm_cfg] == {amd, arm}
    # An attestation attached to no platform of the index waits for the whole index.
    assert own[orphan_stmt] == own[orphan_cfg] == {ATTESTATIONS}
    assert sizes[amd_stmt] > 0 and sizes[configs[arm]] > 0
    # One platform passed: none of that leaves (a failed verification leaves no config).
    assert releasable(own, {amd}, set()) == []
    assert releasable(own, {arm}, set()) == [b]
    everything_but_orphan = set(releasable(own, {amd, arm}, set()))
    assert everything_but_orphan == set(own) - {orphan_cfg, orphan_stmt}
    assert {a, b} <= everything_but_orphan
    # A blob an orphan attestation also references waits for the whole index.
    own[b] = {arm, ATTESTATIONS}
    assert b not in releasable(own, {amd, arm}, set())


def test_one_platform_view_is_an_index_of_that_entry(tmp_path: Path) -> None:
    lay, amd, arm, _, _ = _layout(tmp_path / "lay")
    entry = next(m for m in lay.root().json["manifests"] if m["digest"] == arm)
    view = OnePlatform(lay.path, entry, [])
    root = view.root()
    assert root.is_index and root.json["manifests"] == [entry]
    assert view.manifest(arm).digest == arm and amd not in view.description


def test_only_an_index_naming_each_expected_platform_once_overlaps(tmp_path: Path) -> None:
    """A duplicate, missing or unexpected platform, or a nested index, is found only by
    the verification of the whole index: no layer may leave before it."""
    from polyarch.pipeline.overlap import one_each
    from polyarch.platforms import parse_platform
    from polyarch.registry.media import Manifest

    lay, amd, arm, _, _ = _layout(tmp_path / "lay")
    root = lay.root()
    both = [parse_platform("linux/amd64"), parse_platform("linux/arm64")]
    assert one_each(root, both)
    assert not one_each(root, both[:1])  # arm64 unexpected
    assert not one_each(root, [*both, parse_platform("linux/riscv64")])  # one missing
    doc = root.json
    dup = {**doc, "manifests": [doc["manifests"][0], doc["manifests"][0]]}
    assert not one_each(Manifest.from_bytes(json.dumps(dup).encode()), both)
    nested = {**doc, "manifests": [doc["manifests"][0], {
        **doc["manifests"][1], "mediaType": "application/vnd.oci.image.index.v1+json"}]}
    assert not one_each(Manifest.from_bytes(json.dumps(nested).encode()), both)


def _verify_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """verify_platforms on the two-platform layout: the most platforms verified at once,
    and the batches handed to the early push, in order (nothing is pushed here)."""
    import threading

    from polyarch.checks import verify
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.pipeline import overlap
    from polyarch.platforms import parse_platforms
    from polyarch.session import Session
    from polyarch.workspace import Workspace

    lay, *_ = _layout(tmp_path / "lay")
    plats = parse_platforms("linux/amd64,linux/arm64")
    s = Session(Options(platforms=tuple(plats)), Reporter(), ws=Workspace(tmp_path / "cache"))
    root = lay.root()
    own, sizes = owners(lay, root)
    real, lock = verify.verify_source, threading.Lock()
    now = most = 0

    def counting(*a: Any, **kw: Any) -> Any:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        try:
            time.sleep(0.05)  # long enough for a second thread to start meanwhile
            return real(*a, **kw)
        finally:
            with lock:
                now -= 1

    monkeypatch.setattr(verify, "verify_source", counting)
    batches: list[str] = []
    early = overlap.EarlyPush(s, lay, root, [], sizes)
    monkeypatch.setattr(early, "submit", lambda digests: batches.extend(digests))
    overlap.verify_platforms(s, lay, root, plats, early, own)
    s.close()
    return most, batches


def test_platforms_with_layers_to_read_are_verified_side_by_side(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.pipeline import overlap

    monkeypatch.setattr(overlap, "SIDE_BY_SIDE_FROM", 1)  # any layer not in the cache
    most, batches = _verify_both(tmp_path, monkeypatch)
    assert most == 2 and batches


def test_platforms_with_little_to_read_are_verified_in_turn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its small layers are under SIDE_BY_SIDE_FROM (as a changed top layer over cached
    # ones): one platform after the other.
    most, batches = _verify_both(tmp_path, monkeypatch)
    assert most == 1 and len(set(batches)) == 4  # two layers, two configs


def _early(tmp_path: Path, lay: OCILayout) -> tuple[Any, Any, Any]:
    """A session over ``lay`` (amd64 and arm64), an early push from it to one repository
    (none is contacted unless a test lets it), and that repository."""
    from polyarch.config import Options
    from polyarch.output import Reporter
    from polyarch.pipeline import overlap
    from polyarch.platforms import parse_platforms
    from polyarch.refs import parse_ref
    from polyarch.session import Session
    from polyarch.workspace import Workspace

    s = Session(Options(platforms=tuple(parse_platforms("linux/amd64,linux/arm64"))),
                Reporter(), ws=Workspace(tmp_path / "cache"))
    root = lay.root()
    _, sizes = owners(lay, root)
    repo = parse_ref("registry.example:5000/team/app")
    return s, overlap.EarlyPush(s, lay, root, [repo], sizes), repo


def test_an_early_batch_that_fails_any_way_stops_the_push_step_before_manifests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever ends a batch (here a bug: not a registry error) is kept for the push step,
    which raises it before its first manifest; nothing it was handed counts as sent, and
    the mount sources the push step waits for are said to be known (no wait left)."""
    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, repo = _early(tmp_path, lay)

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(early, "_find_sources", broken)
    early.submit([a, b])
    early.finish()
    assert isinstance(early.error, RuntimeError) and early.failed == "RuntimeError: a bug"
    assert early.unconfirmed() == {repo.name: {a, b}}
    t0 = time.monotonic()
    assert early.sources(repo, wait=30.0) is None and time.monotonic() - t0 < 5
    s.close()


def test_the_batches_of_two_platforms_go_side_by_side_and_the_first_failure_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second platform to pass does not wait for the first one's upload: both batches
    are under way at once (each waits here until the other started), they share the
    mount sources the first worked out, and of two failures the first is the one said."""
    import threading

    from polyarch.errors import RegistryError
    from polyarch.registry import push as push_mod

    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, repo = _early(tmp_path, lay)
    from polyarch.pipeline import bases
    from polyarch.registry import mounts

    found: list[int] = []

    def mount_sources(*_a: Any, **_kw: Any) -> dict[str, list[str]]:
        found.append(1)
        time.sleep(0.1)  # the other batch waits meanwhile, then finds them known
        return {}

    monkeypatch.setattr(bases, "dockerfile_bases", lambda *_a, **_kw: [])
    monkeypatch.setattr(mounts, "mount_sources", mount_sources)
    both = threading.Barrier(2, timeout=10)
    order: list[str] = []

    def push_blobs(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int],
                   **_kw: Any) -> tuple[dict[str, int], int]:
        both.wait()  # raises BrokenBarrierError after 10 s if the other never starts
        digest = next(iter(blobs))
        if digest == a:
            order.append(a)
            raise RegistryError("first failure")
        time.sleep(0.2)
        order.append(b)
        raise RegistryError("second failure")

    monkeypatch.setattr(push_mod, "push_blobs", push_blobs)
    early.submit([a])
    early.submit([b])
    early.finish()
    assert order == [a, b] and len(found) == 1
    assert isinstance(early.error, RegistryError) and early.failed == "first failure"
    assert early.unconfirmed() == {repo.name: {a, b}}
    s.close()


def test_an_attestation_with_a_malformed_subject_waits_for_the_whole_index(
        tmp_path: Path) -> None:
    lay, amd, arm, _, _ = _layout(tmp_path / "lay")
    ((cfg, stmt),) = _attach(lay, [amd])
    doc = json.loads((lay.path / "index.json").read_text())
    index_path = lay.path / "blobs" / "sha256" / doc["manifests"][0]["digest"][7:]
    index = json.loads(index_path.read_bytes())
    index["manifests"][-1]["annotations"]["vnd.docker.reference.digest"] = [amd]
    data = json.dumps(index).encode()
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (lay.path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    doc["manifests"][0].update(digest=digest, size=len(data))
    (lay.path / "index.json").write_text(json.dumps(doc))
    lay = OCILayout(lay.path)
    own, _ = owners(lay, lay.root())
    assert own[stmt] == own[cfg] == {ATTESTATIONS}


def test_a_batch_waiting_for_the_mount_sources_sends_nothing_once_the_other_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from polyarch.pipeline import bases
    from polyarch.registry import push as push_mod

    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, repo = _early(tmp_path, lay)
    calls: list[int] = []
    second_waits = threading.Event()

    def dockerfile_bases(*_a: Any, **_kw: Any) -> list[Any]:
        calls.append(1)
        if len(calls) == 1:
            second_waits.wait(10)  # the second batch is waiting for the lock by now
            time.sleep(0.1)
            raise RuntimeError("a bug in the first batch")
        return []

    pushed: list[str] = []
    monkeypatch.setattr(bases, "dockerfile_bases", dockerfile_bases)
    monkeypatch.setattr(push_mod, "push_blobs", lambda *_a, **_kw: pushed.append("x"))
    early.submit([a])
    time.sleep(0.05)
    early.submit([b])
    second_waits.set()
    early.finish()
    assert pushed == [] and isinstance(early.error, RuntimeError)
    assert early.unconfirmed() == {repo.name: {a, b}} and early.started == set()
    s.close()


def test_what_left_says_whether_a_platform_or_the_whole_index_failed(tmp_path: Path) -> None:
    from polyarch.pipeline import leftover

    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, _ = _early(tmp_path, lay)
    assert leftover.what_left(early, "nothing was pushed") == "nothing was pushed"
    early.started.add(a)
    assert "nothing of a failing platform was pushed (up to 1 blob of platforms that" \
           " passed was" in leftover.what_left(early, "")
    early.started.add(b)
    early.sent["r"] = {a, b}
    early.all_passed = True
    assert leftover.what_left(early, "") == (
        "every platform passed on its own and 2 blobs of theirs were pushed by digest, but"
        " the index failed: no manifest, no tag")
    s.close()


def test_a_push_step_that_fails_waits_for_the_early_upload_in_flight(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The push step fails before its first manifest (here its own push of the layout
    raises) while an early batch is still uploading: the step's error comes out only
    once that batch ended, and a batch still queued is cancelled."""
    import threading

    from polyarch.errors import RegistryError
    from polyarch.pipeline import overlap
    from polyarch.pipeline import push as push_step
    from polyarch.registry import push as push_mod

    monkeypatch.setattr(overlap, "BATCHES_AT_ONCE", 1)  # the second batch waits in line
    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, repo = _early(tmp_path, lay)
    monkeypatch.setattr(early, "_find_sources_once",
                        lambda: early._sources.setdefault(repo.name, {}))
    release = threading.Event()
    ended: list[float] = []
    started: list[str] = []

    def held(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int],
             **_kw: Any) -> tuple[dict[str, int], int]:
        started.extend(blobs)
        release.wait(10)
        time.sleep(0.3)  # still in flight when the push step has failed
        ended.append(time.monotonic())
        return {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0

    def failing(*_a: Any, **_kw: Any) -> Any:
        release.set()
        raise RegistryError("the registry refused the index")

    monkeypatch.setattr(push_mod, "push_blobs", held)
    monkeypatch.setattr(push_mod, "push_layout", failing)
    early.submit([a])
    early.submit([b])  # queued behind the first
    with pytest.raises(RegistryError):
        try:
            push_step.push(s, lay.path, lay.root().digest, [repo], early=early)
        finally:
            said = time.monotonic()
    assert ended and said >= ended[0]
    assert started == [a]  # the queued batch was cancelled, never started
    s.close()



def test_a_batch_names_the_blobs_no_earlier_push_to_the_registry_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """push_blobs is told which of the batch's blobs the record of earlier pushes to the
    registry does not know (in any repository): those it may send without asking."""
    from polyarch.pipeline import bases
    from polyarch.registry import mounts
    from polyarch.registry import push as push_mod
    from polyarch.registry.pushed import PushRecord

    lay, amd, arm, a, b = _layout(tmp_path / "lay")
    s, early, repo = _early(tmp_path, lay)
    PushRecord(s.ws.root / "pushed", repo.registry).add("team/other", [a])
    monkeypatch.setattr(bases, "dockerfile_bases", lambda *_a, **_kw: [])
    monkeypatch.setattr(mounts, "mount_sources", lambda *_a, **_kw: {})
    seen: list[tuple[set[str], frozenset[str], dict[str, list[str]]]] = []

    def push_blobs(_client: Any, _layout: Any, _repo: Any, blobs: dict[str, int], *,
                   unseen: frozenset[str], sources: dict[str, list[str]],
                   **_kw: Any) -> tuple[dict[str, int], int]:
        seen.append((set(blobs), unseen, dict(sources)))
        return {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, 0

    monkeypatch.setattr(push_mod, "push_blobs", push_blobs)
    early.submit([a, b])
    early.finish()
    assert early.error is None, early.failed
    ((blobs, unseen, sources),) = seen
    assert blobs == {a, b}
    assert b in unseen and a not in unseen  # a was pushed to team/other before
    assert sources == {a: ["team/other"]}
    s.close()
