"""WWW-Authenticate parsing and the token cache's bookkeeping (no network)."""

from __future__ import annotations

from pathlib import Path

from polyarch.registry.auth import Authenticator, parse_challenge, scope
from polyarch.registry.credentials import DockerConfig
from polyarch.registry.transport import Transport


def test_www_authenticate_challenges_parse() -> None:
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


def test_credentials_read_are_registered_as_secret_values(tmp_path: Path) -> None:
    # Verification before a push looks for them in the image (a registry password
    # written into a layer); output masks them.
    import base64
    import json

    from polyarch import redact

    password = "wonderland-s3cret-7Qx"
    auth = base64.b64encode(f"alice:{password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"reg.acme.dev": {"auth": auth}}}))
    redact.REDACTOR.clear()
    try:
        creds = Authenticator(Transport(timeout=5), DockerConfig(tmp_path)).credentials(
            "reg.acme.dev")
        assert creds is not None and creds.password == password
        assert password in redact.secret_values()
        assert redact.text(f"pw {password}") == "pw ***"
    finally:
        redact.REDACTOR.clear()
