"""What a registry (or docker's config.json) hands the registry client's parsers: JSON
nested past any parser's depth, bytes that are not UTF-8, challenges with huge realms,
bodies that never end or expand when decoded. Each parser either accepts the input or
raises the error the CLI maps to a documented exit code (ValueError where a caller turns
it into one, RegistryError otherwise); never RecursionError, MemoryError or anything
else. The behaviour against a real registry is in tests/engine/registry/test_hostile.py.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st

from polyarch.errors import RegistryError
from polyarch.registry.auth import Authenticator, parse_challenge
from polyarch.registry.bounded import Deadline, GuardedStream, _Decoder
from polyarch.registry.credentials import DockerConfig
from polyarch.registry.media import Manifest, load_json

from .conftest import LeftTheProcess

openers = st.sampled_from(["[", '{"a":', '{"manifests":[', '{"auths":{"h":', " [", "[1,"])


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """JSON-ish text nested ``depth`` deep, closed or not, with a tail."""
    opener = draw(openers)
    depth = draw(st.integers(1, 150_000))
    closed = draw(st.booleans())
    closer = {"[": "]", '{"a":': "}", '{"manifests":[': "]}", '{"auths":{"h":': "}}",
              " [": "]", "[1,": "]"}[opener]
    body = opener * depth + "1" + (closer * depth if closed else "")
    return (body + draw(st.sampled_from(["", "\n", "x", "\xff"]))).encode("utf-8", "replace")


raw_bytes = nested() | st.binary(max_size=2000) | st.sampled_from(
    [b"\xff\xfe{", b"\xc3\x28", b'{"a": "\xed\xa0\x80"}', b"{}", b"[]", b"null"])


@given(data=raw_bytes)
def test_load_json_raises_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        load_json(data)


@given(data=raw_bytes, media_type=st.sampled_from([None, "", "application/x-unknown"]))
def test_a_manifest_of_any_bytes_is_built_and_its_json_fails_cleanly(
        data: bytes, media_type: str | None) -> None:
    man = Manifest.from_bytes(data, media_type)
    assert man.digest.startswith("sha256:")
    try:
        doc = man.json
    except ValueError:
        return
    assert isinstance(doc, dict)


realm_hosts = st.sampled_from(["http://127.0.0.1:1/token", "https://auth.example/t", "ftp://x",
                               "", "http://", "token", "https://a/" + "a" * 100_000])
challenges = st.builds(
    lambda scheme, realm, extra: f'{scheme} realm="{realm}"{extra}',
    st.sampled_from(["Bearer", "bearer", "Basic", "Digest", "", "Bearer  "]), realm_hosts,
    st.sampled_from(["", ',service="s"', ',scope="repository:a:pull"', ",,,", ', x="\\"',
                     "," + "k=v," * 5000])) | st.text(max_size=3000)


@given(header=challenges)
def test_parse_challenge_is_total(header: str) -> None:
    ch = parse_challenge(header)
    assert ch is None or ch.scheme in ("bearer", "basic")


@given(data=raw_bytes | st.builds(lambda t: b'{"token":"' + t + b'"}',
                                   st.binary(max_size=200) | st.just(b"a" * 70_000)),
       status=st.sampled_from([200, 401, 403, 500]))
def test_token_answers_parse_or_fail_as_registry_errors(data: bytes, status: int) -> None:
    resp = httpx.Response(status, content=data)
    try:
        doc = Authenticator._token_doc("r.example", resp, None)
    except RegistryError as e:
        assert "\n" not in e.message
        return
    assert isinstance(doc, dict)


@given(data=raw_bytes | st.builds(
    lambda d: ('{"auths":{"h":{"auth":"' + d + '"}}}').encode(), st.text(max_size=50)))
def test_docker_config_json_of_any_bytes(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_bytes(data)
        try:
            DockerConfig(Path(d)).credentials("h")
        except RegistryError as e:
            assert "\n" not in e.message
        except LeftTheProcess:
            pass  # a credential helper named: the real run would start it


def _stream(chunks: list[bytes], limit: int | None, encoding: str | None = None,
            ) -> Iterator[bytes]:
    class Chunks(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            return iter(chunks)

    return iter(GuardedStream(Chunks(), host="r", what="GET x", limit=limit,
                              deadline=Deadline(60.0),
                              decoder=_Decoder(encoding) if encoding else None))


@given(sizes=st.lists(st.integers(0, 70_000), max_size=40), limit=st.integers(0, 300_000))
def test_a_body_never_passes_its_limit(sizes: list[int], limit: int) -> None:
    chunks = [b"x" * n for n in sizes]
    got = 0
    try:
        for chunk in _stream(chunks, limit):
            got += len(chunk)
            assert got <= limit
    except RegistryError as e:
        assert f"larger than {limit} bytes" in e.message
        assert sum(sizes) > limit
        return
    assert got == sum(sizes) <= limit


@given(expanded=st.integers(0, 12_000_000), limit=st.integers(1, 4 * 1024 * 1024),
       encoding=st.sampled_from(["gzip", "deflate"]), split=st.integers(1, 70_000))
def test_a_compressed_body_is_decoded_in_bounded_steps(expanded: int, limit: int,
                                                       encoding: str, split: int) -> None:
    raw = b"\0" * expanded
    packed = gzip.compress(raw, 9) if encoding == "gzip" else zlib.compress(raw, 9)
    chunks = [packed[i:i + split] for i in range(0, len(packed), split)]
    got = 0
    try:
        for chunk in _stream(chunks, limit, encoding):
            assert len(chunk) <= 64 * 1024
            got += len(chunk)
    except RegistryError as e:
        assert expanded > limit and "larger than" in e.message
        assert got <= limit
        return
    assert got == expanded <= limit


@given(data=st.binary(max_size=3000), encoding=st.sampled_from(["gzip", "deflate"]))
def test_garbage_that_claims_an_encoding_is_a_registry_error(data: bytes, encoding: str) -> None:
    try:
        b"".join(_stream([data], 4 * 1024 * 1024, encoding))
    except RegistryError as e:
        assert "\n" not in e.message
