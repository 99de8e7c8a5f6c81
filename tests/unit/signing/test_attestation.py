"""The verification predicate and the unsigned attestation's artifact manifest."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from polyarch import redact
from polyarch.checks.report import Finding, PlatformResult, VerifyReport
from polyarch.signing import attestation
from polyarch.signing.check import _subject_names, describe

INDEX = "sha256:" + "1" * 64
AMD = "sha256:" + "2" * 64
ARM = "sha256:" + "3" * 64


def report() -> VerifyReport:
    amd = PlatformResult("linux/amd64", AMD, ran={"coverage", "labels", "binaries", "secrets",
                                                  "smoke"}, smoke_output="app 1.2.3")
    amd.findings.append(Finding("binaries", "info", "x86-64 binary in an arm64 prebuild dir"
                                " (allowed by */prebuilds/*)", "app/prebuilds/arm64/x.node",
                                "sha256:" + "9" * 64, "wrong-machine"))
    arm = PlatformResult("linux/arm64", ARM, ran={"coverage", "labels", "binaries", "secrets"})
    arm.findings.append(Finding("secrets", "warning", "private key (fingerprint"
                                " SHA256:ab12...)", "etc/ssl/k.pem", None, "private-key"))
    return VerifyReport("reg/app:1", INDEX, "application/vnd.oci.image.index.v1+json",
                        ["linux/amd64", "linux/arm64"], True, "app --version", [amd, arm])


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_predicate_records_checks_findings_allowances_and_smoke_output() -> None:
    pred = attestation.predicate(report(), ["*/prebuilds/*"], now=NOW)
    assert pred["verifier"]["name"] == "polyarch"
    assert pred["verifiedAt"] == "2026-01-02T03:04:05Z"
    assert pred["result"] == "pass"
    assert pred["index"]["digest"] == INDEX
    assert pred["allow"] == ["*/prebuilds/*"]
    assert pred["smoke"] == {"command": "app --version"}
    amd, arm = pred["platforms"]
    assert amd["digest"] == AMD and amd["smokeOutput"] == "app 1.2.3"
    assert amd["checks"] == {"coverage": "pass", "labels": "pass", "binaries": "pass",
                             "secrets": "pass", "smoke": "pass"}
    assert amd["findings"] == [{
        "check": "binaries", "severity": "note", "kind": "wrong-machine",
        "path": "app/prebuilds/arm64/x.node", "layer": "sha256:" + "9" * 64,
        "message": "x86-64 binary in an arm64 prebuild dir", "allowedBy": "*/prebuilds/*"}]
    assert arm["checks"]["smoke"] == "skipped" and arm["checks"]["secrets"] == "warn"
    assert arm["findings"][0]["allowedBy"] is None
    json.dumps(pred)  # JSON as it is


def test_the_predicate_carries_no_registered_secret_value() -> None:
    r = report()
    r.platforms[1].findings.append(Finding("secrets", "error", "token s3cr3t-value-42 found",
                                           "root/.npmrc"))
    redact.register(["s3cr3t-value-42"])
    try:
        pred = attestation.predicate(r, [], now=NOW)
    finally:
        redact.REDACTOR.clear()
    assert "s3cr3t-value-42" not in json.dumps(pred)
    assert pred["result"] == "fail"


def test_the_unsigned_statement_names_the_index_and_every_platform() -> None:
    pred = attestation.predicate(report(), [], now=NOW)
    stmt = attestation.statement(pred, "reg/app")
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://polyarch.dev/attestation/verification/v1"
    assert [s["digest"]["sha256"] for s in stmt["subject"]] == ["1" * 64, "2" * 64, "3" * 64]
    assert _subject_names(stmt, INDEX) and not _subject_names(stmt, "sha256:" + "4" * 64)
    assert describe(pred) == ("verified by polyarch 0.1.0 on 2026-01-02T03:04:05Z"
                              " (linux/amd64, linux/arm64)")


def test_the_artifact_manifest_is_a_referrer_of_the_index() -> None:
    stmt = attestation.statement(attestation.predicate(report(), [], now=NOW), "reg/app")
    art = attestation.artifact(stmt, INDEX, "application/vnd.oci.image.index.v1+json", 1234)
    m = json.loads(art.manifest)
    assert art.digest == "sha256:" + hashlib.sha256(art.manifest).hexdigest()
    assert m["artifactType"] == "application/vnd.in-toto+json"
    assert m["subject"] == {"mediaType": "application/vnd.oci.image.index.v1+json",
                            "digest": INDEX, "size": 1234}
    assert m["config"]["digest"] == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    (layer,) = m["layers"]
    assert layer["digest"] == "sha256:" + hashlib.sha256(art.layer).hexdigest()
    assert json.loads(art.layer) == stmt
    assert attestation.fallback_tag(INDEX) == "sha256-" + "1" * 64


def test_statements_are_read_from_cosigns_verify_attestation_output() -> None:
    stmt = {"predicateType": "https://polyarch.dev/attestation/verification/v1",
            "subject": [], "predicate": {"result": "pass"}}
    other = {"predicateType": "https://slsa.dev/provenance/v0.2", "predicate": {}}
    lines = [json.dumps({"payloadType": "application/vnd.in-toto+json",
                         "payload": base64.b64encode(json.dumps(s).encode()).decode()})
             for s in (other, stmt)]
    out = "\n".join(["Verification for ...", *lines, "{not json"])
    assert attestation.from_cosign_output(out) == [stmt]
