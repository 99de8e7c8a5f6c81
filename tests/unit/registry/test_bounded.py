"""The pure parts of bounded answers and mount sources: the deadline's minimum rate,
how a cut-short wait is classified, and where a layout says its blobs come from.
(Behaviour against a real registry: tests/engine/registry/test_hostile.py and
test_mounts.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpcore
import pytest
from oci_images import make_layer, write_oci_layout

from polyarch.errors import RegistryError
from polyarch.registry import bounded
from polyarch.registry.bounded import Deadline, GuardedTransport
from polyarch.registry.layout import OCILayout
from polyarch.registry.mounts import SOURCE_PREFIX, annotated_sources, parse_purl


@pytest.fixture(autouse=True)
def _no_deadline_left_behind() -> Iterator[None]:
    yield
    bounded._current.__dict__.clear()


def test_the_deadline_starts_again_only_after_the_minimum_rate_s_worth_of_bytes() -> None:
    dl = Deadline(10.0, min_rate=100)  # 1000 bytes per 10 s
    end = dl.end
    dl.progress(999)
    assert dl.end == end and dl.moved == 999
    dl.progress(1)
    assert dl.end >= end and dl.moved == 0


def test_a_wait_cut_short_while_bytes_trickle_in_is_too_slow() -> None:
    dl = Deadline(10.0)
    dl.progress(5)
    bounded._use(dl, "r.example", "GET x")
    with pytest.raises(RegistryError, match="slower than the minimum of 1024 bytes/s"):
        bounded._slow_or_stalled(timeout=60.0, wait=2.0)


def test_a_long_silence_is_a_stall_left_to_the_retries() -> None:
    dl = Deadline(10.0)
    dl.progress(5)
    bounded._use(dl, "r.example", "GET x")
    bounded._slow_or_stalled(timeout=60.0, wait=9.0)  # no error: the caller retries
    bounded._slow_or_stalled(timeout=2.0, wait=2.0)  # the request's own timeout, not ours
    quiet = Deadline(10.0)
    bounded._use(quiet, "r.example", "GET x")
    bounded._slow_or_stalled(timeout=60.0, wait=1.0)  # nothing moved: a stall


def test_no_wait_starts_past_the_deadline() -> None:
    dl = Deadline(0.001)
    dl.end -= 1
    bounded._use(dl, "r.example", "GET x")
    with pytest.raises(RegistryError, match="GET x"):
        bounded._bounded(5.0)


def test_every_connection_of_the_guarded_transport_is_paced() -> None:
    t = GuardedTransport()
    backend = t._pool._network_backend  # type: ignore[attr-defined]
    assert isinstance(backend, bounded._PacedBackend)
    assert isinstance(backend._inner, httpcore.NetworkBackend)


@pytest.mark.parametrize(("uri", "digest", "want"), [
    ("pkg:docker/127.0.0.1%3A5000/team/base@1?platform=linux%2Famd64", None,
     "127.0.0.1:5000/team/base:1"),
    ("pkg:docker/ghcr.io/o/r@v2", "sha256:" + "b" * 64, "ghcr.io/o/r@sha256:" + "b" * 64),
    ("pkg:docker/library/debian@12?platform=linux%2Farm64", None,
     "docker.io/library/debian:12"),
    ("pkg:npm/left-pad@1", None, None),
    ("pkg:docker/%00bad@1", None, None),
])
def test_provenance_package_urls(uri: str, digest: str | None, want: str | None) -> None:
    ref = parse_purl(uri, digest)
    assert (str(ref) if ref is not None else None) == want


def test_distribution_source_annotations_name_repositories_per_registry(tmp_path: Path) -> None:
    layer = make_layer({"a": b"1"}, "gzip")
    d = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*layer, "gzip")])])
    lay = OCILayout(d)
    man = lay.manifest(lay.root().json["manifests"][0]["digest"])
    doc = man.json
    doc["layers"][0]["annotations"] = {
        f"{SOURCE_PREFIX}r.example:5000": "team/base,team/other",
        f"{SOURCE_PREFIX}docker.io": "library/debian",
        "org.example.unrelated": "x"}
    data = json.dumps(doc).encode()
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (d / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    index = lay.root().json
    index["manifests"][0].update(digest=digest, size=len(data))
    (d / "index.json").write_text(json.dumps(index))
    lay = OCILayout(d)
    layer_digest = doc["layers"][0]["digest"]
    assert annotated_sources(lay, lay.root(), "r.example:5000") == {
        layer_digest: ["team/base", "team/other"]}
    assert annotated_sources(lay, lay.root(), "docker.io") == {layer_digest: ["library/debian"]}
    assert annotated_sources(lay, lay.root(), "ghcr.io") == {}
