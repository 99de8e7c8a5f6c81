"""WWW-Authenticate parsing and the token cache's bookkeeping (no network)."""

from __future__ import annotations

from pathlib import Path

from polyarch.registry.auth import Authenticator, parse_challenge, scope
from polyarch.registry.credentials import DockerConfig
from polyarch.registry.transport import Transport


def test_parse_challenge() -> None:
    # Docker Hub's challenge, as it sends it.
    ch = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                         'scope="repository:library/busybox:pull"')
    assert ch is not None and ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                         "scope": "repository:library/busybox:pull"}
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None
    assert parse_challenge("") is None
    quoted = parse_challenge(r'Bearer realm="https://a/t",error="x \"y\""')
    assert quoted is not None and quoted.params["error"] == 'x "y"'


def test_no_header_before_a_challenge(tmp_path: Path) -> None:
    auth = Authenticator(Transport(timeout=5), DockerConfig(tmp_path))
    assert auth.header("example.org", [scope("a/b", "pull")]) is None
    # A Basic challenge without credentials: still nothing to send.
    ch = parse_challenge('Basic realm="r"')
    assert ch is not None
    auth.learn("example.org", ch, [scope("a/b", "pull")])
    assert auth.header("example.org", [scope("a/b", "pull")]) is None
    assert auth.token_requests == 0
