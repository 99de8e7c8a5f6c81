"""gzip layers inflated as Go's gzip reader (containerd, BuildKit) reads them, with
ISA-L's decompressor and with zlib's (where no isal wheel exists): the same bytes, the
same errors, for any chunking."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator

import pytest

from polyarch.checks import stream

DATA = os.urandom(50_000) + b"text " * 200_000  # past one piece handed out (256 KiB)


@pytest.fixture(params=["isal", "zlib"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "zlib":
        monkeypatch.setattr(stream, "_igzip", None)
    elif stream._igzip is None:
        pytest.skip("no isal wheel here")
    yield request.param


def inflate(blob: bytes, size: int) -> bytes:
    kind, out = stream.decompress(iter([blob[i:i + size] for i in range(0, len(blob), size)]))
    assert kind == "gzip"
    return b"".join(out)


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_members_in_any_chunks(impl: str, size: int) -> None:
    data = DATA if size > 1 else DATA[:3000]  # (byte by byte: a short one)
    third = len(data) // 3
    assert inflate(gzip.compress(data[:third]) + gzip.compress(data[third:]), size) == data


@pytest.mark.parametrize("cut", [-1, -5, -9, 100])
def test_a_cut_stream_is_truncated(impl: str, cut: int) -> None:
    blob = gzip.compress(DATA)
    with pytest.raises(stream.LayerFormatError, match="truncated"):
        inflate(blob[:cut], 4096)


@pytest.mark.parametrize("where", [-8, -1])  # the CRC-32, the length
def test_a_wrong_trailer_is_corrupt(impl: str, where: int) -> None:
    blob = bytearray(gzip.compress(DATA))
    blob[where] ^= 0x01
    with pytest.raises(stream.LayerFormatError, match="corrupt"):
        inflate(bytes(blob), 4096)


def test_bytes_after_the_last_member_are_corrupt(impl: str) -> None:
    with pytest.raises(stream.LayerFormatError, match="corrupt"):
        inflate(gzip.compress(DATA) + b"\0" * 10, 4096)
