"""OCI layouts and layers from anywhere: ``verify oci:PATH`` on fuzzed ``index.json``,
manifests and configs (any bytes, any nesting, wrong field types) ends in a documented
exit code with one error line; the layer walker on fuzzed or damaged tar streams
either reads them or raises :class:`LayerFormatError`, nothing else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oci_images import make_layer, write_oci_layout
from tar_craft import GOOD

from polyarch.checks.layers import LayerFormatError, scan_layer
from polyarch.checks.tarstream import list_entries

from .harness import assert_clean, invoke
from .strategies import any_text, deep_json, json_values

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def layout(tmp_path: Path) -> Path:
    d = tmp_path / "L"
    if not (d / "index.json").exists():
        layer = make_layer({"etc/hostname": b"box\n"}, "gzip")
        write_oci_layout(d, [("linux/amd64", [(*layer, "gzip")])])
    return d


def put(d: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (d / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def verify(d: Path) -> None:
    assert_clean(invoke(["verify", f"oci:{d}", "--platform", "linux/amd64"], cwd=d.parent,
                        env={"POLYARCH_CACHE_DIR": str(d.parent / "cache")}))


def with_manifest(d: Path, manifest: bytes) -> None:
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": MANIFEST, "digest": put(d, manifest), "size": len(manifest),
        "platform": {"os": "linux", "architecture": "amd64"}}]}))


def good_manifest(d: Path, config: bytes | None = None) -> dict[str, Any]:
    layer = make_layer({"bin/sh": b"#!/bin/true\n"}, "gzip")[0]
    cfg = config if config is not None else b'{"os": "linux", "architecture": "amd64"}'
    return {"schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": put(d, cfg), "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": put(d, layer), "size": len(layer)}]}


@given(data=st.binary(max_size=300) | deep_json.map(str.encode))
def test_index_json_bytes(tmp_path: Path, data: bytes) -> None:
    d = layout(tmp_path)
    (d / "index.json").write_bytes(data)
    verify(d)


@given(entries=st.lists(st.dictionaries(
    st.sampled_from(["mediaType", "digest", "size", "platform", "annotations"]) | any_text,
    json_values, max_size=5), max_size=3), extra=st.dictionaries(any_text, json_values))
def test_index_json_fields(tmp_path: Path, entries: list[dict[str, Any]],
                           extra: dict[str, Any]) -> None:
    d = layout(tmp_path)
    (d / "index.json").write_text(json.dumps({**extra, "manifests": entries}))
    verify(d)


@given(data=st.binary(max_size=300) | deep_json.map(str.encode))
def test_any_manifest_bytes_in_a_layout_end_cleanly(tmp_path: Path, data: bytes) -> None:
    d = layout(tmp_path)
    with_manifest(d, data)
    verify(d)


@given(changes=st.dictionaries(st.sampled_from(["config", "layers", "mediaType",
                                                "annotations", "schemaVersion"]),
                               json_values.map(json.dumps) | deep_json, max_size=2))
def test_manifests_with_odd_fields_end_cleanly(tmp_path: Path, changes: dict[str, str]) -> None:
    d = layout(tmp_path)
    base = {k: v for k, v in good_manifest(d).items() if k not in changes}
    text = json.dumps(base)[:-1] + "".join(f', "{k}": {raw}' for k, raw in changes.items())
    with_manifest(d, (text + "}").encode("utf-8", "surrogatepass"))
    verify(d)


@given(config=st.binary(max_size=300) | deep_json.map(str.encode)
       | json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")))
def test_any_image_config_in_a_layout_ends_cleanly(tmp_path: Path, config: bytes) -> None:
    d = layout(tmp_path)
    with_manifest(d, json.dumps(good_manifest(d, config)).encode())
    verify(d)


@pytest.mark.parametrize("doc", [
    b"[" * 100_000, b'{"a":' * 100_000, b"[" * 101 + b"]" * 101,
    b'{"manifests": [' + b'{"a": [' * 5000 + b"]}" * 5000 + b"]}",
    b'{"manifests": "' + b"[" * 100_000 + b'"}',
])
@pytest.mark.parametrize("where", ["index.json", "manifest", "config"])
def test_deep_documents_everywhere(tmp_path: Path, doc: bytes, where: str) -> None:
    d = layout(tmp_path)
    if where == "index.json":
        (d / "index.json").write_bytes(doc)
    elif where == "manifest":
        with_manifest(d, doc)
    else:
        with_manifest(d, json.dumps(good_manifest(d, doc)).encode())
    verify(d)


def read(blob: bytes) -> None:
    try:
        scan_layer("sha256:" + "0" * 64, [blob[i:i + 333] for i in range(0, len(blob), 333)])
        list(list_entries([blob]))
    except LayerFormatError:
        pass


@given(data=st.binary(max_size=4000))
def test_any_bytes_as_a_layer(data: bytes) -> None:
    read(data)


@given(case=st.sampled_from(sorted(GOOD)), flips=st.lists(
    st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=8),
       cut=st.none() | st.integers(0, 1 << 16))
def test_damaged_layers_of_every_format(case: str, flips: list[tuple[int, int]],
                                        cut: int | None) -> None:
    blob = bytearray(GOOD[case]())
    for at, x in flips:
        blob[at % len(blob)] ^= x
    read(bytes(blob[:cut]) if cut is not None else bytes(blob))
