"""``verify``: prove that every variant of an image is what its platform label says.

Checks, each reported per platform:

``coverage``  exactly the expected platforms are in the index, each once;
``labels``    each index entry's platform equals its config's os/architecture/variant;
``binaries``  every ELF executable and shared object of the final filesystem (after
              whiteouts) has the machine, class and byte order of the platform;
``secrets``   no credentials in the final filesystem or the image's ``ENV``;
``smoke``     (optional) ``uname -m`` inside matches, and a command exits 0.

Layers are streamed from the registry (or an OCI layout), decompressed and parsed on the
fly in a thread pool, each distinct layer once, and never written to disk.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polyarch.checks import secrets as secret_checks
from polyarch.checks.elf import arm_variant_note, judge
from polyarch.checks.layers import LayerFormatError, LayerScan, merge, scan_layer
from polyarch.checks.smoke import RunArgv, docker_run_argv
from polyarch.checks.smoke import smoke as run_smoke
from polyarch.errors import UsageError, VerificationError
from polyarch.platforms import ARCHES, DEFAULT_VARIANT, Platform, parse_platform
from polyarch.refs import ImageRef
from polyarch.registry.client import RegistryClient
from polyarch.registry.media import Manifest, is_attestation
from polyarch.registry.source import ImageSource, open_source

CHECKS = ("coverage", "labels", "binaries", "secrets", "smoke")
#: JSON schema version of :meth:`VerifyReport.to_json`.
SCHEMA = 1


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # "error" fails verification; "warning" and "info" do not
    message: str
    path: str | None = None
    layer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "message": self.message,
                "path": self.path, "layer": self.layer}


@dataclass
class PlatformResult:
    #: The platform as the index entry labels it (or as expected, when missing).
    platform: str
    digest: str | None
    #: ``present``, ``missing``, ``unexpected`` or ``duplicate``.
    status: str = "present"
    config_platform: str | None = None
    findings: list[Finding] = field(default_factory=list)
    ran: set[str] = field(default_factory=set)
    layers: int = 0
    compressed_bytes: int = 0
    files_checked: int = 0

    def check_status(self, check: str) -> str:
        found = [f for f in self.findings if f.check == check]
        if any(f.severity == "error" for f in found):
            return "fail"
        if check not in self.ran:
            return "skipped"
        if any(f.severity == "warning" for f in found):
            return "warn"
        return "pass"

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "digest": self.digest,
            "status": self.status,
            "config_platform": self.config_platform,
            "ok": self.ok,
            "checks": {c: self.check_status(c) for c in CHECKS},
            "layers": self.layers,
            "compressed_bytes": self.compressed_bytes,
            "files_checked": self.files_checked,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class VerifyReport:
    reference: str
    index_digest: str
    media_type: str
    expected: list[str]
    deep: bool
    smoke: str | None
    platforms: list[PlatformResult] = field(default_factory=list)
    #: Findings about the image as a whole (not tied to one platform).
    findings: list[Finding] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.platforms) and not any(
            f.severity == "error" for f in self.findings)

    @property
    def compressed_bytes(self) -> int:
        return sum(p.compressed_bytes for p in self.platforms)

    def errors(self) -> list[tuple[str, Finding]]:
        out = [("", f) for f in self.findings if f.severity == "error"]
        out += [(p.platform, f) for p in self.platforms for f in p.findings
                if f.severity == "error"]
        return out

    def summary(self) -> str:
        errs = self.errors()
        if not errs:
            return f"{self.reference}: verified ({len(self.platforms)} platforms)"
        bad = sorted({p for p, _ in errs if p})
        return (f"{self.reference}: verification failed: {len(errs)} problem"
                f"{'s' if len(errs) != 1 else ''}" + (f" in {', '.join(bad)}" if bad else ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "reference": self.reference,
            "index_digest": self.index_digest,
            "media_type": self.media_type,
            "ok": self.ok,
            "expected_platforms": self.expected,
            "deep": self.deep,
            "smoke": self.smoke,
            "platforms": [p.to_json() for p in self.platforms],
            "findings": [f.to_json() for f in self.findings],
            "compressed_bytes": self.compressed_bytes,
            "elapsed_seconds": round(self.elapsed, 3),
        }


# -- helpers ----------------------------------------------------------------------------

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
    """The known platform a descriptor names, or ``None``."""
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
            return plat
    return None


def _is_layer(desc: dict[str, Any]) -> bool:
    mt = str(desc.get("mediaType") or "")
    return "tar" in mt or mt == "" or mt.startswith("application/vnd.docker.image.rootfs")


def _allowed(path: str, allow: Sequence[str]) -> str | None:
    for glob in allow:
        g = glob if glob.startswith("/") else "/" + glob
        if fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(path, g.rstrip("/") + "/*"):
            return glob
    return None


@dataclass
class _Entry:
    result: PlatformResult
    desc: dict[str, Any]
    plat: Platform | None
    manifest: Manifest | None = None
    config: dict[str, Any] | None = None


# -- verify -----------------------------------------------------------------------------

def verify(
    source: str | ImageRef,
    expected: Sequence[Platform],
    *,
    allow: Sequence[str] = (),
    smoke: str | None = None,
    deep: bool = True,
    client: RegistryClient | None = None,
    workers: int = 4,
    progress: Callable[[str], None] | None = None,
    run_argv: RunArgv = docker_run_argv,
) -> VerifyReport:
    """Verify the image at ``source`` (a registry reference or ``oci:PATH``).

    ``smoke`` (``None``: no runs) is a command to run in every platform's image; an
    empty string runs only the ``uname -m`` check. ``run_argv`` builds the engine's run
    command (docker by default). ``deep=False`` checks coverage and
    labels only (no layer is read). Raises :class:`RegistryError` when the image cannot
    be read; every problem with the image itself is a finding in the report.
    """
    t0 = time.monotonic()
    is_layout = isinstance(source, str) and source.startswith("oci:")
    if smoke is not None and is_layout:
        raise UsageError("smoke runs need a registry reference (the engine pulls the image);"
                         " an OCI layout cannot be run")
    own = client is None and not is_layout
    cl = RegistryClient() if own else client
    try:
        src = open_source(source, cl)
        report = _verify(src, list(expected), allow, smoke, deep, max(1, workers), progress,
                         run_argv)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # Malformed manifests, configs or index entries (not JSON, fields missing or of
        # the wrong type): the image cannot be verified, so it fails verification.
        raise VerificationError(f"{source}: the image is malformed and cannot be verified:"
                                f" {type(e).__name__}: {e}") from None
    finally:
        if own and cl is not None:
            cl.close()
    report.elapsed = time.monotonic() - t0
    return report


def verify_source(src: ImageSource, expected: Sequence[Platform], *, allow: Sequence[str] = (),
                  progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify an already opened source (a layout on disk, or parts in a registry)."""
    t0 = time.monotonic()
    try:
        report = _verify(src, list(expected), allow, None, True, 4, progress)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise VerificationError(f"{src.description}: the image is malformed and cannot be"
                                f" verified: {type(e).__name__}: {e}") from None
    report.elapsed = time.monotonic() - t0
    return report


