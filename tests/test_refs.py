import pytest

from polyarch.refs import ReferenceError, parse_ref


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
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    r = parse_ref(text)
    assert (r.registry, r.repository, r.tag, r.digest) == (registry, repository, tag, digest)


def test_str_roundtrip() -> None:
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
    ],
)
def test_invalid(text: str, reason: str) -> None:
    with pytest.raises(ReferenceError, match=reason):
        parse_ref(text)


def test_with_tag_and_digest() -> None:
    r = parse_ref("localhost:5000/a/b:1")
    assert str(r.with_tag("2")) == "localhost:5000/a/b:2"
    d = "sha256:" + "c" * 64
    assert r.with_digest(d).reference == d
    with pytest.raises(ReferenceError):
        r.with_tag("no good")
