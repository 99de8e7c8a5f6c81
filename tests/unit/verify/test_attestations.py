"""What a pull gets besides the platform images: attestation manifests (read, never
skipped) and the annotations of every descriptor. Findings go to the platform an
attestation is about and name the attestation and the kind, never the value."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from faultproxy import make_layer, write_oci_layout

from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platforms
from polyarch.registry import OCILayout

NPM = "npm_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"  # made up, npm's format
AMD = parse_platforms("linux/amd64")


def _put(blobdir: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobdir / digest[7:]).write_bytes(data)
    return digest


def layout_with_attestation(tmp: Path, statement: dict[str, Any],
                            index_annotations: dict[str, str] | None = None) -> Path:
    """A one-platform layout whose index also lists an attestation manifest, the way
    buildx writes one (unknown/unknown platform, vnd.docker.reference.* annotations,
    an application/vnd.in-toto+json layer)."""
    d = write_oci_layout(tmp, [("linux/amd64", [(*make_layer({"bin/app": b"hi\n"}), "gzip")])])
    blobdir = d / "blobs" / "sha256"
    top = json.loads((d / "index.json").read_text())
    idx_digest = top["manifests"][0]["digest"]
    index = json.loads((blobdir / idx_digest[7:]).read_bytes())
    target = index["manifests"][0]["digest"]
    if index_annotations:
        index["manifests"][0]["annotations"] = index_annotations
    stmt = json.dumps(statement).encode()
    cfg = b'{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _put(blobdir, cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": _put(blobdir, stmt),
                    "size": len(stmt),
                    "annotations": {"in-toto.io/predicate-type": statement["predicateType"]}}],
    }).encode()
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": _put(blobdir, man), "size": len(man),
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.digest": target,
                        "vnd.docker.reference.type": "attestation-manifest"}})
    raw = json.dumps(index).encode()
    top["manifests"][0].update(digest=_put(blobdir, raw), size=len(raw))
    (d / "index.json").write_text(json.dumps(top))
    return d


def provenance(args: dict[str, str]) -> dict[str, Any]:
    return {"_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "predicate": {"invocation": {"parameters": {
                "args": {f"build-arg:{k}": v for k, v in args.items()}}}}}


def test_token_in_provenance_fails_the_platform_it_is_about(tmp_path: Path) -> None:
    d = layout_with_attestation(tmp_path, provenance({"NPM_TOKEN": NPM}))
    doc = verify_source(OCILayout(d), AMD, cache=None).to_json()
    assert doc["ok"] is False
    (plat,) = doc["platforms"]
    assert plat["platform"] == "linux/amd64" and plat["checks"]["secrets"] == "fail"
    (f,) = plat["findings"]
    assert f["kind"] == "attestation" and f["severity"] == "error"
    assert f["message"].startswith(
        "provenance attestation (https://slsa.dev/provenance/v0.2): npm access token")
    assert "build argument NPM_TOKEN" in f["message"]
    assert NPM not in json.dumps(doc) and NPM[4:20] not in json.dumps(doc)


def test_clean_provenance_passes(tmp_path: Path) -> None:
    d = layout_with_attestation(tmp_path, provenance({"VERSION": "1.2.3"}))
    report = verify_source(OCILayout(d), AMD, cache=None)
    assert report.ok, report.to_json()
    # The attestation is not taken for a platform.
    assert [p.platform for p in report.platforms] == ["linux/amd64"]


def test_index_descriptor_annotation(tmp_path: Path) -> None:
    d = layout_with_attestation(tmp_path, provenance({}),
                                index_annotations={"org.acme.npm": NPM})
    doc = verify_source(OCILayout(d), AMD, cache=None).to_json()
    (f,) = doc["platforms"][0]["findings"]
    assert "index manifests[0], annotation org.acme.npm" in f["message"]
    assert NPM not in json.dumps(doc)