def _verify(src: ImageSource, expected: list[Platform], allow: Sequence[str],
            smoke: str | None, deep: bool, workers: int,
            progress: Callable[[str], None] | None,
            run_argv: RunArgv = docker_run_argv) -> VerifyReport:
    say = progress or (lambda _m: None)
    root = src.root()
    report = VerifyReport(src.description, root.digest, root.media_type,
                          [str(p) for p in expected], deep, smoke)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = _entries(src, root, pool, report)
        _coverage(entries, expected, report)
        for e in entries:
            if e.manifest is not None:
                _labels(e)
        if deep:
            _deep(src, entries, allow, pool, say)
    if smoke is not None and src.ref is not None:
        for e in entries:
            if e.result.status in ("present", "unexpected") and e.plat and e.manifest:
                say(f"smoke run {e.result.platform}")
                image = f"{src.ref.name}@{e.manifest.digest}"
                e.result.ran.add("smoke")
                for r in run_smoke(e.plat, image, smoke or None, run_argv):
                    if r.severity != "ok":
                        e.result.findings.append(Finding("smoke", r.severity, r.message))
    report.platforms = [e.result for e in entries]
    report.platforms.sort(key=lambda r: (r.status == "missing", r.platform))
    return report


def _entries(src: ImageSource, root: Manifest, pool: ThreadPoolExecutor,
             report: VerifyReport) -> list[_Entry]:
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
        import json

        doc = json.loads(src.blob(cfg["digest"]))
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
        entry = _Entry(res, {**d, "platform": plat_doc}, _to_platform(plat_doc), m, c)
        if m.is_index:
            res.findings.append(Finding("coverage", "error", "index entry is itself an index"))
            entry.manifest = None
        entries.append(entry)
    return entries


