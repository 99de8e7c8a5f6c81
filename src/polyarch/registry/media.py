"""Media types of the OCI image spec and their Docker equivalents."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

#: What we ask a registry for when fetching a manifest by tag or digest.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

#: Layer media types that are never pushed to a registry (Windows base layers and the like).
NON_DISTRIBUTABLE = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})

#: The annotations buildx puts on attestation manifests inside an index.
ATTESTATION_TYPE = "vnd.docker.reference.type"
ATTESTATION_FOR = "vnd.docker.reference.digest"


def load_json(data: bytes | str) -> Any:
    """``json.loads`` for data from a registry, a layout or a file: any malformed input,
    nested past the parser's depth included, is a ``ValueError`` (never a
    ``RecursionError``); bytes that are not UTF-8 are a ``ValueError`` too."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry returned it."""

    data: bytes
    media_type: str
    digest: str

    @property
    def json(self) -> dict[str, Any]:
        doc = load_json(self.data)
        if not isinstance(doc, dict):
            raise ValueError("manifest is not a JSON object")
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @staticmethod
    def from_bytes(data: bytes, media_type: str | None = None) -> Manifest:
        """Build from raw bytes; the media type comes from the document when not given."""
        mt = media_type or ""
        if not mt or mt not in INDEX_TYPES | MANIFEST_TYPES:
            try:
                doc = load_json(data)
            except ValueError:
                doc = {}
            if isinstance(doc, dict):
                found = doc.get("mediaType")
                if isinstance(found, str) and found:
                    mt = found
                elif "manifests" in doc:
                    mt = OCI_INDEX
                elif "layers" in doc:
                    mt = OCI_MANIFEST
        return Manifest(data, mt, sha256_digest(data))


def is_attestation(desc: dict[str, Any]) -> bool:
    """Whether an index entry is a buildx attestation manifest (not a runnable platform).

    Runtimes pick entries by ``platform`` and ignore the annotation, so an entry that
    claims a real platform is treated as a platform entry (and verified), whatever its
    annotation says; attestations carry ``unknown/unknown`` or no platform.
    """
    ann = desc.get("annotations") or {}
    if not (isinstance(ann, dict) and ann.get(ATTESTATION_TYPE) == "attestation-manifest"):
        return False
    plat = desc.get("platform")
    return not isinstance(plat, dict) or plat.get("os") in (None, "", "unknown")
