"""Retries against a fault-injecting proxy in front of the real registry."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

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
        # The scheme is found out with a TLS handshake, which is no HTTP request.
        assert client.plain_http(proxy.address)
        assert proxy.log == []
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


def test_a_registry_nobody_listens_on_fails_after_the_retries(tmp_path: object) -> None:
    from faultproxy import free_port

    with RegistryClient(retries=2, backoff=0.01) as client, \
            pytest.raises(RegistryError, match="cannot connect") as ei:
        client.get_manifest(parse_ref(f"127.0.0.1:{free_port()}/a/b:1"))
    assert "failed after 3 attempts" in ei.value.message


def test_a_registry_nobody_listens_on_is_given_up_within_seconds() -> None:
    """A typo in the port, a registry not started: nothing to wait 15 s of retries for."""
    from faultproxy import free_port

    from polyarch.registry.transport import FIRST_CONTACT

    t0 = time.monotonic()
    with RegistryClient() as client, pytest.raises(RegistryError) as ei:
        client.get_manifest(parse_ref(f"127.0.0.1:{free_port()}/a/b:1"))
    took = time.monotonic() - t0
    # Long enough for a registry that is starting (the last attempt at the window's
    # end), not the whole retry budget.
    assert FIRST_CONTACT - 0.1 <= took < FIRST_CONTACT + 1, took
    assert "nothing listens there" in ei.value.message and "Connection refused" in \
        ei.value.message
    assert "host and port" in (ei.value.hint or "") and ei.value.exit_code == 4


def test_a_registry_that_answered_and_restarts_is_waited_for(registry: str,
                                                             image: str) -> None:
    """Refused connections from a registry that answered before (it is restarting) get
    the whole retry budget, past the few seconds a registry never seen gets."""
    import threading

    from polyarch.registry.transport import FIRST_CONTACT

    first = FaultProxy(registry)
    port = first.port
    ref = parse_ref(f"{first.address}/{image}")
    back: list[FaultProxy] = []
    with RegistryClient() as client:
        assert client.get_manifest(ref)
        first.add(Fault.drop(), times=None)  # its open connections end, no answer
        first.close()  # and new ones are refused, until it is back
        gap = FIRST_CONTACT + 1
        threading.Timer(gap, lambda: back.append(FaultProxy(registry, port=port))).start()
        t0 = time.monotonic()
        try:
            assert client.get_manifest(ref)
            assert time.monotonic() - t0 >= gap
        finally:
            time.sleep(max(0.0, gap + 0.5 - (time.monotonic() - t0)))
            for p in back:
                p.close()


# -- deadlines ---------------------------------------------------------------------------

def test_registry_that_never_answers_fails_at_the_deadline(
        registry: str, image: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultProxy(registry) as proxy:
        proxy.add(Fault.hang(), match="/manifests/", times=None)
        with RegistryClient(timeout=2) as client:
            t0 = time.monotonic()
            with pytest.raises(RegistryError, match="deadline") as ei:
                client.get_manifest(parse_ref(f"{proxy.address}/{image}"))
            elapsed = time.monotonic() - t0
        assert ei.value.exit_code == 4
        assert 1.9 <= elapsed < 4, elapsed
        assert "POLYARCH_REGISTRY_TIMEOUT" in (ei.value.hint or "")
        # The whole command, deadline from the environment: one clear line, exit 4.
        monkeypatch.setenv("POLYARCH_REGISTRY_TIMEOUT", "2")
        t0 = time.monotonic()
        code = cli_run(["inspect", f"{proxy.address}/{image}"])
        elapsed = time.monotonic() - t0
        _, err = capsys.readouterr()
        assert code == 4 and elapsed < 5, (code, elapsed)
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"polyarch: error: registry {proxy.address}: GET manifest")
        assert "timed out" in line and "Traceback" not in err


def test_stall_in_the_middle_of_a_blob_is_resumed(registry: str, repo: str) -> None:
    data = os.urandom(1_500_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ref = parse_ref(f"{repo}:b")
    with RegistryClient() as direct:
        direct.upload_blob(ref, digest, data)
    with FaultProxy(registry) as proxy, RegistryClient(timeout=2, backoff=0.01) as client:
        proxy.add(Fault.hang_after(400_000), method="GET", match="/blobs/sha256:", times=1)
        t0 = time.monotonic()
        got = b"".join(client.stream_blob(
            parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}:b"), digest))
        elapsed = time.monotonic() - t0
        assert got == data
        assert 1.9 <= elapsed < 5, elapsed
        gets = [r for r in proxy.log if "/blobs/sha256:" in r.path]
        assert gets[0].outcome == "forwarded 200 stalled"
        assert gets[1].headers.get("Range") == "bytes=400000-"


def test_stall_after_some_bytes_of_every_answer_fails_within_the_deadline(
        registry: str, image: str) -> None:
    with FaultProxy(registry) as proxy, RegistryClient(timeout=2, backoff=0.01) as client:
        proxy.add(Fault.hang_after(10), match="/manifests/", times=None)
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="deadline") as ei:
            client.get_manifest(parse_ref(f"{proxy.address}/{image}"))
        assert time.monotonic() - t0 < 4
        assert ei.value.exit_code == 4


def test_push_to_a_registry_that_stops_answering(registry: str, repo: str,
                                                 tmp_path: Path) -> None:
    from faultproxy import write_oci_layout

    from polyarch.registry import OCILayout, push_layout

    layer = make_layer({"bin/x": os.urandom(300_000)}, "none")
    lay = OCILayout(write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*layer, "none")])]))
    with FaultProxy(registry) as proxy, RegistryClient(timeout=2, backoff=0.01) as client:
        proxy.add(Fault.hang(), method="PUT", times=None)
        t0 = time.monotonic()
        with pytest.raises(RegistryError) as ei:
            push_layout(client, lay, parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}"))
        assert ei.value.exit_code == 4
        assert time.monotonic() - t0 < 6
        # No manifest written (they were only asked for, by digest, before the blobs).
    assert {r.method for r in proxy.log if "/manifests/" in r.path} == {"HEAD"}


def test_hung_credential_helper_exit_3_naming_it(registry: str, image: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from faultproxy import TokenAuth

    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-stuck"
    # exec: the helper itself hangs (a shell waiting on a child would keep the pipes open).
    helper.write_text("#!/bin/sh\nexec sleep 60\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with FaultProxy(registry, auth=TokenAuth(users={"u": "p"})) as proxy:
        (cfg / "config.json").write_text(json.dumps({"credHelpers": {proxy.address: "stuck"}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
        monkeypatch.setenv("POLYARCH_COMMAND_TIMEOUT", "1.5")
        t0 = time.monotonic()
        code = cli_run(["inspect", f"{proxy.address}/{image}"])
        elapsed = time.monotonic() - t0
        _, err = capsys.readouterr()
    assert code == 3, err
    assert elapsed < 5
    line = err.strip().splitlines()[-1]
    assert "docker-credential-stuck" in line and "did not answer within 1.5 s" in line
