"""The plan of ``polyarch merge`` (:mod:`polyarch.pipeline.merge`), made before anything
is written: every source resolved to a manifest pinned by digest, its platforms (a
single manifest's from its image config) and its attestation manifests (tied to their
platform by the ``vnd.docker.reference.digest`` annotation); a platform given twice,
or a missing or an unexpected one, refused; the index annotations the sources agree
on; and the index itself, which refers to the very manifests that were built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyarch.errors import RegistryError, UsageError, VerificationError
from polyarch.output import Reporter
from polyarch.pipeline.descriptor import Descriptor
from polyarch.platforms import Platform, parse_platform
from polyarch.refs import ImageRef, ReferenceError, parse_ref
from polyarch.registry import Manifest, ManifestNotFound, RegistryClient
from polyarch.registry.media import (
    ATTESTATION_FOR,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    is_attestation,
    load_json,
)


@dataclass
class Source:
    """One source as given on the command line, pinned to a digest."""

    given: str
    ref: ImageRef  # repository@digest
    root: Manifest
    descriptor: Descriptor | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.given, "reference": str(self.ref),
                "kind": "descriptor" if self.descriptor else "reference",
                "media_type": self.root.media_type}


@dataclass
class Entry:
    """One platform manifest going into the index, with its attestations."""

    platform: Platform
    desc: dict[str, Any]  # the index entry: mediaType, digest, size, platform[, annotations]
    source: Source
    attestations: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "?"

    @property
    def digest(self) -> str:
        return str(self.desc["digest"])


@dataclass
class MergePlan:
    sources: list[Source]
    entries: list[Entry]
    expected: tuple[Platform, ...]
    index: Manifest
    annotations: dict[str, str] = field(default_factory=dict)


def _platform_of(pd: dict[str, Any], where: str) -> Platform:
    parts = [str(pd.get("os") or ""), str(pd.get("architecture") or "")]
    if pd.get("variant"):
        parts.append(str(pd["variant"]))
    text = "/".join(parts)
    try:
        return parse_platform(text)
    except ValueError as e:
        raise UsageError(f"{where}: platform {text!r}: {e}") from None


def resolve_source(given: str, client: RegistryClient) -> Source:
    """A descriptor file (``*.json`` or an existing file) or an image reference."""
    descriptor: Descriptor | None = None
    path = Path(given)
    if given.endswith(".json") or path.is_file():
        descriptor = Descriptor.load(path)
        ref = parse_ref(descriptor.repository, default_tag=None).with_digest(descriptor.digest)
    else:
        try:
            ref = parse_ref(given)
        except ReferenceError as e:
            raise UsageError(f"source {given!r}: not a descriptor file and not an image"
                             f" reference: {e}") from None
    try:
        root = client.get_manifest(ref)
    except ManifestNotFound:
        what = (f"the image it describes ({ref}) is not in the registry" if descriptor
                else "no such image in the registry")
        raise RegistryError(f"source {given}: {what}",
                            hint="check the reference, or that the build job pushed") from None
    pinned = ref.untagged().with_digest(root.digest) if not ref.digest else ref
    return Source(given, pinned, root, descriptor)


def source_entries(src: Source, client: RegistryClient) -> list[Entry]:
    """The platform manifests of one source, each with its attestation manifests."""
    where = f"source {src.given}"
    entries: list[Entry] = []
    if src.root.is_index:
        attest: dict[str, list[dict[str, Any]]] = {}
        for d in src.root.json.get("manifests") or []:
            if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
                continue
            if is_attestation(d):
                subject = str((d.get("annotations") or {}).get(ATTESTATION_FOR, ""))
                attest.setdefault(subject, []).append(d)
                continue
            if d.get("mediaType") in INDEX_TYPES:
                raise UsageError(f"{where}: nested indexes are not supported ({d['digest']})")
            pd = d.get("platform")
            if not isinstance(pd, dict):
                raise UsageError(f"{where}: index entry {d['digest']} has no platform")
            entries.append(Entry(_platform_of(pd, where), dict(d), src))
        for e in entries:
            e.attestations = attest.pop(e.digest, [])
        # Attestations whose subject is not in the source stay out of the merged index.
    else:
        cfg_desc = src.root.json.get("config")
        if not isinstance(cfg_desc, dict) or not isinstance(cfg_desc.get("digest"), str):
            raise UsageError(f"{where}: the manifest has no image config")
        try:
            cfg = load_json(client.get_blob(src.ref, cfg_desc["digest"]))
        except ValueError:
            cfg = None
        if not isinstance(cfg, dict):
            raise UsageError(f"{where}: the image config is not a JSON object")
        pd = {k: cfg[k] for k in ("os", "architecture", "variant") if cfg.get(k)}
        desc = {"mediaType": src.root.media_type, "digest": src.root.digest,
                "size": len(src.root.data), "platform": pd}
        entries.append(Entry(_platform_of(pd, where), desc, src))
    if src.descriptor is not None:
        for e in entries:
            e.mode = src.descriptor.modes.get(str(e.platform), "?")
        said = sorted(str(parse_platform(p)) for p in src.descriptor.platforms)
        found = sorted(str(e.platform) for e in entries)
        if said != found:
            raise UsageError(f"{where}: the descriptor lists {', '.join(said)} but the image"
                             f" {src.ref} holds {', '.join(found) or 'no platform'}")
    return entries


def check_coverage(entries: list[Entry], expected: Sequence[Platform]) -> list[Entry]:
    """Refuse duplicates (exit 2) and missing or unexpected platforms (exit 5).

    The same manifest (same digest) given twice counts once.
    """
    chosen: dict[Platform, Entry] = {}
    for e in entries:
        other = chosen.get(e.platform)
        if other is None:
            chosen[e.platform] = e
        elif other.digest != e.digest:
            raise UsageError(
                f"duplicate platform {e.platform}: source {other.source.given} has"
                f" {other.digest[:19]}, source {e.source.given} has {e.digest[:19]}",
                hint="give each platform once")
    missing = [p for p in expected if p not in chosen]
    if missing:
        have = ", ".join(str(p) for p in chosen) or "none"
        raise VerificationError(
            f"missing expected platform{'s' if len(missing) > 1 else ''}"
            f" {', '.join(str(p) for p in missing)}: no source has"
            f" {'them' if len(missing) > 1 else 'it'} (the sources have {have})",
            hint="add the missing build, or pass --platform with the platforms you mean")
    extra = [e for p, e in chosen.items() if p not in expected]
    if extra:
        raise VerificationError(
            "unexpected platform " + ", ".join(f"{e.platform} (from {e.source.given})" for e in extra)
            + f": expected only {', '.join(str(p) for p in expected)}",
            hint="drop that source, or add the platform to --platform or the config")
    order = {p: i for i, p in enumerate(expected)}
    return sorted(chosen.values(), key=lambda e: order[e.platform])


def common_annotations(sources: Sequence[Source], rep: Reporter,
                       overridden: Sequence[str] = ()) -> dict[str, str]:
    """Index annotations every source agrees on: a source index's own, and what a build
    descriptor says its build meant for the index (a one-platform build puts them on its
    manifest: BuildKit makes no index there). A single manifest given by reference has
    none. Keys in ``overridden`` (set by merge itself) are not warned about."""
    maps = []
    for s in sources:
        meant = s.descriptor.annotations if s.descriptor is not None else None
        if s.root.is_index or meant is not None:
            ann = s.root.json.get("annotations") if s.root.is_index else None
            m = {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}
            maps.append({**m, **(meant or {})})
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        for k in list(out):
            if m.get(k) != out[k]:
                if k in m and k not in overridden:
                    rep.warn(f"index annotation {k} differs between sources; left out")
                del out[k]
    return out


def build_index(entries: Sequence[Entry], annotations: dict[str, str]) -> Manifest:
    """Platform manifests in the expected order, then their attestations."""
    manifests = [e.desc for e in entries]
    for e in entries:
        manifests.extend(e.attestations)
    docker_only = all(m.get("mediaType") == DOCKER_MANIFEST for m in manifests) and not annotations
    media_type = DOCKER_LIST if docker_only else OCI_INDEX
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if annotations:
        doc["annotations"] = annotations
    data = json.dumps(doc, indent=2).encode() + b"\n"
    return Manifest.from_bytes(data, media_type)


def plan_merge(client: RegistryClient, given: Sequence[str], expected: Sequence[Platform] | None,
               rep: Reporter, extra_annotations: dict[str, str] | None = None) -> MergePlan:
    if not given:
        raise UsageError("no source given", hint="pass build descriptors or image references")
    with ThreadPoolExecutor(max_workers=8) as pool:
        sources = list(pool.map(lambda g: resolve_source(g, client), given))
        refuse_duplicates(given, sources)
        per_source = list(pool.map(lambda s: source_entries(s, client), sources))
    entries = [e for es in per_source for e in es]
    if expected is None:
        union: list[Platform] = []
        for e in entries:
            if e.platform not in union:
                union.append(e.platform)
        expected = tuple(union)
    chosen = check_coverage(entries, expected)
    extra = extra_annotations or {}
    annotations = {**common_annotations(sources, rep, list(extra)), **extra}
    return MergePlan(sources, chosen, tuple(expected), build_index(chosen, annotations),
                     annotations)


def refuse_duplicates(given: Sequence[str], sources: Sequence[Source]) -> None:
    seen: dict[str, str] = {}
    for g, src in zip(given, sources, strict=True):
        key = str(src.ref)
        if key in seen:
            raise UsageError(f"sources {seen[key]!r} and {g!r} are the same image ({key})",
                             hint="give each platform's build once")
        seen[key] = g
