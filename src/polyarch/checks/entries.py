"""The entries of the image ``verify`` reads: one per platform descriptor of its index
(or the one manifest), with that manifest and its config; and the two checks they
answer by themselves: ``coverage`` (exactly the expected platforms, each once) and
``labels`` (each entry's platform is its config's).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from polyarch.checks.report import Finding, PlatformResult, VerifyReport
from polyarch.platforms import ARCHES, DEFAULT_VARIANT, Platform, parse_platform
from polyarch.registry.media import Manifest, is_attestation, load_json
from polyarch.registry.source import ImageSource


def _platform_str(p: dict[str, Any]) -> str:
    os_ = str(p.get("os") or "?")
    arch = str(p.get("architecture") or "?")
    variant = str(p.get("variant") or "")
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def _same_platform(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if (a.get("os"), a.get("architecture")) != (b.get("os"), b.get("architecture")):
        return False
    va, vb = str(a.get("variant") or ""), str(b.get("variant") or "")
    if va == vb:
        return True
    default = DEFAULT_VARIANT.get(str(a.get("architecture")), "")
    return {va, vb} <= {"", default}


def _to_platform(p: dict[str, Any]) -> Platform | None:
    """The known platform a descriptor names, or ``None``. An architecture polyarch
    knows with a variant it does not (``amd64/v3``) is kept as written: its binaries
    are judged by the architecture's ELF machine."""
    if p.get("os") != "linux":
        return None
    arch = str(p.get("architecture") or "")
    variant = str(p.get("variant") or "")
    for text in (f"linux/{arch}/{variant}" if variant else f"linux/{arch}", f"linux/{arch}"):
        try:
            plat = parse_platform(text)
        except ValueError:
            continue
        if (plat.architecture, plat.variant) in ARCHES and plat.architecture == arch:
            if variant and plat.variant != variant and arch == "amd64":
                return Platform("linux", arch, variant)
            return plat
    return None


@dataclass
class Entry:
    """One platform of the image: its result so far, its descriptor (with the platform
    its config says when no index names one) and what the checks read of it."""

    result: PlatformResult
    desc: dict[str, Any]
    plat: Platform | None
    manifest: Manifest | None = None
    config: dict[str, Any] | None = None


def read_entries(src: ImageSource, root: Manifest, pool: ThreadPoolExecutor,
                 report: VerifyReport) -> list[Entry]:
    """One entry per platform descriptor, with its manifest and config fetched."""
    if root.is_index:
        descs = [d for d in root.json.get("manifests") or [] if isinstance(d, dict)]
        descs = [d for d in descs if not is_attestation(d)]
        manifests = list(pool.map(lambda d: src.manifest(str(d["digest"])), descs))
    else:
        descs = [{"digest": root.digest, "mediaType": root.media_type}]
        manifests = [root]
        report.findings.append(Finding(
            "coverage", "warning", "the reference is a single-platform manifest, not an index"))

    def config(m: Manifest) -> dict[str, Any] | None:
        if m.is_index:
            return None
        cfg = m.json.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("digest"), str):
            return None
        doc = load_json(src.blob(cfg["digest"]), f"image config {cfg['digest']}")
        return doc if isinstance(doc, dict) else None

    configs = list(pool.map(config, manifests))
    entries = []
    for d, m, c in zip(descs, manifests, configs, strict=True):
        plat_doc = d.get("platform")
        if not isinstance(plat_doc, dict):
            # A manifest without an index around it: it is what its config says.
            plat_doc = {k: c.get(k) for k in ("os", "architecture", "variant")} if c else {}
        res = PlatformResult(_platform_str(plat_doc), m.digest)
        if c is not None:
            res.config_platform = _platform_str(c)
        entry = Entry(res, {**d, "platform": plat_doc}, _to_platform(plat_doc), m, c)
        if m.is_index:
            res.findings.append(Finding("coverage", "error", "index entry is itself an index"))
            entry.manifest = None
        entries.append(entry)
    return entries


def check_coverage(entries: list[Entry], expected: list[Platform], report: VerifyReport) -> None:
    seen: dict[Platform, Entry] = {}
    for e in entries:
        e.result.ran.add("coverage")
        pd = e.desc["platform"]
        match = next((p for p in expected
                      if p.matches(str(pd.get("os")), str(pd.get("architecture")),
                                   pd.get("variant"))), None)
        if match is None:
            e.result.status = "unexpected"
            want = ", ".join(str(p) for p in expected)
            e.result.findings.append(Finding(
                "coverage", "error", f"{e.result.platform} is in the index but not expected"
                                     f" (expected: {want})"))
        elif match in seen:
            e.result.status = "duplicate"
            e.result.findings.append(Finding(
                "coverage", "error", f"{match} appears more than once in the index (also"
                                     f" {seen[match].result.digest})"))
        else:
            seen[match] = e
    for p in expected:
        if p not in seen:
            res = PlatformResult(str(p), None, status="missing")
            res.ran.add("coverage")
            res.findings.append(Finding("coverage", "error",
                                        f"{p} is expected but missing from the index"))
            entries.append(Entry(res, {"platform": {}}, p))


def check_labels(e: Entry) -> None:
    e.result.ran.add("labels")
    if e.config is None:
        e.result.findings.append(Finding("labels", "error", "image config could not be read"))
        return
    if not _same_platform(e.desc["platform"], e.config):
        e.result.findings.append(Finding(
            "labels", "error",
            f"index entry says {e.result.platform} but its image config says"
            f" {_platform_str(e.config)}"))
