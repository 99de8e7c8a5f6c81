"""push_layout against real registries: counts, resumption, faults, no tags ever."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from faultproxy import Fault, FaultProxy, LocalRegistry, make_layer, write_oci_layout

from polyarch.errors import RegistryError
from polyarch.refs import parse_ref
from polyarch.registry import (
    OCILayout,
    PushEvent,
    RegistryClient,
    open_source,
    pull_layout,
    push_layout,
    write_layout,
)

KIB = 1024


def layout_with(tmp: Path, sizes: tuple[int, ...] = (700 * KIB, 300 * KIB)) -> OCILayout:
    """A two-platform layout whose layers are random (so no registry has them yet)."""
    a = make_layer({"bin/a": os.urandom(sizes[0]), "etc/motd": b"amd64\n"}, "none")
    b = make_layer({"bin/b": os.urandom(sizes[1])}, "none")
    shared = make_layer({"etc/os-release": os.urandom(64)}, "gzip")
    write_oci_layout(tmp, [("linux/amd64", [(*shared, "gzip"), (*a, "none")]),
                           ("linux/arm64", [(*shared, "gzip"), (*b, "none")])])
    return OCILayout(tmp)


def upload_posts(proxy: FaultProxy) -> list[str]:
    return [r.path for r in proxy.log if r.method == "POST" and "/blobs/uploads/" in r.path
            and "mount=" not in r.path]


def tags_of(registry: str, repository: str) -> list[str]:
    r = httpx.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
    return [] if r.status_code == 404 else list(r.json().get("tags") or [])


def test_push_counts_and_never_tags(registry: str, repo: str, tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay")
    root = lay.root()
    name = repo.split("/", 1)[1]
    events: list[PushEvent] = []
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        # The reference's tag is ignored: a push writes no tag.
        ref = parse_ref(f"{proxy.address}/{name}:must-not-appear")
        res = push_layout(client, lay, ref, progress=events.append, jobs=3)
        # 2 configs + 2 own layers + 1 shared layer; 2 manifests + the index.
        assert (res.blobs_uploaded, res.blobs_skipped, res.blobs_mounted) == (5, 0, 0)
        assert res.manifests == 3 and res.digest == root.digest
        assert res.media_type == root.media_type and res.size == len(root.data)
        assert len(upload_posts(proxy)) == 5
        blob_bytes = sum(lay.locate(d).size for d in
                         {e.digest for e in events if e.action == "uploaded"})
        assert res.bytes_sent == blob_bytes
        assert sum(e.size for e in events if e.action == "bytes") == blob_bytes
        manifest_puts = [r.path for r in proxy.log if r.method == "PUT" and "/manifests/" in r.path]
        assert len(manifest_puts) == 3 and all("/manifests/sha256:" in p for p in manifest_puts)
        assert manifest_puts[-1].endswith(root.digest)
        # Again: everything is there, nothing is sent.
        before = len(proxy.log)
        again = push_layout(client, lay, ref)
        assert (again.blobs_uploaded, again.blobs_skipped, again.bytes_sent) == (0, 5, 0)
        assert not [r for r in proxy.log[before:] if r.method in ("POST", "PATCH")]
    assert tags_of(registry, name) == []
    # An independent client reads the index by digest.
    r = httpx.get(f"http://{registry}/v2/{name}/manifests/{root.digest}", timeout=10,
                  headers={"Accept": root.media_type})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == root.digest[7:]


def test_chunked_push_from_a_tar_archive(registry: str, repo: str, tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay", sizes=(1100 * KIB, 10 * KIB))
    tar = write_layout(lay, tmp_path / "app.tar")
    archive = OCILayout(tar)
    assert archive.is_archive and archive.blob_path(archive.root().digest) is None
    assert archive.root().digest == lay.root().digest
    name = repo.split("/", 1)[1]
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        res = push_layout(client, archive, parse_ref(f"{proxy.address}/{name}"),
                          chunk_size=256 * KIB, jobs=2)
        patches = [r for r in proxy.log if r.method == "PATCH"]
        # The 1.1 MB layer went as 256 KiB chunks (4 PATCH + the rest with the PUT).
        assert len(patches) >= 4 and all("Content-Range" in r.headers for r in patches)
        assert res.blobs_uploaded == 5
        src = open_source(f"{registry}/{name}@{res.digest}", client)
        for d in res_digests(archive):
            assert hashlib.sha256(src.blob(d)).hexdigest() == d[7:]


def res_digests(lay: OCILayout) -> list[str]:
    out = []
    for desc in lay.root().json["manifests"]:
        man = lay.manifest(desc["digest"])
        out += [man.json["config"]["digest"]] + [x["digest"] for x in man.json["layers"]]
    return out


def test_dropped_chunk_resumes_from_the_registry_offset(
        registry: str, repo: str, tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay", sizes=(900 * KIB, 5 * KIB))
    name = repo.split("/", 1)[1]
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.01) as client:
        # The third chunk of the big layer is dropped before it reaches the registry.
        rule = proxy.add(Fault.drop(), method="PATCH", times=0)
        patches_seen: list[int] = []

        def arm(e: PushEvent) -> None:
            if e.action == "bytes":
                patches_seen.append(e.size)
                if len(patches_seen) == 2:
                    rule.times = 1

        res = push_layout(client, lay, parse_ref(f"{proxy.address}/{name}"),
                          chunk_size=200 * KIB, jobs=1, progress=arm)
        assert res.blobs_uploaded == 5
        log = [(r.method, r.outcome, r.headers.get("Content-Range")) for r in proxy.log
               if "/blobs/uploads/" in r.path]
        i = log.index(("PATCH", "drop", "409600-614399"))
        # The client asked where the upload stands, and went on from there: same offset,
        # same upload, no new POST for this blob.
        assert log[i + 1][:2] == ("GET", "forwarded 204")
        assert log[i + 2] == ("PATCH", "forwarded 202", "409600-614399")
        assert len(upload_posts(proxy)) == 5
        total = sum(lay.locate(d).size for d in set(res_digests(lay)))
        assert res.bytes_sent == total


def test_lost_answers_are_recovered(registry: str, repo: str, tmp_path: Path) -> None:
    """A chunk the registry took but whose answer was lost: distribution refuses the
    stale upload state, so the blob starts over; a final PUT whose answer was lost is
    found done with a HEAD."""
    lay = layout_with(tmp_path / "lay", sizes=(500 * KIB, 5 * KIB))
    name = repo.split("/", 1)[1]
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.01) as client:
        proxy.add(Fault.lose(), method="PATCH", times=1)
        proxy.add(Fault.lose(), method="PUT", match="/blobs/uploads/", times=1)
        res = push_layout(client, lay, parse_ref(f"{proxy.address}/{name}"),
                          chunk_size=200 * KIB, jobs=1)
        assert res.blobs_uploaded == 5 and proxy.faults_injected == 2
        outcomes = [(r.method, r.outcome) for r in proxy.log]
        assert outcomes.count(("PATCH", "lose")) == 1 and outcomes.count(("PUT", "lose")) == 1
        # One blob started over (the lost chunk); the lost PUT cost no new upload.
        assert len(upload_posts(proxy)) == 6
        after_put = outcomes[outcomes.index(("PUT", "lose")) + 1]
        assert after_put == ("HEAD", "forwarded 200")
    r = httpx.get(f"http://{registry}/v2/{name}/manifests/{res.digest}", timeout=10,
                  headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 200


def test_registry_killed_mid_push_exit_4_then_rerun_sends_only_the_rest(tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay", sizes=(600 * KIB, 400 * KIB))
    with LocalRegistry(tmp_path / "reg") as reg:
        ref = parse_ref(f"{reg.address}/team/app:v1")
        done: list[str] = []

        def kill_after_two(e: PushEvent) -> None:
            if e.action == "uploaded":
                done.append(e.digest)
                if len(done) == 2:
                    reg.kill()

        with RegistryClient(retries=2, backoff=0.01) as client, \
                pytest.raises(RegistryError) as ei:
            push_layout(client, lay, ref, jobs=1, progress=kill_after_two)
        assert ei.value.exit_code == 4
        assert reg.address in ei.value.message
        reg.start()
        assert tags_of(reg.address, "team/app") == []
        with FaultProxy(reg.address) as proxy, RegistryClient() as client:
            res = push_layout(client, lay, parse_ref(f"{proxy.address}/team/app:v1"))
            assert res.blobs_skipped == 2 and res.blobs_uploaded == 3
            assert len(upload_posts(proxy)) == 3
        assert tags_of(reg.address, "team/app") == []


def test_mount_from_another_repository(registry: str, repo: str, tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay")
    name = repo.split("/", 1)[1]
    with RegistryClient() as client:
        push_layout(client, lay, parse_ref(f"{registry}/{name}-base"))
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        res = push_layout(client, lay, parse_ref(f"{proxy.address}/{name}-app"),
                          mount_from=[f"{name}-base"])
        assert (res.blobs_mounted, res.blobs_uploaded, res.bytes_sent) == (5, 0, 0)
        assert not [r for r in proxy.log if r.method in ("PATCH", "PUT") and "/blobs/" in r.path]


def test_pull_by_digest_into_a_layout_and_push_elsewhere(registry: str, repo: str,
                                                          tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay")
    name = repo.split("/", 1)[1]
    with RegistryClient() as client:
        res = push_layout(client, lay, parse_ref(f"{registry}/{name}"))
        src = parse_ref(f"{registry}/{name}@{res.digest}")
        as_dir = pull_layout(client, src, tmp_path / "pulled")
        as_tar = pull_layout(client, src, tmp_path / "pulled.tar")
        for path in (as_dir, as_tar):
            got = OCILayout(path)
            assert got.root().digest == res.digest
            assert sorted(set(res_digests(got))) == sorted(set(res_digests(lay)))
        index = json.loads((as_dir / "index.json").read_text())
        assert index["manifests"][0]["digest"] == res.digest
        assert json.loads((as_dir / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
        with LocalRegistry(tmp_path / "other") as other:
            again = push_layout(client, OCILayout(as_tar), parse_ref(f"{other.address}/copy/app"))
            assert again.digest == res.digest and again.blobs_uploaded == 5


def test_busy_registry_retry_after_is_honoured_mid_upload(registry: str, repo: str,
                                                          tmp_path: Path) -> None:
    import time

    lay = layout_with(tmp_path / "lay", sizes=(500 * KIB, 5 * KIB))
    name = repo.split("/", 1)[1]
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.01) as client:
        proxy.add(Fault.status(503, retry_after=1), method="PATCH", times=1)
        t0 = time.monotonic()
        res = push_layout(client, lay, parse_ref(f"{proxy.address}/{name}"),
                          chunk_size=200 * KIB, jobs=1)
        assert time.monotonic() - t0 >= 1.0
        assert res.blobs_uploaded == 5
        # The refused chunk was sent again on the same upload, after asking its offset.
        assert len(upload_posts(proxy)) == 5
        # A registry that asks for an hour is not waited for.
        proxy.add(Fault.status(429, retry_after=3600), method="PUT", times=None)
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="Retry-After: 3600") as ei:
            push_layout(client, layout_with(tmp_path / "lay2"), parse_ref(f"{proxy.address}/{name}"))
        assert time.monotonic() - t0 < 3 and ei.value.exit_code == 4


def test_corrupted_blob_on_disk_is_named_not_retried(registry: str, repo: str,
                                                    tmp_path: Path) -> None:
    lay = layout_with(tmp_path / "lay", sizes=(100 * KIB, 5 * KIB))
    digest = max(set(res_digests(lay)), key=lambda d: lay.locate(d).size)
    path = lay.blob_path(digest)
    assert path is not None
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    name = repo.split("/", 1)[1]
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.01) as client, \
            pytest.raises(RegistryError, match="does not match its digest") as ei:
        push_layout(client, lay, parse_ref(f"{proxy.address}/{name}"), jobs=1)
    assert ei.value.exit_code == 4 and str(path) in ei.value.message
    # One upload of it, refused by the registry; none again.
    puts = [r for r in proxy.log if r.method == "PUT" and digest in r.path]
    assert len(puts) == 1 and puts[0].outcome == "forwarded 400"
    # No manifest written (they were only asked for, by digest, before the blobs).
    assert {r.method for r in proxy.log if "/manifests/" in r.path} == {"HEAD"}


def test_blob_sent_early_is_skipped_by_the_push(registry: str, repo: str, tmp_path: Path) -> None:
    from polyarch.registry import upload_blob

    lay = layout_with(tmp_path / "lay")
    name = repo.split("/", 1)[1]
    big = max(set(res_digests(lay)), key=lambda d: lay.locate(d).size)
    with RegistryClient() as client:
        ref = parse_ref(f"{registry}/{name}")
        out = upload_blob(client, ref, big, lay.locate(big), chunk_size=128 * KIB)
        assert out.action == "uploaded" and out.sent == lay.locate(big).size
        res = push_layout(client, lay, ref)
        assert (res.blobs_skipped, res.blobs_uploaded) == (1, 4)
        assert res.bytes_sent == sum(lay.locate(d).size for d in set(res_digests(lay))) - out.sent


def test_a_repository_holding_the_root_costs_one_request(registry: str, repo: str,
                                                          tmp_path: Path) -> None:
    """An unchanged image pushed again: one HEAD of the root by digest, nothing else (the
    registry accepted the index only once its manifests were there, and each of those
    only once its blobs were)."""
    lay = layout_with(tmp_path / "lay")
    name = repo.split("/", 1)[1]
    with RegistryClient() as client:
        push_layout(client, lay, parse_ref(f"{registry}/{name}"))
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        again = push_layout(client, lay, parse_ref(f"{proxy.address}/{name}"))
        sent = [(r.method, r.path) for r in proxy.log if not r.path.startswith("/v2/token")]
    assert sent == [("HEAD", f"/v2/{name}/manifests/{lay.root().digest}")], sent
    assert (again.blobs_uploaded, again.blobs_skipped, again.manifests) == (0, 5, 0)


def test_a_push_expected_new_asks_for_no_manifest(registry: str, repo: str,
                                                 tmp_path: Path) -> None:
    """``expect_new`` (a blob was never pushed to the repository): no manifest is asked
    for, every one is written; the push is the same as without it, which asks for the
    root first. Into a repository that holds the image already, the manifests are
    written again and nothing changes."""
    name = repo.split("/", 1)[1]
    lay = layout_with(tmp_path / "lay")
    root = lay.root().digest
    results = {}
    for expect_new in (True, False):
        target = f"{name}-{str(expect_new).lower()}"
        with FaultProxy(registry) as proxy, RegistryClient() as client:
            res = push_layout(client, lay, parse_ref(f"{proxy.address}/{target}"),
                              expect_new=expect_new)
            log = list(proxy.log)
        results[expect_new] = res
        asked = [r for r in log if r.method == "HEAD" and "/manifests/" in r.path]
        assert (res.blobs_uploaded, res.manifests) == (5, 3), res
        assert tags_of(registry, target) == []
        if expect_new:
            assert asked == [], log
        else:
            assert asked[0].path.endswith(f"/manifests/{root}"), log
    assert results[True].digest == results[False].digest == root
    # Again into the repository that holds it now: written again, the same digest.
    with RegistryClient() as client:
        again = push_layout(client, lay, parse_ref(f"{registry}/{name}-true"),
                            expect_new=True)
    assert again.digest == root and again.blobs_uploaded == 0 and again.manifests == 3
    r = httpx.head(f"http://{registry}/v2/{name}-true/manifests/{root}", timeout=10,
                   headers={"Accept": lay.root().media_type})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == root


def test_platform_manifests_the_repository_holds_are_not_pushed_again(
        registry: str, repo: str, tmp_path: Path) -> None:
    """A new index over platform manifests the repository holds (a rebuild whose only
    change is outside them, such as provenance times): their blobs are not asked for,
    the manifests not written again; only the new index is."""
    lay = layout_with(tmp_path / "lay")
    name = repo.split("/", 1)[1]
    with RegistryClient() as client:
        push_layout(client, lay, parse_ref(f"{registry}/{name}"))
    # The same platforms under a new index (an annotation of its own).
    index = json.loads((tmp_path / "lay" / "index.json").read_text())
    root = lay.root()
    doc = root.json
    doc["annotations"] = {"org.example.build": "2"}
    data = json.dumps(doc).encode()
    new = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "lay" / "blobs" / "sha256" / new[7:]).write_bytes(data)
    if index["manifests"][0]["digest"] == root.digest:
        index["manifests"][0].update(digest=new, size=len(data))
        (tmp_path / "lay" / "index.json").write_text(json.dumps(index))
        again_lay = OCILayout(tmp_path / "lay")
        ref_digest = None
    else:  # index.json is the index itself: push the new one by digest
        again_lay, ref_digest = OCILayout(tmp_path / "lay"), new
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        res = push_layout(client, again_lay, parse_ref(f"{proxy.address}/{name}"),
                          root_digest=ref_digest)
        sent = [(r.method, r.path) for r in proxy.log if not r.path.startswith("/v2/token")]
    assert res.digest == new and res.manifests == 1 and res.blobs_uploaded == 0
    assert not [p for m, p in sent if "/blobs/" in p], sent
    assert [p for m, p in sent if m == "PUT"] == [f"/v2/{name}/manifests/{new}"]


def test_small_blobs_go_beside_the_large_uploads(registry: str, repo: str,
                                                 tmp_path: Path) -> None:
    """Both upload slots (``jobs=2``) are taken by large layers, held 1.5 s each: the
    small blobs (configs, a small layer) do not wait for a slot; with ``jobs=1`` every
    blob waits for the one before it."""
    from polyarch.registry.push import SMALL_BLOB, plan_push, push_blobs

    lay = layout_with(tmp_path / "lay", sizes=(SMALL_BLOB + 300 * KIB, SMALL_BLOB + 200 * KIB))
    name = repo.split("/", 1)[1]
    _, blobs = plan_push(lay, lay.root())
    large = {d for d, n in blobs.items() if n > SMALL_BLOB}
    assert len(large) == 2 and len(blobs) - len(large) >= 3
    for jobs in (2, 1):
        with FaultProxy(registry) as proxy, RegistryClient() as client:
            for d in large:
                proxy.add(Fault.delay(1.5), method="HEAD", match=f"/blobs/{d}")
            counts, _ = push_blobs(client, lay, parse_ref(f"{proxy.address}/{name}-{jobs}"),
                                   blobs, jobs=jobs)
            log = list(proxy.log)
        assert counts["uploaded"] == len(blobs), counts
        held_end = min(r.ended for r in log if r.method == "HEAD" and r.path.split("/")[-1]
                       in large)
        small_done = [r.ended for r in log if r.method == "PUT" and "/blobs/uploads/" in r.path
                      and r.path.split("digest=")[-1].replace("%3A", ":") not in large]
        assert len(small_done) == len(blobs) - len(large), log
        if jobs == 2:
            assert max(small_done) < held_end, log
        else:
            assert min(small_done) > held_end, log


def test_a_blob_link_a_stopped_registry_left_damaged_is_pushed_again(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """A registry stopped in the middle of writing a repository's link to a blob leaves
    that link empty, and answers every HEAD of the blob with 500 from then on. A push
    that needs the blob sends it again (its upload writes the link anew) instead of
    failing once the retries ran out."""
    layer = make_layer({"bin/a": os.urandom(300 * KIB)}, "none")
    one = OCILayout(write_oci_layout(tmp_path / "one", [("linux/amd64", [(*layer, "none")])]))
    ref = parse_ref(f"{own_registry.address}/team/app")
    with RegistryClient() as client:
        push_layout(client, one, ref)
    victim = "sha256:" + hashlib.sha256(layer[0]).hexdigest()
    link = (own_registry.directory / "data/docker/registry/v2/repositories/team/app/_layers"
            / "sha256" / victim[7:] / "link")
    own_registry.stop()
    assert link.read_text() == victim
    link.write_bytes(b"")  # as a write cut short leaves it
    own_registry.start()
    r = httpx.head(f"http://{own_registry.address}/v2/team/app/blobs/{victim}", timeout=10)
    assert r.status_code == 500, r
    # A new platform over the same layer: its blobs are asked for, the layer among them.
    two = OCILayout(write_oci_layout(tmp_path / "two", [("linux/amd64", [(*layer, "none")]),
                                                      ("linux/arm64", [(*layer, "none")])]))
    with RegistryClient(retries=1, backoff=0.01) as client:
        res = push_layout(client, two, ref)
    assert res.blobs_uploaded >= 1, res
    assert link.read_text() == victim
    r = httpx.head(f"http://{own_registry.address}/v2/team/app/blobs/{victim}", timeout=10)
    assert r.status_code == 200, r
    # The same through push_blobs (the early push's way: a HEAD per blob first).
    from polyarch.registry.push import push_blobs

    own_registry.stop()
    link.write_bytes(b"")
    own_registry.start()
    with RegistryClient(retries=1, backoff=0.01) as client:
        counts, _ = push_blobs(client, two, ref, {victim: len(layer[0])})
    assert counts["uploaded"] == 1 and link.read_text() == victim, counts


def test_small_blobs_no_push_recorded_are_sent_without_asking(registry: str, repo: str,
                                                              tmp_path: Path) -> None:
    """Blobs in ``unseen`` (no earlier push to the registry recorded them) of at most
    NO_HEAD_BELOW bytes go straight to an upload; a larger one, and a small one the
    record knows, are asked for first. A small unseen blob the repository holds already
    is sent again, and the push still ends with every blob there."""
    from polyarch.registry.push import NO_HEAD_BELOW, plan_push, push_blobs

    lay = layout_with(tmp_path / "lay", sizes=(NO_HEAD_BELOW + 200 * KIB, 2 * KIB))
    name = repo.split("/", 1)[1]
    _, blobs = plan_push(lay, lay.root())
    small = {d for d, n in blobs.items() if n <= NO_HEAD_BELOW}
    large = set(blobs) - small
    assert large and len(small) >= 3
    known = min(small)  # the record knows this one: asked for as before
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        target = parse_ref(f"{proxy.address}/{name}")
        # One small unseen blob is there already (another tool pushed it).
        held = max(small - {known})
        push_blobs(client, lay, target, {held: blobs[held]})
        before = len(proxy.log)
        counts, _ = push_blobs(client, lay, target, blobs, unseen=set(blobs) - {known})
        log = list(proxy.log)[before:]
    asked = {r.path.rsplit("/", 1)[-1] for r in log if r.method == "HEAD"}
    assert asked == large | {known}, log
    assert counts == {"exists": 0, "mounted": 0, "uploaded": len(blobs)}, counts
    for d in blobs:
        r = httpx.head(f"http://{registry}/v2/{name}/blobs/{d}", timeout=10)
        assert r.status_code == 200, (d, r)
