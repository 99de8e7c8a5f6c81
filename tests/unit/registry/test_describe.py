"""What inspect shows of an index: its platforms with their attestations."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from polyarch.registry.describe import describe
from polyarch.registry.media import ATTESTATION_FOR, Manifest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def doc(d: dict[str, Any], media_type: str) -> Manifest:
    data = json.dumps(d).encode()
    return Manifest(data, media_type, "sha256:" + hashlib.sha256(data).hexdigest())


class Source:
    """An image source of documents in memory, counting the manifests read."""

    description = "memory"

    def __init__(self, root: Manifest, manifests: dict[str, Manifest],
                 blobs: dict[str, bytes]) -> None:
        self._root, self._manifests, self._blobs = root, manifests, blobs
        self.reads: list[str] = []

    def root(self) -> Manifest:
        return self._root

    def manifest(self, digest: str) -> Manifest:
        self.reads.append(digest)
        return self._manifests[digest]

    def blob(self, digest: str) -> bytes:
        return self._blobs[digest]


def test_an_attestation_shared_by_two_platforms_is_read_once() -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "created": "2026-01-01T00:00:00Z"}).encode()
    cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    image = doc({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"digest": cfg_digest, "size": len(config)},
                 "layers": [{"digest": "sha256:" + "1" * 64, "size": 100}]}, OCI_MANIFEST)
    arm = doc({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"digest": cfg_digest, "size": len(config)}, "layers": []},
              OCI_MANIFEST)
    att = doc({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [
        {"digest": "sha256:" + "2" * 64, "size": 10,
         "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]},
        OCI_MANIFEST)
    unknown = {"os": "unknown", "architecture": "unknown"}
    index = doc({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"digest": image.digest, "mediaType": OCI_MANIFEST, "size": len(image.data),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": arm.digest, "mediaType": OCI_MANIFEST, "size": len(arm.data),
         "platform": {"os": "linux", "architecture": "arm64"}},
        *({"digest": att.digest, "mediaType": OCI_MANIFEST, "size": len(att.data),
           "platform": unknown, "annotations": {
               ATTESTATION_FOR: subject, "vnd.docker.reference.type": "attestation-manifest"}}
          for subject in (image.digest, arm.digest))]}, OCI_INDEX)
    src: Any = Source(index, {m.digest: m for m in (image, arm, att)}, {cfg_digest: config})
    desc = describe(src, index)
    assert sorted(src.reads) == sorted([image.digest, arm.digest, att.digest])
    assert [p.platform for p in desc.platforms] == ["linux/amd64", "linux/arm64"]
    assert [len(p.attestations) for p in desc.platforms] == [1, 1]
    assert desc.platforms[0].size == len(config) + 100
