"""In-toto statements (provenance, SBOM): token formats anywhere in them, and build
arguments or build-step environments with a secret under a secret-looking name."""

from __future__ import annotations

import json
from typing import Any

from polyarch.checks.secrets import scan_statement, statement_name

NPM = "npm_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"  # made up, npm's format
PLAIN = "Vq7pL2xR9sKd"  # a secret without a recognisable format


def provenance(args: dict[str, str], env: list[str]) -> dict[str, Any]:
    # The fields BuildKit 0.13's mode=max provenance (SLSA v0.2) has them in: the
    # invocation's build arguments, and each exec step's environment in the LLB.
    return {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [],
        "predicate": {
            "buildType": "https://mobyproject.org/buildkit@v1",
            "invocation": {"parameters": {"frontend": "dockerfile.v0",
                                          "args": {f"build-arg:{k}": v for k, v in args.items()}}},
            "buildConfig": {"llbDefinition": [
                {"id": "step2", "op": {"Op": {"exec": {"meta": {
                    "args": ["/bin/sh", "-c", "npm ci"],
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", *env]}}}}}]},
        },
    }


def chunks(doc: Any, size: int = 100) -> list[bytes]:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def test_build_argument_token_in_provenance() -> None:
    hits = scan_statement(chunks(provenance({"NPM_TOKEN": NPM}, [f"NPM_TOKEN={NPM}"])))
    assert [(h.kind, h.where, h.severity) for h in hits] == [
        ("npm access token", "build argument NPM_TOKEN", "error")]
    assert "--secret id=NPM_TOKEN" in hits[0].describe()
    assert NPM not in hits[0].describe() and NPM[4:] not in hits[0].describe()


def test_secret_named_value_without_a_format() -> None:
    hits = scan_statement(chunks(provenance({"DB_PASSWORD": PLAIN, "VERSION": "1.2.3"},
                                            [f"SIGNING_KEY={PLAIN}x"])))
    assert sorted((h.kind, h.where) for h in hits) == [
        ("build argument recorded in the attestation", "build argument DB_PASSWORD"),
        ("secret in a build step's environment", "environment of a build step, SIGNING_KEY")]
    assert PLAIN not in " ".join(h.describe() for h in hits)


def test_provenance_and_sbom_without_secrets_have_no_findings() -> None:
    assert scan_statement(chunks(provenance({"VERSION": "1.2.3", "NODE_ENV": "production"},
                                            ["HOME=/root"]))) == []
    sbom = {"_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "predicate": {"spdxVersion": "SPDX-2.3", "packages": [
                {"name": "express", "versionInfo": "4.21.2",
                 "externalRefs": [{"referenceLocator": "pkg:npm/express@4.21.2"}]}]}}
    assert scan_statement(chunks(sbom)) == []


def test_token_in_a_statement_too_large_to_parse_is_still_found() -> None:
    from polyarch.checks.secrets import attest

    filler = [b'{"predicate": {"files": ["' + b"x" * 1_000_000]
    body = filler * (attest.MAX_PARSE // 1_000_000 + 1)
    hits = scan_statement([*body, f'", "token: {NPM}"]}}}}'.encode()])
    assert [h.kind for h in hits] == ["npm access token"]


def test_nesting_deeper_than_recursion() -> None:
    deep = b'{"a":' * 100_000 + b'"x"' + b"}" * 100_000
    assert scan_statement([deep]) == []


def test_statements_named_by_predicate_type() -> None:
    assert statement_name("https://slsa.dev/provenance/v0.2") == "provenance"
    assert statement_name("https://slsa.dev/provenance/v1") == "provenance"
    assert statement_name("https://spdx.dev/Document") == "SBOM"
    assert statement_name("https://cyclonedx.org/bom") == "SBOM"
    assert statement_name("https://example.com/custom") == "in-toto"
