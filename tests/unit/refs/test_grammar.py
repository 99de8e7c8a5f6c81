"""Image references: the distribution grammar, ports 1-65535, no control characters."""

import pytest

from polyarch.refs import ReferenceError, check_digest, check_tag, parse_ref


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("localhost:5000/a/b:1.2", "localhost:5000", "a/b", "1.2", None),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000", "x", "1", None),
        ("ghcr.io/o/r", "ghcr.io", "o/r", "latest", None),
        ("name", "docker.io", "library/name", "latest", None),
        ("user/name:tag", "docker.io", "user/name", "tag", None),
        ("docker.io/name", "docker.io", "library/name", "latest", None),
        ("index.docker.io/library/name:1", "docker.io", "library/name", "1", None),
        ("us-docker.pkg.dev/proj/repo/sandbox:0.56.0", "us-docker.pkg.dev", "proj/repo/sandbox",
         "0.56.0", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("a/b@sha256:" + "a" * 64, "docker.io", "a/b", None, "sha256:" + "a" * 64),
        ("r.io:443/a/b:t@sha256:" + "b" * 64, "r.io:443", "a/b", "t", "sha256:" + "b" * 64),
        ("my-registry.example.com/team__x/app-name.v2:v1.0_rc-1", "my-registry.example.com",
         "team__x/app-name.v2", "v1.0_rc-1", None),
    ],
)
def test_reference_splits_into_registry_repository_tag_digest(text: str, registry: str, repository: str,
                                                              tag: str | None, digest: str | None) -> None:
    r = parse_ref(text)
    assert (r.registry, r.repository, r.tag, r.digest) == (registry, repository, tag, digest)


def test_reference_prints_in_full_form() -> None:
    assert str(parse_ref("localhost:5000/a/b:1.2")) == "localhost:5000/a/b:1.2"
    assert str(parse_ref("name")) == "docker.io/library/name:latest"


def test_api_host_and_loopback() -> None:
    assert parse_ref("name").api_host == "registry-1.docker.io"
    assert parse_ref("ghcr.io/a/b").api_host == "ghcr.io"
    assert parse_ref("127.0.0.1:5000/a").is_loopback
    assert parse_ref("localhost:5000/a").is_loopback
    assert not parse_ref("ghcr.io/a").is_loopback


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("localhost:5000/App:1", "must be lower case"),
        ("a/b:bad/tag", "invalid"),
        ("a/b:-tag", "invalid tag"),
        ("a/b:" + "x" * 129, "invalid tag"),
        ("a//b", "empty repository path component"),
        ("a/b@sha256:123", "invalid digest"),
        ("https://ghcr.io/a/b", "drop the scheme"),
        ("a/b-", "invalid repository component"),
        ("", "empty"),
        ("a/b:", "invalid tag"),
        # A port outside 1-65535 would wrap (70618 is 5082 modulo 65536) and reach
        # another registry.
        ("127.0.0.1:70618/x:1", "port 70618 is not in 1-65535"),
        ("127.0.0.1:65536/x:1", "port 65536 is not in 1-65535"),
        ("localhost:0/x", "port 0 is not in 1-65535"),
        ("[::1]:99999/x", "port 99999 is not in 1-65535"),
        ("127.0.0.1:5000/a/b:1\nx", "newlines or other control characters"),
        ("127.0.0.1:5000\n/a/b:1", "newlines or other control characters"),
        ("a/b\n:1", "newlines or other control characters"),
        ("a/b:1\x00", "newlines or other control characters"),
        ("a/b:1\x1b[31m", "newlines or other control characters"),
        ("a/b:bad tag", "invalid tag"),
    ],
)
def test_invalid_references_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ReferenceError, match=reason):
        parse_ref(text)


@pytest.mark.parametrize("text", ["127.0.0.1:1/x", "127.0.0.1:65535/x", "[::1]:5000/x",
                                  "r.io:0443/x"])
def test_ports_in_range(text: str) -> None:
    assert parse_ref(text).registry == text.split("/")[0]


def test_surrounding_whitespace_is_dropped() -> None:
    # What a shell's $(cat file) would leave; inside a reference it is refused (above).
    assert str(parse_ref(" localhost:5000/a:1\n")) == "localhost:5000/a:1"


def test_tag_and_digest_checks_see_a_final_newline() -> None:
    with pytest.raises(ReferenceError, match="invalid tag"):
        check_tag("v1\n")
    with pytest.raises(ReferenceError, match="invalid digest"):
        check_digest("sha256:" + "a" * 64 + "\n")
    with pytest.raises(ReferenceError):
        parse_ref("localhost:5000/a").with_tag("v1\n")


def test_with_tag_and_digest() -> None:
    r = parse_ref("localhost:5000/a/b:1")
    assert str(r.with_tag("2")) == "localhost:5000/a/b:2"
    d = "sha256:" + "c" * 64
    assert r.with_digest(d).reference == d
    with pytest.raises(ReferenceError):
        r.with_tag("no good")


def test_loopback_means_an_address_not_a_name() -> None:
    from polyarch.refs import is_loopback_host, parse_ref

    for host in ("127.0.0.1:5000", "127.3.4.5", "localhost:5000", "[::1]:5000", "::1"):
        assert is_loopback_host(host), host
    for host in ("127.attacker.example:443", "127.0.0.1.nip.io", "ghcr.io", "localhost.example"):
        assert not is_loopback_host(host), host
    assert not parse_ref("127.0.0.1.nip.io/a/b:1").is_loopback


def test_only_sha256_digests() -> None:
    from polyarch.refs import ReferenceError, parse_ref

    with pytest.raises(ReferenceError, match="expected sha256"):
        parse_ref("r.io/a@sha512:" + "ab" * 64)
