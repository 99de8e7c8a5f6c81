"""The content scanner's contract: any chunking gives the same findings, memory stays
bounded, values never appear in a finding."""

from __future__ import annotations

import pytest

from polyarch.checks.secrets import ContentScanner, SecretHit, content, scan_bytes, skip_by_magic

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
        assert len(s._tail) <= content.OVERLAP + content.LOOKBACK
        assert s._pending_len < content.BLOCK
    assert s.finish() == []


@pytest.mark.parametrize("head,skip", [
    (b"\x7fELF\x02\x01\x01", True), (b"\x89PNG\r\n\x1a\n", True), (b"\xff\xd8\xff\xe0", True),
    (b"\x1f\x8b\x08\x00", True), (b"PK\x03\x04", True), (b"wOF2", True),
    (b"#!/bin/sh\n", False), (b"{\"type\": \"service_account\"", False),
    (b"SQLite format 3\x00", False), (b"-----BEGIN", False), (b"", False),
])
def test_skip_by_magic(head: bytes, skip: bool) -> None:
    assert skip_by_magic(head) is skip
