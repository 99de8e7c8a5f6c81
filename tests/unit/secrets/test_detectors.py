"""Content detectors on real and made-up material (sources in data/README.md): every
issuer format is found, documentation and lockfiles are not, values never shown."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from polyarch.checks.secrets import ContentScanner, SecretHit, is_candidate, scan_bytes

DATA = Path(__file__).parent / "data"
CASES: list[dict[str, Any]] = tomllib.loads((DATA / "vectors.toml").read_text())["case"]


def no_values(hits: list[SecretHit], text: bytes) -> None:
    words = text.replace(b"=", b" ").replace(b":", b" ").replace(b"'", b" ").split()
    for h in hits:
        shown = h.describe().encode()
        for w in words:
            if len(w) >= 16:
                assert w not in shown, (w, shown)


@pytest.mark.parametrize("case", CASES, ids=[c["source"][:60] for c in CASES])
def test_detector_vectors_find_their_kinds_without_values(case: dict[str, Any]) -> None:
    data = case["text"].encode()
    hits = scan_bytes(case["path"], data)
    assert sorted({h.kind for h in hits}) == sorted(set(case["kinds"])), [
        h.describe() for h in hits]
    for h in hits:
        assert h.severity == case.get("severity", "error")
    no_values(hits, data)


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "clean").iterdir()))
def test_real_files_without_secrets(name: str) -> None:
    data = (DATA / "clean" / name).read_bytes()
    # Where an image has them: in the application, not in a vendored tree.
    assert scan_bytes(f"/app/{name}", data) == []


def test_a_deploy_key_file_is_a_private_ssh_key() -> None:
    data = (DATA / "found" / "deploy_key").read_bytes()
    (hit,) = scan_bytes("/app/deploy_key", data)
    assert (hit.kind, hit.severity, hit.line) == ("private SSH key", "error", 1)


def test_gcp_key_under_its_download_name() -> None:
    name = "project-123abc-0123456789ab.json"
    assert is_candidate(f"/app/{name}")
    data = (DATA / "found" / name).read_bytes()
    hits = scan_bytes(f"/app/{name}", data)
    assert [(h.kind, h.line, h.severity) for h in hits] == [
        ("Google Cloud service account key", 6, "error")]
    no_values(hits, data)


def test_kubeadm_admin_conf() -> None:
    path = "/etc/kubernetes/admin.conf"
    assert is_candidate(path)
    data = (DATA / "found" / "admin.conf").read_bytes()
    hits = scan_bytes(path, data)
    assert len(hits) == 1 and hits[0].severity == "error"
    assert hits[0].line == data.split(b"client-key-data")[0].count(b"\n") + 1
    no_values(hits, data)


def test_tls_key_under_etc_ssl_private_is_an_error() -> None:
    key = (b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
           b"-----END PRIVATE KEY-----\n")
    (hit,) = scan_bytes("/etc/ssl/private/server.key", key)
    assert hit.severity == "error" and hit.kind.startswith("private key")
    # The same key in a package's test fixtures is a warning.
    (vendored,) = scan_bytes("/usr/lib/node_modules/x/test/fixtures/server.key", key)
    assert vendored.severity == "warning"


def test_env_file_over_one_mebibyte() -> None:
    filler = b"".join(b"FEATURE_%d=on\n" % i for i in range(120_000))
    data = filler + b"DATABASE_PASSWORD=Vq7#pL2!xR9s\n"
    assert len(data) > 1 << 20
    s = ContentScanner("/app/.env")
    for i in range(0, len(data), 65536):
        s.feed(data[i:i + 65536])
    hits = s.finish()
    assert [(h.kind, h.line) for h in hits] == [("secret in .env file", 120_001)]
    assert "DATABASE_PASSWORD" in hits[0].where and b"Vq7" not in hits[0].describe().encode()


def test_name_rules_still_apply_and_are_not_doubled() -> None:
    data = b"//registry.npmjs.org/:_authToken=npm_qSFDGX0FZBJQ6c1suD6ZgCSTY9GqC79l9B1U\n"
    hits = scan_bytes("/root/.npmrc", data)
    assert len(hits) == 1 and hits[0].line == 1


def test_npmrc_content_under_any_name() -> None:
    # What a hard link named .npmrc points at, or a copy under another name: the
    # content rule finds the auth line whatever the file is called.
    data = b"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=6f1e9c2a-4b7d-4e8f-9a3c-2d5b8e7f1a90\n"
    (hit,) = scan_bytes("/app/.cache/blob-1234", data)
    assert (hit.kind, hit.line, hit.severity) == ("npm auth token (.npmrc line)", 2, "error")


def test_every_format_has_a_vector() -> None:
    from polyarch.checks.secrets import formats

    expected = {k for c in CASES for k in c["kinds"]}
    found_files = {"private key", "private key (base64 PEM)", "Google Cloud service account key"}
    for f in formats.FORMATS:
        assert f.kind in expected or f.kind in found_files, f.name
        # The anchor gate lets the format's own preceding byte through (a longer
        # anchor is the whole fixed prefix and needs none).
        assert f.before or len(f.anchor) > 1, f.name


def test_image_references_are_not_urls_with_passwords() -> None:
    """BuildKit's provenance records a named context as oci-layout://NAME:TAG@sha256:...;
    NAME:TAG@ is not user:password@ (seen on a real base-and-service project build)."""
    digest = "sha256:" + "b0" * 32
    for ref in (f"oci-layout://base:latest@{digest}", f"docker-image://app:v1.2@{digest}",
                f"https://registry.example/app:tag@{digest}"):
        assert scan_bytes("/app/config.json", f'{{"ref": "{ref}"}}\n'.encode()) == [], ref
    # A real login in a URL is still one.
    hits = scan_bytes("/app/config.json", b'{"db": "https://admin:Vq7pL2xR9s@db.internal/x"}\n')
    assert [h.kind for h in hits] == ["password in a URL"]
