"""OCI layouts on disk: reading, blob locations, writing dirs and archives, push plans."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from oci_images import make_layer, write_oci_layout

from polyarch.errors import RegistryError, UsageError
from polyarch.registry import OCILayout, write_layout
from polyarch.registry.push import plan_push


def two_platforms(d: Path) -> OCILayout:
    a = make_layer({"bin/a": b"a" * 5000}, "gzip")
    b = make_layer({"bin/b": b"b" * 7000}, "zstd")
    return OCILayout(write_oci_layout(d, [("linux/amd64", [(*a, "gzip")]),
                                          ("linux/arm64", [(*a, "gzip"), (*b, "zstd")])]))


def test_blob_locations_dir_and_tar(tmp_path: Path) -> None:
    lay = two_platforms(tmp_path / "lay")
    root = lay.root()
    assert root.is_index
    manifests, blobs = plan_push(lay, root)
    assert [m.digest for m in manifests][-1] == root.digest and len(manifests) == 3
    assert len(blobs) == 4  # two configs, two distinct layers
    tar = write_layout(lay, tmp_path / "app.tar")
    arc = OCILayout(tar)
    assert arc.is_archive and arc.root().digest == root.digest
    for digest, size in blobs.items():
        d_loc, t_loc = lay.locate(digest), arc.locate(digest)
        assert lay.blob_path(digest) == d_loc.path and d_loc.offset == 0
        assert arc.blob_path(digest) is None and t_loc.path == tar and t_loc.offset > 0
        assert d_loc.size == t_loc.size == size
        data = b"".join(t_loc.read())
        assert hashlib.sha256(data).hexdigest() == digest[7:]
        # A range of the blob, as a resumed upload reads it.
        assert b"".join(t_loc.read(3, 10)) == data[3:13]
    with tarfile.open(tar) as tf:
        names = set(tf.getnames())
    assert {"oci-layout", "index.json"} <= names
    assert all(n.startswith("blobs/sha256/") for n in names - {"oci-layout", "index.json"})


def test_write_layout_directory_and_refusals(tmp_path: Path) -> None:
    lay = two_platforms(tmp_path / "lay")
    out = write_layout(lay, tmp_path / "out", name="v1")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    assert OCILayout(out, "v1").root().digest == lay.root().digest
    # Writing again over a layout replaces it.
    write_layout(lay, out)
    with pytest.raises(UsageError, match="no such directory"):
        write_layout(lay, tmp_path / "missing" / "x.tar")
    (tmp_path / "file.tar").write_text("not a layout")
    with pytest.raises(UsageError, match="not an OCI layout") as ei:
        write_layout(lay, tmp_path / "file.tar")
    assert ei.value.exit_code == 2


def test_missing_child_manifest_refused(tmp_path: Path) -> None:
    lay = two_platforms(tmp_path / "lay")
    child = lay.root().json["manifests"][0]["digest"]
    (tmp_path / "lay" / "blobs" / "sha256" / child[7:]).unlink()
    with pytest.raises(UsageError, match="is not in the layout"):
        plan_push(lay, lay.root())


def test_corrupt_blob_detected(tmp_path: Path) -> None:
    lay = two_platforms(tmp_path / "lay")
    cfg = lay.manifest(lay.root().json["manifests"][0]["digest"]).json["config"]["digest"]
    path = tmp_path / "lay" / "blobs" / "sha256" / cfg[7:]
    path.write_bytes(b"{" + b" " * (path.stat().st_size - 2) + b"}")  # same size
    with pytest.raises(RegistryError, match="does not match its digest"):
        lay.blob(cfg)


def test_blob_of_another_size_than_its_descriptor_is_refused(tmp_path: Path) -> None:
    lay = two_platforms(tmp_path / "lay")
    desc = lay.manifest(lay.root().json["manifests"][0]["digest"]).json["config"]
    (tmp_path / "lay" / "blobs" / "sha256" / desc["digest"][7:]).write_bytes(b"{}")
    with pytest.raises(RegistryError, match=f"has 2 bytes, its descriptor says {desc['size']}"):
        lay.blob(desc["digest"])


def test_push_of_an_incomplete_layout_is_refused_before_any_request(tmp_path: Path) -> None:
    from polyarch.refs import parse_ref
    from polyarch.registry import RegistryClient, push_layout

    lay = two_platforms(tmp_path / "lay")
    man = lay.manifest(lay.root().json["manifests"][1]["digest"])
    layer = man.json["layers"][-1]["digest"]
    (tmp_path / "lay" / "blobs" / "sha256" / layer[7:]).unlink()
    with RegistryClient() as client:
        with pytest.raises(UsageError, match=f"blobs/sha256/{layer[7:]} is missing") as ei:
            push_layout(client, lay, parse_ref("127.0.0.1:9/never/contacted"))
        assert ei.value.exit_code == 2
        assert client.requests_sent == 0
