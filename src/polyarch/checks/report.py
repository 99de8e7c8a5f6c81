"""What verification found: findings per platform and for the image as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    #: A stable name for what was found (``wrong-machine``, ``deleted-but-shipped``...).
    kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "message": self.message,
                "path": self.path, "layer": self.layer, "kind": self.kind}


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
    #: Binaries tagged (by their path) for another platform: inert on this one.
    inert: list[str] = field(default_factory=list)
    #: The smoke command's first line of output, when it ran and passed.
    smoke_output: str | None = None
    #: Binaries of another machine in test data directories (never run).
    test_data: list[str] = field(default_factory=list)

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
            "inert_binaries": self.inert,
            "test_data_binaries": self.test_data,
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
    #: Distinct layers read from the source, and taken from the per-layer cache.
    layers_read: int = 0
    layers_cached: int = 0

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
            "layers_read": self.layers_read,
            "layers_cached": self.layers_cached,
            "elapsed_seconds": round(self.elapsed, 3),
        }
