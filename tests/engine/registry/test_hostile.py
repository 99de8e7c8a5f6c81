"""A hostile or broken registry, through the real CLI in a subprocess, behind the fault
proxy in front of the real test registry: answers that never end (with or without
chunks), a blob dripping one byte at a time, a wrong size in a manifest, JSON nested
past any parser's depth, a 100 KB token realm, a broken DOCKER_CONFIG. Each ends with
exit 4 and one line naming what was wrong, within the deadline, and the polyarch
process never holds more than 100 MiB (its peak RSS, read by a wrapper process)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Run, last_error_line
from faultproxy import Fault, FaultProxy, TokenAuth, make_layer, push_index

from polyarch.refs import parse_ref
from polyarch.registry import RegistryClient
from polyarch.registry.media import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST

from ..helpers import PEAK_RSS_WRAPPER

pytestmark = pytest.mark.engine

#: Peak memory a hostile peer may make polyarch hold.
MAX_RSS = 100 * 1024 * 1024

def measured(*args: str, tmp_path: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> tuple[Run, int, float]:
    """Run polyarch in a wrapper process: (result, the polyarch process's peak RSS in
    bytes, seconds it took)."""
    rss_file = tmp_path / f"rss-{time.monotonic_ns()}"
    full = dict(os.environ)
    full.pop("POLYARCH_DEBUG", None)
    full.update(env or {})
    full["RSS_FILE"] = str(rss_file)
    t0 = time.monotonic()
    cp = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, sys.executable, "-m", "polyarch",
                         *args], env=full, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    return Run(cp.returncode, cp.stdout, cp.stderr), int(rss_file.read_text()), took


def one_clean_line(run: Run, code: int = 4) -> str:
    assert run.code == code, run.text
    assert "Traceback" not in run.text and "internal error" not in run.text, run.text
    return last_error_line(run)


@pytest.fixture
def image(repo: str) -> str:
    """A one-platform index in the test registry: the path part (no host) with its tag."""
    layer = make_layer({"bin/data": os.urandom(200_000)}, "gzip")
    with RegistryClient() as client:
        push_index(client, parse_ref(f"{repo}:1"), [("linux/amd64", [(*layer, "gzip")])])
    return repo.split("/", 1)[1] + ":1"


@pytest.fixture
def proxy(registry: str) -> Iterator[FaultProxy]:
    with FaultProxy(registry) as p:
        yield p


# -- answers that never end --------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["no-length", "chunked"])
def test_an_endless_manifest_is_cut_at_the_limit(proxy: FaultProxy, image: str,
                                                 tmp_path: Path, chunked: bool) -> None:
    proxy.add(Fault.endless(chunked=chunked), match="/manifests/", times=None)
    run, rss, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path)
    line = one_clean_line(run)
    assert f"registry {proxy.address}: GET manifest" in line
    assert "the answer is larger than 4194304 bytes" in line
    assert rss < MAX_RSS, rss


def test_an_endless_error_body_is_cut_too(proxy: FaultProxy, image: str, tmp_path: Path) -> None:
    proxy.add(Fault.endless(code=400, content_type="application/json"), match="/manifests/",
              times=None)
    run, rss, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path)
    one_clean_line(run)
    assert rss < MAX_RSS, rss


def test_an_endless_blob_during_verify_ends_at_its_descriptor_size(
        proxy: FaultProxy, image: str, tmp_path: Path) -> None:
    proxy.add(Fault.endless(content_type="application/octet-stream"), method="GET",
              match="/blobs/sha256:", times=None)
    run, rss, _ = measured("verify", f"{proxy.address}/{image}", "--platform", "linux/amd64",
                           tmp_path=tmp_path)
    line = one_clean_line(run)
    assert "is larger than" in line and "bytes" in line, line
    assert rss < MAX_RSS, rss


def test_an_endless_token_answer_is_cut(registry: str, image: str, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with FaultProxy(registry, auth=TokenAuth(users={"u": "p"})) as proxy:
        (cfg / "config.json").write_text(json.dumps(
            {"auths": {proxy.address: {"username": "u", "password": "p"}}}))
        proxy.add(Fault.endless(content_type="application/json"), match="/token", times=None)
        run, rss, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path,
                               env={"DOCKER_CONFIG": str(cfg)})
    line = one_clean_line(run)
    assert f"token for {proxy.address}" in line and "larger than 4194304 bytes" in line, line
    assert rss < MAX_RSS, rss


# -- slow, wrong size --------------------------------------------------------------------

def test_a_blob_dripping_below_the_minimum_rate_ends_at_the_deadline(
        proxy: FaultProxy, image: str, tmp_path: Path) -> None:
    proxy.add(Fault.drip(0.5, after=100), method="GET", match="/blobs/sha256:", times=None)
    run, rss, took = measured("verify", f"{proxy.address}/{image}", "--platform",
                              "linux/amd64", tmp_path=tmp_path,
                              env={"POLYARCH_REGISTRY_TIMEOUT": "3"})
    line = one_clean_line(run)
    assert "slower than the minimum of 1024 bytes/s" in line, line
    assert "POLYARCH_REGISTRY_TIMEOUT" in line
    # the deadline (3 s), one more byte's wait, and the command's own start-up
    assert took < 15, took
    assert rss < MAX_RSS, rss


def put_amd64_index(client: RegistryClient, ref: Any, man: bytes) -> None:
    """Push ``man`` by digest and an index naming it as linux/amd64 under ``ref``."""
    mdigest = client.put_manifest(ref.untagged().with_digest(
        "sha256:" + hashlib.sha256(man).hexdigest()), man, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(man),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    client.put_manifest(ref, index, OCI_INDEX)


def test_a_wrong_size_in_a_manifest_is_an_error(repo: str, registry: str,
                                                tmp_path: Path) -> None:
    data = os.urandom(50_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
    ref = parse_ref(f"{repo}:wrong")
    with RegistryClient() as client:
        client.upload_blob(ref, digest, data)
        client.upload_blob(ref, cdigest, config)
        man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": {"mediaType": OCI_CONFIG, "digest": cdigest,
                                     "size": len(config)},
                          "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                      "digest": digest, "size": 1000}]}).encode()
        put_amd64_index(client, ref, man)
    run, _, _ = measured("verify", str(ref), "--platform", "linux/amd64", tmp_path=tmp_path)
    line = one_clean_line(run)
    assert f"GET blob {digest[:19]}" in line, line
    assert "larger than the 1000 bytes its descriptor says (it declares 50000 bytes)" in line


# -- shapes no parser survives -----------------------------------------------------------

def test_a_manifest_nested_past_any_parser_is_one_line(proxy: FaultProxy, image: str,
                                                       tmp_path: Path) -> None:
    proxy.add(Fault.answer(200, b"[" * 100_000, {"Content-Type": OCI_INDEX}),
              match="/manifests/", times=None)
    run, _, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path)
    assert "nested too deeply" in one_clean_line(run)


def test_a_token_nested_past_any_parser_is_one_line(registry: str, image: str,
                                                    tmp_path: Path) -> None:
    with FaultProxy(registry, auth=TokenAuth(users={"u": "p"})) as proxy:
        proxy.add(Fault.answer(200, b'{"token":' + b"[" * 100_000,
                               {"Content-Type": "application/json"}), match="/token", times=None)
        run, _, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path)
    line = one_clean_line(run)
    assert "token service answered something not JSON (nested too deeply" in line, line


def test_a_100_kb_realm_is_one_line(proxy: FaultProxy, image: str, tmp_path: Path) -> None:
    realm = f"http://{proxy.address}/token/" + "a" * 100_000
    proxy.add(Fault.answer(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}"'}),
              match="/manifests/", times=None)
    run, rss, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path)
    line = one_clean_line(run)
    assert proxy.address in line
    assert len(line) < 1000
    assert rss < MAX_RSS, rss


@pytest.mark.parametrize("content", [b'{"auths":' + b"[" * 100_000, b'{"auths": {"\xff\xfe": 1}}'],
                         ids=["nested", "not-utf-8"])
def test_a_broken_docker_config_is_one_line(registry: str, image: str, tmp_path: Path,
                                            content: bytes) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_bytes(content)
    with FaultProxy(registry, auth=TokenAuth(users={"u": "p"})) as proxy:
        run, _, _ = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path,
                             env={"DOCKER_CONFIG": str(cfg)})
    line = one_clean_line(run)
    assert str(cfg / "config.json") in line
    assert "malformed image" not in line
    assert ("nested too deeply" in line) or ("is not UTF-8 text" in line), line


def test_an_image_config_nested_past_any_parser_is_one_line(repo: str, tmp_path: Path) -> None:
    config = b"[" * 100_000 + b"]" * 100_000
    cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
    ref = parse_ref(f"{repo}:nested-config")
    with RegistryClient() as client:
        client.upload_blob(ref, cdigest, config)
        man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": {"mediaType": OCI_CONFIG, "digest": cdigest,
                                     "size": len(config)}, "layers": []}).encode()
        put_amd64_index(client, ref, man)
    inspect, _, _ = measured("inspect", str(ref), tmp_path=tmp_path)
    assert "nested too deeply" in one_clean_line(inspect, 4)
    verify, _, _ = measured("verify", str(ref), "--platform", "linux/amd64", tmp_path=tmp_path)
    assert "nested too deeply" in one_clean_line(verify, 5)


def test_headers_dripping_below_the_minimum_rate_end_at_the_deadline(
        proxy: FaultProxy, image: str, tmp_path: Path) -> None:
    proxy.add(Fault.drip_headers(0.5), match="/manifests/", times=None)
    run, rss, took = measured("inspect", f"{proxy.address}/{image}", tmp_path=tmp_path,
                              env={"POLYARCH_REGISTRY_TIMEOUT": "3"})
    line = one_clean_line(run)
    assert f"registry {proxy.address}: GET manifest" in line, line
    assert "slower than the minimum of 1024 bytes/s" in line, line
    assert took < 15, took
    assert rss < MAX_RSS, rss


def test_a_registry_taking_an_upload_below_the_minimum_rate_ends_it_at_the_deadline(
        proxy: FaultProxy, repo: str, tmp_path: Path) -> None:
    from faultproxy import write_oci_layout

    from polyarch.errors import RegistryError
    from polyarch.registry import OCILayout, push_layout

    layer = make_layer({"bin/x": os.urandom(40_000_000)}, "none")
    lay = OCILayout(write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*layer, "none")])]))
    proxy.add(Fault.slow_read(0.5), method="PATCH", times=None)
    proxy.add(Fault.slow_read(0.5), method="PUT", match="digest=", times=None)
    with RegistryClient(timeout=3, backoff=0.01, retries=1) as client:
        t0 = time.monotonic()
        with pytest.raises(RegistryError) as ei:
            push_layout(client, lay, parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}"))
        took = time.monotonic() - t0
    assert ei.value.exit_code == 4
    assert "upload blob" in ei.value.message, ei.value.message
    assert took < 30, took
    # No manifest written (they were only asked for, by digest, before the blobs).
    assert {r.method for r in proxy.log if "/manifests/" in r.path} == {"HEAD"}