def _coverage(entries: list[_Entry], expected: list[Platform], report: VerifyReport) -> None:
    seen: dict[Platform, _Entry] = {}
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
            entries.append(_Entry(res, {"platform": {}}, p))


def _labels(e: _Entry) -> None:
    e.result.ran.add("labels")
    if e.config is None:
        e.result.findings.append(Finding("labels", "error", "image config could not be read"))
        return
    if not _same_platform(e.desc["platform"], e.config):
        e.result.findings.append(Finding(
            "labels", "error",
            f"index entry says {e.result.platform} but its image config says"
            f" {_platform_str(e.config)}"))


def _deep(src: ImageSource, entries: list[_Entry], allow: Sequence[str],
          pool: ThreadPoolExecutor, say: Callable[[str], None]) -> None:
    layer_lists: dict[int, list[str]] = {}
    futures: dict[str, Future[LayerScan]] = {}
    for i, e in enumerate(entries):
        if e.manifest is None or e.result.status == "missing":
            continue
        layers = [d for d in e.manifest.json.get("layers") or [] if isinstance(d, dict)]
        digests = [str(d["digest"]) for d in layers if _is_layer(d) and d.get("digest")]
        layer_lists[i] = digests
        e.result.layers = len(digests)
        e.result.compressed_bytes = sum(int(d.get("size") or 0) for d in layers if _is_layer(d))
        for dg in digests:
            if dg not in futures:
                futures[dg] = pool.submit(_scan, src, dg)
    say(f"reading {len(futures)} layers")
    scans: dict[str, LayerScan | Finding] = {}
    for dg, fut in futures.items():
        try:
            scans[dg] = fut.result()
        except LayerFormatError as ex:
            scans[dg] = Finding("binaries", "error", f"layer cannot be read: {ex}", layer=dg)
    for i, digests in layer_lists.items():
        e = entries[i]
        e.result.ran |= {"binaries", "secrets"}
        good: list[LayerScan] = []
        for dg in digests:
            s = scans[dg]
            if isinstance(s, Finding):
                e.result.findings.append(s)
            else:
                good.append(s)
        _judge_files(e, good, allow)
        env = (e.config or {}).get("config", {}) or {}
        for hit in secret_checks.env_hits([str(x) for x in env.get("Env") or []]):
            e.result.findings.append(Finding("secrets", hit.severity,
                                             f"{hit.kind}: {hit.where}", path=None))


def _scan(src: ImageSource, digest: str) -> LayerScan:
    return scan_layer(digest, src.iter_blob(digest))


def _judge_files(e: _Entry, scans: list[LayerScan], allow: Sequence[str]) -> None:
    final = merge(scans)
    plat = e.plat
    if plat is None:
        e.result.findings.append(Finding(
            "binaries", "warning", f"{e.result.platform} is not a platform polyarch knows:"
                                   " binaries not checked"))
    else:
        note = arm_variant_note(plat)
        if note:
            e.result.findings.append(Finding("binaries", "info", note))
    for f in final.values():
        rec = f.record
        if rec.elf is not None and plat is not None:
            e.result.files_checked += 1
            verdict = judge(rec.elf, plat)
            if verdict is not None:
                glob = _allowed(f.path, allow)
                if glob:
                    e.result.findings.append(Finding(
                        "binaries", "info", f"{verdict.message} (allowed by {glob})",
                        f.path, f.layer))
                else:
                    e.result.findings.append(Finding("binaries", verdict.severity,
                                                     verdict.message, f.path, f.layer))
        for hit in rec.secrets:
            glob = _allowed(f.path, allow)
            sev = "info" if glob else hit.severity
            msg = hit.describe() + (f" (allowed by {glob})" if glob else "")
            e.result.findings.append(Finding("secrets", sev, msg, f.path, f.layer))


__all__ = ["CHECKS", "Finding", "PlatformResult", "VerifyReport", "verify"]
