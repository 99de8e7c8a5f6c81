"""Scheme choice, the deadline setting and Retry-After parsing (no network)."""

from __future__ import annotations

import time

import pytest

from polyarch import settings
from polyarch.config import load_settings
from polyarch.errors import ConfigError
from polyarch.registry.transport import (
    DEFAULT_TIMEOUT,
    TIMEOUT_ENV,
    Deadline,
    Transport,
    default_timeout,
    parse_retry_after,
    split_host_port,
)


def test_only_loopback_and_insecure_registries_may_use_http() -> None:
    t = Transport(insecure_registries=["registry.lan:5000", "https://other.lan"], timeout=5)
    # Loopback and insecure registries may speak plain HTTP (found out on first use) ...
    assert t.may_use_http("127.0.0.1:5000") and t.may_use_http("localhost:5000")
    assert t.may_use_http("[::1]:5000")
    assert t.may_use_http("registry.lan:5000") and t.may_use_http("other.lan")
    # ... nothing else does, and for those no probe is made.
    assert not t.may_use_http("ghcr.io") and not t.may_use_http("registry.lan")
    assert t.base_url("ghcr.io") == "https://ghcr.io"
    assert t.base_url("docker.io") == "https://registry-1.docker.io"
    assert t.requests_sent == 0


def test_timeout_setting_takes_positive_seconds_only() -> None:
    assert default_timeout() == DEFAULT_TIMEOUT == 60
    assert load_settings({TIMEOUT_ENV: "2.5"}).registry_timeout == 2.5
    for bad in ("0", "-1", "soon", "1e9", "nan"):
        with pytest.raises(ConfigError, match=TIMEOUT_ENV) as ei:
            load_settings({TIMEOUT_ENV: bad})
        assert ei.value.exit_code == 2


def test_the_transport_takes_the_deadline_of_the_run_settings() -> None:
    with settings.using(load_settings({TIMEOUT_ENV: "7"})):
        assert default_timeout() == 7
        assert Transport().timeout == 7
        assert Transport(timeout=3).timeout == 3
    assert Transport().timeout == 60


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("garbage") is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    got = parse_retry_after(later)
    assert got is not None and 25 < got <= 31


def test_deadline_moves_with_progress() -> None:
    d = Deadline(0.2)
    time.sleep(0.15)
    assert d.remaining() < 0.1
    d.extend()
    assert d.remaining() > 0.15
    assert d.timeout().read is not None and d.timeout().connect is not None


def test_split_host_port() -> None:
    assert split_host_port("127.0.0.1:5000", 443) == ("127.0.0.1", 5000)
    assert split_host_port("localhost", 443) == ("localhost", 443)
    assert split_host_port("[::1]:5000", 443) == ("::1", 5000)
    assert split_host_port("[::1]", 443) == ("::1", 443)
    assert split_host_port("registry-1.docker.io", 443) == ("registry-1.docker.io", 443)


def test_bad_timeout_setting_is_exit_2_before_any_request(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from polyarch.cli import run

    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    code = run(["inspect", "127.0.0.1:9/never/asked:1"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"polyarch: error: {TIMEOUT_ENV}='soon' is not a number of seconds"
        " (use a number between 0 and 86400, e.g. 60)")


@pytest.mark.parametrize(("env", "url", "through"), [
    ({}, "https://registry.example:5000/v2/", False),
    ({"HTTPS_PROXY": "http://proxy.lan:3128"}, "https://registry.example:5000/v2/", True),
    ({"HTTPS_PROXY": "http://proxy.lan:3128"}, "http://127.0.0.1:5000/v2/", False),
    ({"ALL_PROXY": "http://proxy.lan:3128"}, "http://registry.lan:5000/v2/", True),
    ({"HTTPS_PROXY": "http://proxy.lan:3128", "NO_PROXY": "registry.example"},
     "https://registry.example:5000/v2/", False),
])
def test_a_refusal_through_a_proxy_is_told_apart(monkeypatch: pytest.MonkeyPatch,
                                                  env: dict[str, str], url: str,
                                                  through: bool) -> None:
    # A proxy that refuses says nothing of the registry: no "nothing listens there".
    from polyarch.registry.transport import proxied

    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
              "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert proxied(url) is through
