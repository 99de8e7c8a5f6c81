"""push_layout on layouts buildx itself writes (directory and archive, with provenance)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout


def buildx_layout(ctx: Path, dest: Path, tar: bool) -> None:
    out = f"type=oci,dest={dest}" + ("" if tar else ",tar=false")
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
                        "--provenance", "mode=min", "--output", out, str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_push_what_buildx_wrote(hello_context: Path, tmp_path: Path, registry: str,
                                repo: str) -> None:
    as_dir, as_tar = tmp_path / "oci-dir", tmp_path / "oci.tar"
    buildx_layout(hello_context, as_dir, tar=False)
    buildx_layout(hello_context, as_tar, tar=True)
    name = repo.split("/", 1)[1]
    with RegistryClient() as client:
        lay = OCILayout(as_dir)
        root = lay.root()
        assert root.is_index
        entries = root.json["manifests"]
        # Two platforms and their provenance attestations.
        platforms = sorted(f"{e['platform']['os']}/{e['platform']['architecture']}"
                           for e in entries)
        assert platforms == ["linux/amd64", "linux/arm64", "unknown/unknown", "unknown/unknown"]
        res = push_layout(client, lay, parse_ref(f"{registry}/{name}"))
        # Each distinct manifest once (two attestations may be the same bytes), then the root.
        assert res.digest == root.digest
        assert res.manifests == 1 + len({e["digest"] for e in entries})
        assert res.blobs_uploaded >= 6 and res.blobs_skipped == 0
        # The archive buildx wrote (built again: its provenance differs, its layers not),
        # read in place, into another repository, mounting what the first one has.
        arc = OCILayout(as_tar)
        assert arc.is_archive
        again = push_layout(client, arc, parse_ref(f"{registry}/{name}-tar"),
                            mount_from=[name])
        assert again.digest == arc.root().digest
        assert again.blobs_mounted >= 4  # the platforms' layers and configs
        assert again.blobs_mounted + again.blobs_uploaded == res.blobs_uploaded
    tags = httpx.get(f"http://{registry}/v2/{name}/tags/list", timeout=10)
    assert tags.status_code == 404 or not tags.json().get("tags")
    # skopeo, independent of polyarch, reads every platform by digest.
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry}/{name}@{res.digest}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(raw)["manifests"] == entries
