"""Retries against a fault-injecting proxy in front of the real registry."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from faultproxy import Fault, FaultProxy, make_layer, push_index

from polyarch import proc
from polyarch.checks.verify import verify
from polyarch.cli import run as cli_run
from polyarch.errors import RegistryError
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import RegistryClient

pytestmark = pytest.mark.engine

BOTH = parse_platforms("linux/amd64,linux/arm64")


@pytest.fixture(autouse=True)
def _no_stale_echo() -> Iterator[None]:
    yield
    proc.echo_hook = None


@pytest.fixture
def image(repo: str) -> str:
    """A 2-platform index in the test registry; returns the path part (no host)."""
    a = make_layer({"bin/data": b"a" * 500_000, "etc/motd": b"hi\n"})
    b = make_layer({"bin/data": b"b" * 500_000}, "zstd")
    with RegistryClient() as client:
        push_index(client, parse_ref(f"{repo}:1"), [("linux/amd64", [(*a, "gzip")]),
                                                     ("linux/arm64", [(*b, "zstd")])])
    return repo.split("/", 1)[1] + ":1"


def test_transient_faults_are_survived(registry: str, image: str) -> None:
    with FaultProxy(registry) as proxy, RegistryClient(backoff=0.05) as client:
        proxy.add(Fault.status(503), times=2)
        proxy.add(Fault.status(429, retry_after=1), times=1)
        proxy.add(Fault.drop(), times=2)
        proxy.add(Fault.reset(), match="/manifests/sha256:", times=1)
        proxy.add(Fault.status(502), method="GET", match="/blobs/", times=1)
        proxy.add(Fault.truncate(100_000), method="GET", match="/blobs/", times=2)
        t0 = time.monotonic()
        report = verify(f"{proxy.address}/{image}", BOTH, client=client)
        elapsed = time.monotonic() - t0
        assert report.ok, report.to_json()
        assert proxy.faults_injected == 9
        assert elapsed >= 1.0  # the Retry-After of the 429 was honoured
        outcomes = [r.outcome for r in proxy.log]
        # Five faults in a row on the first request, within the default budget of 5 retries.
        assert outcomes[:6] == ["503", "503", "429", "drop", "drop", "forwarded 200"]
        assert "reset" in outcomes


def test_beyond_the_budget_exit_4(registry: str, image: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with FaultProxy(registry) as proxy:
        proxy.add(Fault.status(503, retry_after=0), times=None)
        code = cli_run(["verify", f"{proxy.address}/{image}"])
        _, err = capsys.readouterr()
        assert code == 4
        line = err.strip().splitlines()[-1]
        assert line.startswith("polyarch: error: registry " + proxy.address)
        assert "failed after 6 attempts" in line and "HTTP 503" in line
        assert len(proxy.log) == 6


def test_dropped_connections_beyond_the_budget(registry: str, image: str) -> None:
    with FaultProxy(registry) as proxy, RegistryClient(retries=2, backoff=0.01) as client:
        proxy.add(Fault.drop(), times=None, method="GET", match="/blobs/")
        with pytest.raises(RegistryError, match="failed after 3 attempts") as ei:
            verify(f"{proxy.address}/{image}", BOTH, client=client)
        assert ei.value.exit_code == 4
        assert "connection dropped" in ei.value.message or "Disconnected" in ei.value.message


def test_long_retry_after_gives_up_at_once(registry: str, image: str) -> None:
    with FaultProxy(registry) as proxy, RegistryClient() as client:
        proxy.add(Fault.status(429, retry_after=3600), times=None)
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="Retry-After: 3600") as ei:
            client.get_manifest(parse_ref(f"{proxy.address}/{image}"))
        assert time.monotonic() - t0 < 2
        assert ei.value.exit_code == 4


def test_registry_down(tmp_path: object) -> None:
    from faultproxy import free_port

    with RegistryClient(retries=2, backoff=0.01) as client, \
            pytest.raises(RegistryError, match="cannot connect") as ei:
        client.get_manifest(parse_ref(f"127.0.0.1:{free_port()}/a/b:1"))
    assert "failed after 3 attempts" in ei.value.message
