"""The content scanner's contract: any chunking gives the same findings, memory stays
bounded, values never appear in a finding."""

from __future__ import annotations

import pytest

from polyarch.checks.secrets import (
    ContentScanner,
    SecretHit,
    content,
    kinds,
    matches,
    scan_bytes,
    skip_by_magic,
)

# Made-up tokens in the issuers' formats (not real credentials).
GHP = "ghp_" + "R8vKq2LmX4tZ9wNc7YbH3jP6sD1fG5aE0uTo"
NPM = "npm_" + "Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"


def scan_in_chunks(path: str, data: bytes, size: int) -> list[SecretHit]:
    s = ContentScanner(path)
    for i in range(0, len(data), size):
        s.feed(data[i:i + size])
    return s.finish()


def text_with_tokens(lines: int = 20000) -> bytes:
    filler = b"name: value with words like token and password\n" * lines
    return filler + f"github:\n  token: {GHP}\n".encode() + filler + f"npm: {NPM}\n".encode()


@pytest.mark.parametrize("size", [1, 7, 513, 4096, content.BLOCK - 1, content.BLOCK + 3, 10**8])
def test_any_chunking_same_findings(size: int) -> None:
    # Byte by byte on a shorter text that still spans two blocks.
    data = text_with_tokens(content.BLOCK // 48 // 2 + 100 if size == 1 else 20000)
    hits = scan_in_chunks("/app/config.yaml", data, size)
    assert [h.kind for h in hits][-2:] == ["GitHub token", "npm access token"]
    whole = scan_bytes("/app/config.yaml", data)
    assert [(h.kind, h.line) for h in hits] == [(h.kind, h.line) for h in whole]


def test_token_straddling_every_boundary_found_once() -> None:
    for cut in range(1, len(GHP)):
        data = b"a: " + GHP.encode() + b"\n"
        s = ContentScanner("/app/x.yaml")
        s.feed(data[:3 + cut])
        s.feed(data[3 + cut:])
        hits = s.finish()
        assert [(h.kind, h.line) for h in hits] == [("GitHub token", 1)], cut


def test_line_numbers_and_no_values() -> None:
    data = b"\n" * 41 + GHP.encode() + b"\n"
    (hit,) = scan_bytes("/app/config.yaml", data)
    assert hit.line == 42 and hit.where == "line 42"
    assert GHP not in hit.describe() and GHP[4:12] not in hit.describe()
    assert hit.fingerprint == "ghp_…(40 chars)"


def test_memory_is_bounded() -> None:
    s = ContentScanner("/big.txt")
    chunk = b"ordinary words and more words\n" * 2000
    for _ in range(200):  # 12 MB
        s.feed(chunk)
        assert len(s._tail) <= content.OVERLAP + matches.LOOKBACK
        assert s._pending_len < content.BLOCK
    assert s.finish() == []


@pytest.mark.parametrize("head,skip", [
    (b"\x7fELF\x02\x01\x01", True), (b"\x89PNG\r\n\x1a\n", True), (b"\xff\xd8\xff\xe0", True),
    (b"\x1f\x8b\x08\x00", True), (b"PK\x03\x04", True), (b"wOF2", True),
    (b"#!/bin/sh\n", False), (b"{\"type\": \"service_account\"", False),
    (b"SQLite format 3\x00", False), (b"-----BEGIN", False), (b"", False),
    (b"BZh91AY&SY", True), (b"BZh is not bzip2", False),
])
def test_skip_by_magic(head: bytes, skip: bool) -> None:
    assert skip_by_magic(head) is skip


@pytest.mark.parametrize("path,wanted", [
    ("/app/config.yaml", True),
    ("/app/src/index.js", True),
    ("/app/node_modules/lodash/lodash.js", False),
    ("/usr/lib/python3/dist-packages/yaml/reader.py", False),
    ("/usr/local/go/src/crypto/tls/testdata/example-key.pem", True),  # a .pem: name rule
    ("/usr/share/doc/git/README", False),
    # Install records keep the URL a package came from, credentials included.
    ("/app/node_modules/private-lib/package.json", True),
    ("/app/node_modules/.package-lock.json", True),
    ("/app/node_modules/git-dep/.git/config", True),
    ("/usr/local/lib/python3.12/site-packages/acme-1.0.dist-info/direct_url.json", True),
    ("/app/node_modules/x/.npmrc", True),
])
def test_content_scanned_in_config_and_install_records_not_package_code(path: str, wanted: bool) -> None:
    assert kinds.content_wanted(path) is wanted


def test_install_record_in_package_tree_is_an_error() -> None:
    data = (b'{"url": "https://deploy:E6FhJHp1wR0D6LwfeXfZ@git.acme.dev/acme/lib.git",'
            b' "vcs_info": {"vcs": "git"}}')
    (hit,) = scan_bytes("/usr/lib/python3/site-packages/lib-1.0.dist-info/direct_url.json", data)
    assert hit.severity == "error"
    (code,) = scan_bytes("/app/node_modules/lib/lib/defaults.json", data)
    assert code.severity == "warning"
    # In a package's documentation the same URL is an example.
    assert scan_bytes("/app/node_modules/lib/README.md", data) == []


def test_values_given_to_the_build_are_found_in_any_file() -> None:
    from polyarch import redact

    secret = "k3Jx9-plain-value-Qw7"  # no known format, stored under a harmless name
    redact.REDACTOR.clear()
    try:
        redact.register_build_args({"DEPLOY_TOKEN": secret})
        data = b"x" * 300_000 + b"\nsaved=" + secret.encode() + b"\n"
        hits = scan_in_chunks("/app/node_modules/lib/cache.txt", data, 4096)
        assert [(h.kind, h.line, h.severity) for h in hits] == [
            ("value of a secret given to this build", 2, "error")]
        assert secret not in hits[0].describe() and hits[0].fingerprint == "…(21 chars)"
    finally:
        redact.REDACTOR.clear()
    assert scan_bytes("/app/cache.txt", data) == []


JWT = ("eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiY2ktZGVwbG95ZXIiLCAiZXhwIjogMTkyNDk5"
       "MjAwMH0.HNfyuLLKTrXyb92TvdwOsudoaViVMBtFqnP-njWHMpS")


@pytest.mark.parametrize("size", [97, 10**8])
def test_warnings_never_hide_an_error(size: int) -> None:
    # 25 JWT warnings, then a GitHub token: the cap on findings keeps the error.
    data = "".join(f"jwt{i}: {JWT}\n" for i in range(25)).encode() + f"gh: {GHP}\n".encode()
    hits = scan_in_chunks("/app/config.yaml", data, size)
    assert len(hits) == content.MAX_HITS
    assert [(h.kind, h.line) for h in hits if h.severity == "error"] == [("GitHub token", 26)]
    assert sum(h.kind == "JSON Web Token" for h in hits) == content.MAX_HITS - 1


def test_errors_are_capped_too() -> None:
    data = "".join(f"gh{i}: {GHP}\n" for i in range(40)).encode()
    hits = scan_bytes("/app/config.yaml", data)
    assert len(hits) == content.MAX_HITS and {h.severity for h in hits} == {"error"}


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_is_scanned_with_or_without_bom(codec: str) -> None:
    # PowerShell and Windows tools write UTF-16, with a byte-order mark ("utf-16") or
    # without one.
    text = f"# settings\r\n$env:GH = '{GHP}'\r\n"
    data = text.encode(codec)
    for size in (3, 4096):
        hits = scan_in_chunks("/app/deploy.ps1", data, size)
        assert [(h.kind, h.line) for h in hits] == [("GitHub token", 2)], (codec, size)


def test_binary_holds_an_embedded_token() -> None:
    # What `go build -ldflags "-X main.token=ghp_..."` leaves in .rodata: the string
    # between other strings, no line structure. An ELF header makes it a binary.
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 57
    rodata = b"\0runtime.main\0" + GHP.encode() + b"\0net/http\0"
    noise = (b"\0see https://tester:Wq8zKk3pLm2x@proxy.acme.dev/ and " + JWT.encode()
             + b"\0")
    data = elf + bytes(range(256)) * 3000 + rodata + noise + bytes(range(256)) * 10 + rodata
    hits = scan_in_chunks("/usr/local/bin/app", data, 65536)
    assert [(h.kind, h.severity, h.where) for h in hits] == [
        ("GitHub token", "error", "in the binary's strings")]
    assert GHP not in hits[0].describe()


def test_self_test_keys_of_a_shared_library_are_not_findings() -> None:
    # libgnutls.so.30 (Debian 12's libgnutls30 3.7.9) holds PEM private keys for its FIPS
    # self-tests; an executable with a key compiled in still fails.
    key = (b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
           b"\n-----END PRIVATE KEY-----\n")
    data = b"\x7fELF\x02\x01\x01" + b"\0" * 57 + b"\0" * 4000 + key + b"\0" * 100
    assert scan_bytes("/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3", data) == []
    (hit,) = scan_bytes("/usr/local/bin/server", data)
    assert hit.kind.startswith("private key") and hit.severity == "error"


VAULT = ("hvs.CAESIwDBofCsK54UxT82d_6aavlFyWjCz1Y_ZvhV96cBqwLpcg9diiCFscx8eo--DFORIHfEr92Lq5Si"
         "RCcMS2ChE9p")  # made up, Vault's service token format


@pytest.mark.parametrize("path,found", [
    ("/app/config/vault.hcl", True), ("/etc/profile.d/vault.sh", True),
    ("/usr/local/bin/deploy", True), ("/root/.bashrc", True),
    # Where a scan of its own costs most and a finding would say least: installed
    # package trees and the distribution's /usr.
    ("/app/node_modules/vault-client/README.txt", False),
    ("/usr/share/doc/vault/examples.txt", False),
])
def test_vault_tokens_where_the_builders_files_are(path: str, found: bool) -> None:
    hits = scan_bytes(path, f"token = {VAULT}\n".encode())
    assert [h.kind for h in hits] == (["HashiCorp Vault token"] if found else [])
