"""Secrets in what a pull gets besides the platform images: attestation manifests
(their annotations, config and in-toto layers) and the descriptors' annotations.

An attestation manifest is not a platform (runtimes never run it), but it is pushed
with the index and anyone who can pull the image can read it: BuildKit's provenance
in ``mode=max`` holds every build argument. Its findings go to the platform it is
about (``vnd.docker.reference.digest``), else to the image as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from polyarch.checks import secrets
from polyarch.checks.report import Finding, PlatformResult, VerifyReport
from polyarch.registry.media import ATTESTATION_FOR, Manifest, is_attestation
from polyarch.registry.source import ImageSource

if TYPE_CHECKING:
    from polyarch.checks.deep import Judged

#: The annotation of an attestation layer naming its predicate.
PREDICATE_TYPE = "in-toto.io/predicate-type"
#: An attestation manifest's own config: a few hundred bytes (read at most this much).
_MAX_CONFIG = 1 << 20


def check_index(src: ImageSource, root: Manifest, results: Mapping[str, PlatformResult],
                report: VerifyReport, pool: ThreadPoolExecutor,
                judged: Judged | None = None) -> None:
    """Findings of the index's descriptors (``manifests[]`` annotations) and of every
    attestation manifest it lists; ``results`` maps a platform manifest's digest to
    its result. ``judged``: attestation manifests scanned before in this run (each
    platform verified on its own first) are not scanned again."""
    doc = root.json
    for i, d in enumerate(doc.get("manifests") or []):
        if not isinstance(d, dict):
            continue
        ann = d.get("annotations")
        hits = secrets.scan_annotations(ann if isinstance(ann, dict) else {},
                                        f"index manifests[{i}]")
        target = results.get(str(d.get("digest")))
        for hit in hits:
            _add(report, target, Finding("secrets", hit.severity, hit.describe(), path=None,
                                         kind="annotation"))
    descs = [d for d in doc.get("manifests") or []
             if isinstance(d, dict) and is_attestation(d) and isinstance(d.get("digest"), str)]
    def scan(d: dict[str, Any]) -> list[Finding]:
        if judged is None:
            return _attestation(src, d)
        return judged.attestation(str(d["digest"]), lambda: _attestation(src, d))

    for d, found in zip(descs, pool.map(scan, descs), strict=True):
        ann = d.get("annotations") or {}
        target = results.get(str(ann.get(ATTESTATION_FOR)))
        for f in found:
            _add(report, target, f)


def _add(report: VerifyReport, target: PlatformResult | None, f: Finding) -> None:
    if target is not None:
        target.ran.add("secrets")
        target.findings.append(f)
    else:
        report.findings.append(f)


def _attestation(src: ImageSource, desc: dict[str, Any]) -> list[Finding]:
    digest = str(desc["digest"])
    man = src.manifest(digest)
    doc = man.json
    out: list[Finding] = []
    short = digest[7:19]

    def add(hits: list[secrets.SecretHit], what: str, layer: str | None) -> None:
        for h in hits:
            out.append(Finding("secrets", h.severity, f"{what}: {h.describe()}", path=None,
                               layer=layer, kind="attestation"))

    ann = doc.get("annotations")
    add(secrets.scan_annotations(ann if isinstance(ann, dict) else {}),
        f"attestation manifest {short}", None)
    add(secrets.scan_descriptors(doc), f"attestation manifest {short}", None)
    cfg = doc.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("digest"), str):
        s = secrets.ContentScanner("")
        for chunk in _bounded(src, str(cfg["digest"]), _MAX_CONFIG):
            s.feed(chunk)
        add(s.finish(), f"attestation manifest {short}, its config", str(cfg["digest"]))
    for layer in doc.get("layers") or []:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            continue
        lann = layer.get("annotations")
        predicate = str((lann if isinstance(lann, dict) else {}).get(PREDICATE_TYPE) or
                        layer.get("mediaType") or "unknown")
        name = secrets.statement_name(predicate)
        add(secrets.scan_statement(src.iter_blob(str(layer["digest"]))),
            f"{name} attestation ({predicate})", str(layer["digest"]))
    return out


def _bounded(src: ImageSource, digest: str, limit: int) -> Iterator[bytes]:
    read = 0
    for chunk in src.iter_blob(digest):
        if read >= limit:
            continue  # read to the end (the source checks the digest there)
        yield chunk[:limit - read]
        read += len(chunk)
