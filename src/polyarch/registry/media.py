"""Media types of the OCI image spec and their Docker equivalents."""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
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


#: Largest manifest, index or config accepted, from a registry or a layout on disk (the
#: distribution default limit for manifests is 4 MiB).
MAX_MANIFEST = 4 * 1024 * 1024
#: Deepest nesting of arrays and objects accepted in such a document. OCI documents
#: nest a handful of levels (provenance statements a dozen); Python's parser would
#: hit its recursion limit near 1,000.
MAX_DEPTH = 100

#: A JSON string (possessive: linear time, an unterminated one runs to the end).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: ``[`` and ``{`` -> +1, ``]`` and ``}`` -> -1 (as signed bytes).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class DocumentError(ValueError):
    """A JSON document that is too large, nested too deeply or not JSON at all."""


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data``'s arrays and objects nest more than ``limit`` deep (brackets
    inside strings do not count), in linear time and without recursion."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    steps = array("b")
    steps.frombytes(_STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEPS))
    return bool(steps) and max(accumulate(steps)) > limit


def load_json(data: bytes | str, what: str = "", *, limit: int = MAX_MANIFEST) -> Any:
    """``json.loads`` for documents read from a registry or a layout: at most ``limit``
    bytes and :data:`MAX_DEPTH` levels, else :class:`DocumentError` (never a
    ``RecursionError``). ``what`` names the document in the message (empty: the caller
    names it and the message says only what is wrong)."""
    subject = f"{what} is " if what else ""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if len(raw) > limit:
        raise DocumentError(f"{subject}larger than {limit // (1024 * 1024)} MiB"
                            f" ({len(raw)} bytes)")
    if too_deep(raw):
        raise DocumentError(f"{subject}nested too deeply (arrays or objects more than"
                            f" {MAX_DEPTH} deep)")
    try:
        return json.loads(raw)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DocumentError(f"{subject}nested too deeply") from None
    except ValueError as e:
        raise DocumentError(f"{subject}not JSON ({e})" if what else str(e)) from None


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
        doc = load_json(self.data, "manifest")
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
                doc = load_json(data, "manifest")
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


def descriptor_sizes(man: Manifest) -> dict[str, int]:
    """digest -> size of every descriptor in ``man`` (config, layers, child manifests)."""
    try:
        doc = man.json
    except ValueError:
        return {}
    descs: list[Any] = [doc.get("config")]
    for key in ("manifests", "layers"):
        value = doc.get(key)
        if isinstance(value, list):
            descs += value
    out: dict[str, int] = {}
    for d in descs:
        if not isinstance(d, dict):
            continue
        digest, size = d.get("digest"), d.get("size")
        if isinstance(digest, str) and type(size) is int and size >= 0:
            out.setdefault(digest, size)
    return out
