"""What ``polyarch inspect`` shows: an index, its platforms and their attestations."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polyarch.registry.media import ATTESTATION_FOR, Manifest, is_attestation, load_json
from polyarch.registry.source import ImageSource

#: JSON schema version of :meth:`ImageDescription.to_json`.
SCHEMA = 1


@dataclass
class Attestation:
    digest: str
    media_type: str
    size: int
    predicate_types: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "media_type": self.media_type, "size": self.size,
                "predicate_types": self.predicate_types}


@dataclass
class PlatformEntry:
    platform: str
    digest: str
    media_type: str
    #: Compressed bytes: config plus layers.
    size: int
    created: str | None
    layers: int
    attestations: list[Attestation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "digest": self.digest, "media_type": self.media_type,
                "size": self.size, "created": self.created, "layers": self.layers,
                "attestations": [a.to_json() for a in self.attestations]}


@dataclass
class ImageDescription:
    reference: str
    digest: str
    media_type: str
    is_index: bool
    annotations: dict[str, str]
    platforms: list[PlatformEntry]
    #: Attestations whose subject is not in the index.
    orphan_attestations: list[Attestation]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "is_index": self.is_index,
            "annotations": self.annotations,
            "platforms": [p.to_json() for p in self.platforms],
            "orphan_attestations": [a.to_json() for a in self.orphan_attestations],
        }


def _platform_str(p: dict[str, Any]) -> str:
    s = f"{p.get('os') or '?'}/{p.get('architecture') or '?'}"
    return f"{s}/{p['variant']}" if p.get("variant") else s


def describe(src: ImageSource, root: Manifest | None = None) -> ImageDescription:
    """What ``inspect`` shows of ``src`` (``root``: its root manifest, if read already)."""
    root = src.root() if root is None else root

    def entry(desc: dict[str, Any], man: Manifest) -> PlatformEntry:
        doc = man.json
        cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        assert isinstance(cfg, dict)
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        config: dict[str, Any] = {}
        if isinstance(cfg.get("digest"), str):
            loaded = load_json(src.blob(cfg["digest"]), f"image config {cfg['digest']}")
            config = loaded if isinstance(loaded, dict) else {}
        plat = desc.get("platform")
        if not isinstance(plat, dict):
            plat = {k: config.get(k) for k in ("os", "architecture", "variant")}
        size = int(cfg.get("size") or 0) + sum(int(d.get("size") or 0) for d in layers)
        created = config.get("created")
        return PlatformEntry(_platform_str(plat), man.digest, man.media_type, size,
                             str(created) if created else None, len(layers))

    def attestation(desc: dict[str, Any], man: Manifest) -> Attestation:
        layers = [d for d in man.json.get("layers") or [] if isinstance(d, dict)]
        preds = sorted({str((d.get("annotations") or {}).get("in-toto.io/predicate-type"))
                        for d in layers if (d.get("annotations") or {})
                        .get("in-toto.io/predicate-type")})
        return Attestation(man.digest, man.media_type, int(desc.get("size") or len(man.data)),
                           preds)

    if not root.is_index:
        only = entry({}, root)
        return ImageDescription(src.description, root.digest, root.media_type, False, {},
                                [only], [])
    doc = root.json
    descs = [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
    platform_descs = [d for d in descs if not is_attestation(d)]
    att_descs = [d for d in descs if is_attestation(d)]
    # Each attestation manifest read once (the attestations of two platforms may be one).
    att_digests = list(dict.fromkeys(str(d["digest"]) for d in att_descs))
    with ThreadPoolExecutor(max_workers=8) as pool:
        # A platform's manifest and then its config, in one task per platform: no
        # platform waits for the other manifests before its config is asked for.
        entries_read = pool.map(lambda d: entry(d, src.manifest(str(d["digest"]))),
                                platform_descs)
        atts_read = pool.map(src.manifest, att_digests)
        entries = list(entries_read)
        read = dict(zip(att_digests, atts_read, strict=True))
    att_pairs = [(d, read[str(d["digest"])]) for d in att_descs]
    by_digest = {e.digest: e for e in entries}
    orphans = []
    for d, m in att_pairs:
        att = attestation(d, m)
        subject = (d.get("annotations") or {}).get(ATTESTATION_FOR)
        if subject in by_digest:
            by_digest[subject].attestations.append(att)
        else:
            orphans.append(att)
    ann = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    return ImageDescription(src.description, root.digest, root.media_type, True,
                            {str(k): str(v) for k, v in (ann or {}).items()}, entries, orphans)
