"""Blobs the registry already holds in another repository are mounted, not uploaded:
an image built FROM REGISTRY/team/base and published to REGISTRY/team/app, through the
real engine, a real registry and the fault proxy (which records every request)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import make_context
from faultproxy import FaultProxy, LocalRegistry, make_layer, push_index, write_oci_layout

from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout
from polyarch.registry.mounts import SOURCE_PREFIX, parse_purl

pytestmark = pytest.mark.engine


def layers_of(ref: str) -> set[str]:
    """The layer digests of every platform manifest of the index at ``ref``."""
    out: set[str] = set()
    with RegistryClient() as client:
        index = client.get_manifest(parse_ref(ref))
        for d in index.json["manifests"]:
            if (d.get("platform") or {}).get("os") in (None, "unknown"):
                continue  # an attestation manifest
            man = client.get_manifest(parse_ref(ref).untagged().with_digest(d["digest"]))
            out |= {x["digest"] for x in man.json.get("layers", [])}
    return out


def blob_requests(proxy: FaultProxy, repo: str) -> tuple[list[str], list[str]]:
    """(digests mounted into ``repo``, blob uploads finished in ``repo``) per the proxy."""
    mounted = [r.path.split("mount=")[1].split("&")[0] for r in proxy.log
               if r.method == "POST" and r.path.startswith(f"/v2/{repo}/blobs/uploads/?mount=")
               and r.outcome == "forwarded 201"]
    uploaded = [r.path.split("digest=")[1] for r in proxy.log
                if r.method == "PUT" and r.path.startswith(f"/v2/{repo}/blobs/uploads/")
                and "digest=" in r.path and r.outcome == "forwarded 201"]
    return mounted, uploaded


def test_an_image_built_from_a_base_on_the_registry_mounts_the_base_layers(
        tmp_path: Path, own_registry: LocalRegistry, cache_dir: Path) -> None:
    with FaultProxy(own_registry.address) as proxy:
        reg = proxy.address
        base = polyarch("publish", "-t", f"{reg}/team/base:1", "--json",
                        str(make_context(tmp_path / "base")))
        assert base.code == 0, base.err
        base_layers = layers_of(f"{reg}/team/base:1")
        app = tmp_path / "app"
        app.mkdir()
        (app / "greeting").write_text("hello from the app\n")
        (app / "Dockerfile").write_text(f"ARG BASE={reg}/team/base:1\nFROM $BASE\n"
                                        "COPY greeting /greeting\n")
        proxy.log.clear()
        run = polyarch("publish", "-t", f"{reg}/team/app:1", "--json", str(app))
        assert run.code == 0, run.err
        pushed = run.json()["push"]["blobs"]
        mounted, uploaded = blob_requests(proxy, "team/app")
        shared = layers_of(f"{reg}/team/app:1") & base_layers
    # Every base layer the app holds came by mount; nothing of the base was uploaded.
    assert shared, "the app holds none of the base's layers"
    assert set(mounted) == shared, (mounted, shared)
    assert not set(uploaded) & base_layers
    assert pushed["mounted"] == len(shared) == len(mounted)
    assert pushed["uploaded"] == len(uploaded) > 0  # the app's own layer and configs
    print(f"blobs: {pushed['uploaded']} uploaded, {pushed['mounted']} mounted,"
          f" {pushed['skipped']} already there")


def test_a_refused_mount_falls_back_to_an_upload(tmp_path: Path, registry: str,
                                                  repo: str) -> None:
    """A source the layout names that does not hold the blob (or cannot be read): the
    mount is refused and the blob is uploaded; the push succeeds."""
    layer = make_layer({"etc/motd": b"hello\n"}, "gzip")
    lay_dir = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*layer, "gzip")])])
    proxy = FaultProxy(registry)
    # Annotate the layer with a source repository that does not have it.
    lay = OCILayout(lay_dir)
    man = lay.manifest(lay.root().json["manifests"][0]["digest"])
    doc = man.json
    doc["layers"][0]["annotations"] = {f"{SOURCE_PREFIX}{proxy.address}": "nowhere/empty"}
    data = json.dumps(doc).encode()
    import hashlib

    new = "sha256:" + hashlib.sha256(data).hexdigest()
    (lay_dir / "blobs" / "sha256" / new[7:]).write_bytes(data)
    index = lay.root().json
    index["manifests"][0].update(digest=new, size=len(data))
    (lay_dir / "index.json").write_text(json.dumps(index))
    path = repo.split("/", 1)[1]
    with proxy, RegistryClient() as client:
        res = push_layout(client, OCILayout(lay_dir), parse_ref(f"{proxy.address}/{path}"))
        tried = [r for r in proxy.log if "mount=" in r.path and "from=nowhere/empty" in r.path]
    assert len(tried) == 1 and tried[0].outcome == "forwarded 202"
    assert res.blobs_mounted == 0 and res.blobs_uploaded == 2


def test_blobs_a_base_image_holds_are_mounted_from_its_repository(
        tmp_path: Path, registry: str, repo: str) -> None:
    base_ref = parse_ref(f"{repo}-base:1")
    layer = make_layer({"usr/share/base": b"b" * 10_000}, "gzip")
    own = make_layer({"app": b"a" * 100}, "gzip")
    with RegistryClient() as client:
        push_index(client, base_ref, [("linux/amd64", [(*layer, "gzip")])])
        lay_dir = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*layer, "gzip"),
                                                                        (*own, "gzip")])])
        res = push_layout(client, OCILayout(lay_dir), parse_ref(f"{repo}-app"),
                          bases=[base_ref])
    assert res.blobs_mounted == 1 and res.blobs_uploaded == 2  # own layer and config
    # BuildKit's provenance names the base as a package URL.
    ref = parse_purl("pkg:docker/127.0.0.1%3A5000/team/base@1?platform=linux%2Famd64",
                     "sha256:" + "a" * 64)
    assert ref is not None and str(ref) == f"127.0.0.1:5000/team/base@sha256:{'a' * 64}"


def test_blobs_an_earlier_publish_sent_are_mounted_into_a_new_repository(
        tmp_path: Path, own_registry: LocalRegistry, cache_dir: Path) -> None:
    """The same image published into a second repository of the registry: every blob
    the first publish sent is mounted from the first repository (as containerd's
    distribution-source labels let ``buildx --push`` do), none is uploaded again; the
    record of where blobs went is in the cache directory."""
    ctx = make_context(tmp_path / "ctx")
    with FaultProxy(own_registry.address) as proxy:
        reg = proxy.address
        first = polyarch("publish", "-t", f"{reg}/team/one:1", "--json", str(ctx))
        assert first.code == 0, first.err
        assert first.json()["push"]["blobs"]["mounted"] == 0
        proxy.log.clear()
        second = polyarch("publish", "-t", f"{reg}/team/two:1", "--json", str(ctx))
        assert second.code == 0, second.err
        mounted, uploaded = blob_requests(proxy, "team/two")
        tried = [r for r in proxy.log if r.method == "POST" and "mount=" in r.path]
        layers = layers_of(f"{reg}/team/two:1")
    # The layers are the same build's: all mounted from team/one, none uploaded again
    # (what differs between the two publishes, such as the provenance, is uploaded).
    assert layers and layers <= set(mounted), (layers, mounted)
    assert not layers & set(uploaded)
    assert all("from=team%2Fone" in r.path or "from=team/one" in r.path for r in tried)
    assert second.json()["push"]["blobs"]["mounted"] == len(mounted)
    assert any((cache_dir / "pushed").iterdir())
