"""polyarch's verification attestation: what was checked, per platform, and what was
found, as an in-toto statement (schema in docs/verify.md).

The predicate is made from the verification report only. Findings carry paths, kinds
and masked fingerprints, never a secret's value; the whole document also goes through
the redactor before it leaves the machine.

Signed, it is attached by ``cosign attest`` (cosign makes the statement, its subject
the index digest). Unsigned, polyarch pushes the statement itself as an OCI artifact
manifest whose ``subject`` is the index: registries with the referrers API list it
there; for the others (the distribution registry 2.x) it is also listed in the
referrers tag schema's fallback index, tag ``sha256-HEX`` of the repository.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from polyarch import __version__, redact

if TYPE_CHECKING:
    from polyarch.checks.report import Finding, VerifyReport
    from polyarch.refs import ImageRef
    from polyarch.registry import RegistryClient

#: The predicate type of polyarch's verification attestation (docs/verify.md).
PREDICATE_TYPE = "https://polyarch.dev/attestation/verification/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
_ALLOWED = re.compile(r" \(allowed by (?P<glob>.+)\)$")
#: Severities recorded: every finding at note level and above (all of them).
SEVERITIES = ("error", "warning", "info")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _finding(f: Finding) -> dict[str, Any]:
    m = _ALLOWED.search(f.message)
    return {"check": f.check, "severity": "note" if f.severity == "info" else f.severity,
            "kind": f.kind, "path": f.path, "layer": f.layer,
            "message": f.message[:m.start()] if m else f.message,
            "allowedBy": m.group("glob") if m else None}


def predicate(report: VerifyReport, allow: Sequence[str], *,
              now: datetime | None = None) -> dict[str, Any]:
    """The predicate of ``https://polyarch.dev/attestation/verification/v1``."""
    from polyarch.checks.report import CHECKS

    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {
        "verifier": {"id": "https://polyarch.dev", "name": "polyarch", "version": __version__},
        "verifiedAt": when,
        "result": "pass" if report.ok else "fail",
        "index": {"digest": report.index_digest, "mediaType": report.media_type},
        "expectedPlatforms": list(report.expected),
        "allow": list(allow),
        "smoke": {"command": report.smoke},
        "platforms": [{
            "platform": p.platform,
            "digest": p.digest,
            "status": p.status,
            "checks": {c: p.check_status(c) for c in CHECKS},
            "layers": p.layers,
            "filesChecked": p.files_checked,
            "smokeOutput": p.smoke_output,
            "findings": [_finding(f) for f in p.findings if f.severity in SEVERITIES],
        } for p in report.platforms],
        "findings": [_finding(f) for f in report.findings if f.severity in SEVERITIES],
    }
    masked: dict[str, Any] = redact.data(doc)
    return masked


def statement(pred: dict[str, Any], repository: str) -> dict[str, Any]:
    """The in-toto statement of the unsigned form: its subjects are the index and every
    platform's manifest."""
    subjects = [{"name": repository, "digest": _hex(pred["index"]["digest"])}]
    subjects += [{"name": f"{repository} ({p['platform']})", "digest": _hex(p["digest"])}
                 for p in pred["platforms"] if p.get("digest")]
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": pred}


def _hex(digest: str) -> dict[str, str]:
    algo, _, value = digest.partition(":")
    return {algo: value}


@dataclass(frozen=True)
class Artifact:
    """The unsigned attestation as an OCI artifact manifest, and its one layer."""

    manifest: bytes
    digest: str
    layer: bytes


def artifact(stmt: dict[str, Any], subject_digest: str, subject_media_type: str,
             subject_size: int) -> Artifact:
    layer = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO,
        "config": {"mediaType": EMPTY, "digest": _digest(EMPTY_DATA), "size": 2},
        "layers": [{"mediaType": IN_TOTO, "digest": _digest(layer), "size": len(layer),
                    "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE}}],
        "subject": {"mediaType": subject_media_type, "digest": subject_digest,
                    "size": subject_size},
        "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE,
                        "org.opencontainers.image.created": stmt["predicate"]["verifiedAt"]},
    }
    data = json.dumps(m, separators=(",", ":")).encode()
    return Artifact(data, _digest(data), layer)


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``sha256-HEX``."""
    return digest.replace(":", "-")


def push_unsigned(client: RegistryClient, repo: ImageRef, art: Artifact) -> None:
    """Push the artifact by digest, then list it in the fallback index of its subject
    (kept: the referrers it already lists stay)."""
    from polyarch.errors import RegistryError

    client.upload_blob(repo, _digest(EMPTY_DATA), EMPTY_DATA)
    client.upload_blob(repo, _digest(art.layer), art.layer)
    client.put_manifest(repo.with_digest(art.digest), art.manifest, OCI_MANIFEST)
    subject = json.loads(art.manifest)["subject"]["digest"]
    tag = repo.with_tag(fallback_tag(subject))
    entries: list[dict[str, Any]] = []
    try:
        if client.head_manifest(tag) is not None:
            entries = list(json.loads(client.get_manifest(tag).data).get("manifests") or [])
    except (RegistryError, ValueError, AttributeError):
        entries = []
    entries = [e for e in entries if isinstance(e, dict) and e.get("digest") != art.digest]
    entries.append({"mediaType": OCI_MANIFEST, "digest": art.digest, "size": len(art.manifest),
                    "artifactType": IN_TOTO,
                    "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                       separators=(",", ":")).encode()
    client.put_manifest(tag, index, OCI_INDEX)


def find_unsigned(client: RegistryClient, repo: ImageRef,
                  digest: str) -> list[dict[str, Any]]:
    """The verification statements attached unsigned to ``digest`` (referrers tag schema
    fallback index), newest last. Statements whose subject is not ``digest`` are left
    out: they are about another image."""
    from polyarch.errors import RegistryError

    tag = repo.with_tag(fallback_tag(digest))
    try:
        if client.head_manifest(tag) is None:
            return []
        entries = json.loads(client.get_manifest(tag).data).get("manifests") or []
    except (RegistryError, ValueError, AttributeError):
        return []
    out: list[dict[str, Any]] = []
    for e in entries[-20:]:  # bounded: the newest twenty
        if not isinstance(e, dict) or e.get("artifactType") != IN_TOTO:
            continue
        try:
            m = json.loads(client.get_manifest(repo.with_digest(str(e["digest"]))).data)
            if (m.get("subject") or {}).get("digest") != digest:
                continue
            layer = m["layers"][0]
            if int(layer.get("size", 0)) > 4 << 20:
                continue
            stmt = json.loads(client.get_blob(repo, str(layer["digest"])))
        except (RegistryError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            continue
        if stmt.get("predicateType") == PREDICATE_TYPE and any(
                s.get("digest", {}).get("sha256") == digest.removeprefix("sha256:")
                for s in stmt.get("subject") or [] if isinstance(s, dict)):
            out.append(stmt)
    return out


def from_cosign_output(stdout: str) -> list[dict[str, Any]]:
    """The statements ``cosign verify-attestation --output=json`` printed (one DSSE
    envelope per line, the statement base64 in ``payload``)."""
    import base64

    out: list[dict[str, Any]] = []
    for line in stdout.splitlines()[:100]:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            env = json.loads(line)
            stmt = json.loads(base64.b64decode(env["payload"]))
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(stmt, dict) and stmt.get("predicateType") == PREDICATE_TYPE:
            out.append(stmt)
    return out
