"""The registry client against the real loopback registry; credential helpers."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cli_helpers import polyarch
from faultproxy import Fault, FaultProxy, LocalRegistry, make_layer, push_index

from polyarch.checks.verify import verify
from polyarch.errors import RegistryError
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import BlobNotFound, ManifestNotFound, RegistryClient
from polyarch.registry.credentials import DockerConfig

BOTH = parse_platforms("linux/amd64,linux/arm64")


def small_index(client: RegistryClient, ref_text: str, payload: bytes = b"x" * 300_000) -> str:
    layer = make_layer({"bin/data": payload, "etc/motd": b"hi\n"})
    layer2 = make_layer({"bin/data": payload[::-1]}, "zstd")
    return push_index(client, parse_ref(ref_text), [("linux/amd64", [(*layer, "gzip")]),
                                                   ("linux/arm64", [(*layer2, "zstd")])])


def write_helper(bindir: Path, name: str, body: str) -> None:
    p = bindir / f"docker-credential-{name}"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def test_docker_config_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    bindir = tmp_path / "bin"
    bindir.mkdir()
    write_helper(bindir, "fake", 'read server\nif [ "$server" = "helped.io" ]; then\n'
                 '  echo \'{"ServerURL":"helped.io","Username":"hu","Secret":"hs"}\'\n'
                 'elif [ "$server" = "https://index.docker.io/v1/" ]; then\n'
                 '  echo \'{"Username":"<token>","Secret":"refresh-me"}\'\n'
                 'else echo "credentials not found in native keychain"; exit 1; fi\n')
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    auth = base64.b64encode(b"alice:pw1").decode()
    (cfg / "config.json").write_text(json.dumps({
        "auths": {"https://plain.io/v1/": {"auth": auth}, "tok.io": {"identitytoken": "it"},
                  "empty.io": {}},
        "credHelpers": {"helped.io": "fake"},
    }))
    dc = DockerConfig(cfg)
    plain = dc.credentials("plain.io")
    assert plain is not None and plain.basic == ("alice", "pw1")
    assert "pw1" not in repr(plain)
    helped = dc.credentials("helped.io")
    assert helped is not None and helped.basic == ("hu", "hs")
    assert "fake" in helped.source
    tok = dc.credentials("tok.io")
    assert tok is not None and tok.identity_token == "it" and tok.basic is None
    assert dc.credentials("empty.io") is None
    assert dc.credentials("nowhere.io") is None
    # credsStore answers for every registry; Docker Hub's key is the v1 URL.
    (cfg / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    dc = DockerConfig(cfg)
    hub = dc.credentials("docker.io")
    assert hub is not None and hub.identity_token == "refresh-me"
    assert dc.credentials("nowhere.io") is None
    # DOCKER_CONFIG is honoured when no directory is given.
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    assert DockerConfig().path == cfg / "config.json"


# -- against the registry ------------------------------------------------------------------

def test_manifest_tag_and_delete_roundtrip(repo: str) -> None:
    with RegistryClient() as client:
        digest = small_index(client, f"{repo}:v1")
        ref = parse_ref(f"{repo}:v1")
        man = client.get_manifest(ref)
        assert man.digest == digest and man.is_index
        assert client.head_manifest(ref) == digest
        assert client.head_manifest(ref.with_tag("nope")) is None
        with pytest.raises(ManifestNotFound):
            client.get_manifest(ref.with_tag("nope"))
        # The same bytes under another tag keep the digest.
        assert client.put_manifest(ref.with_tag("v2"), man.data, man.media_type) == digest
        assert sorted(client.list_tags(ref)) == ["v1", "v2"]
        by_digest = client.get_manifest(ref.untagged().with_digest(digest))
        assert by_digest.data == man.data
        # Distribution 2.x cannot delete a tag: False, and nothing else is touched.
        assert client.delete_manifest(ref.with_tag("v2")) is False
        assert client.head_manifest(ref) == digest
        # Deleting by digest removes the manifest (and so every tag on it).
        assert client.delete_manifest(ref.untagged().with_digest(digest)) is True
        assert client.head_manifest(ref) is None
        assert client.list_tags(parse_ref(f"{repo}-never-pushed:x")) == []


def test_blob_stream_checks_digest(repo: str) -> None:
    with RegistryClient() as client:
        ref = parse_ref(f"{repo}:b")
        data = os.urandom(3_000_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.upload_blob(ref, digest, data)
        assert client.blob_exists(ref, digest)
        assert b"".join(client.stream_blob(ref, digest)) == data
        missing = "sha256:" + "0" * 64
        assert not client.blob_exists(ref, missing)
        with pytest.raises(BlobNotFound):
            client.get_blob(ref, missing)


def test_stream_resumes_after_a_cut_connection(registry: str, repo: str) -> None:
    data = os.urandom(2_000_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with RegistryClient() as direct:
        direct.upload_blob(parse_ref(f"{repo}:b"), digest, data)
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.01) as client:
        proxy.add(Fault.truncate(700_000), method="GET", match="/blobs/sha256:", times=2)
        ref = parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}:b")
        assert b"".join(client.stream_blob(ref, digest)) == data
        ranges = [r.headers.get("Range") for r in proxy.log if "/blobs/" in r.path]
        assert ranges[0] is None and ranges[1] == "bytes=700000-"
        assert proxy.faults_injected == 2


def test_corrupted_blob_is_refused(registry: str, repo: str, tmp_path: Path) -> None:
    """A registry that serves other bytes than the digest: the check while streaming fails."""
    with RegistryClient() as client:
        ref = parse_ref(f"{repo}:b")
        good, bad = b"A" * 100_000, b"B" * 100_000
        good_digest = "sha256:" + hashlib.sha256(good).hexdigest()
        bad_digest = "sha256:" + hashlib.sha256(bad).hexdigest()
        client.upload_blob(ref, good_digest, good)
        client.upload_blob(ref, bad_digest, bad)
    # A proxy that rewrites blob paths: asking for `good` returns `bad`'s bytes.
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        orig = proxy._forward

        def swap(h, body, truncate):  # type: ignore[no-untyped-def]
            h.path = h.path.replace(good_digest, bad_digest)
            orig(h, body, truncate)

        proxy._forward = swap  # type: ignore[method-assign]
        pref = parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}:b")
        with pytest.raises(RegistryError, match="arrived with digest"):
            client.get_blob(pref, good_digest)


def test_copy_image_mounts_within_a_registry(repo: str, registry: str) -> None:
    with RegistryClient() as client:
        digest = small_index(client, f"{repo}:src")
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        base = f"{proxy.address}/{repo.split('/', 1)[1]}"
        out = client.copy_image(parse_ref(f"{base}:src"), parse_ref(f"{base}-copy:dst"))
        assert out == digest
        mounts = [r for r in proxy.log if "mount=" in r.path]
        assert mounts and all(r.outcome == "forwarded 201" for r in mounts)
        assert not [r for r in proxy.log if r.method == "PUT" and "/blobs/uploads/" in r.path]
    report = verify(f"{repo}-copy:dst", BOTH)
    assert report.index_digest == digest
    # Copy by digest only: no tag appears.
    with RegistryClient() as client:
        client.copy_image(parse_ref(f"{repo}:src"),
                          parse_ref(f"{repo}-bydigest", default_tag=None))
        assert client.list_tags(parse_ref(f"{repo}-bydigest:x")) == []
        assert client.head_manifest(parse_ref(f"{repo}-bydigest@{digest}")) == digest


def test_copy_image_to_another_registry(repo: str, tmp_path: Path) -> None:
    with RegistryClient() as client:
        digest = small_index(client, f"{repo}:src")
        with LocalRegistry(tmp_path / "reg2") as other:
            dst = parse_ref(f"{other.address}/mirror/app:v1")
            assert client.copy_image(parse_ref(f"{repo}:src"), dst) == digest
            assert client.head_manifest(dst) == digest
            report = verify(dst, BOTH, client=client)
            assert report.ok, report.to_json()
            # A second copy finds every blob there already.
            before = client.requests_sent
            client.copy_image(parse_ref(f"{repo}:src"), dst)
            assert client.requests_sent - before < 20


def test_check_push_access(repo: str, tmp_path: Path) -> None:
    with RegistryClient() as client:
        client.check_push_access(parse_ref(f"{repo}:x"))
    with LocalRegistry(tmp_path / "down") as reg:
        address = reg.address
    with RegistryClient(retries=1, backoff=0.01) as client, \
            pytest.raises(RegistryError, match="failed after 2 attempts") as ei:
        client.check_push_access(parse_ref(f"{address}/a/b:x"))
    assert ei.value.exit_code == 4
    assert "cannot connect" in ei.value.message


def test_blobs_through_a_compressing_proxy(hello_context: Path, repo: str) -> None:
    """A proxy or CDN that gzips responses when allowed must not break the digest check:
    blobs are asked for with identity encoding."""
    from conftest import REGISTRY
    from faultproxy import FaultProxy

    run = polyarch("publish", "-t", f"{repo}:gz", str(hello_context))
    assert run.code == 0, run.err
    with FaultProxy(REGISTRY, gzip_blobs=True) as proxy:
        via = f"{proxy.address}/{repo.split('/', 1)[1]}:gz"
        check = polyarch("verify", via, "--json")
        blob_gets = [r for r in proxy.log if r.method == "GET" and "/blobs/" in r.path]
    assert check.code == 0, check.err
    assert blob_gets and all("identity" in r.headers.get("Accept-Encoding", "")
                             for r in blob_gets)
