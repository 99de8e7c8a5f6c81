"""TLS registries with a private CA: trusted through certs.d or SSL_CERT_FILE, client
certificates, untrusted CAs (exit 4 at once, never retried), insecure registries."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from faultproxy import LocalRegistry, TestCA, make_layer, write_oci_layout

from polyarch import settings
from polyarch.cli import run as cli_run
from polyarch.errors import RegistryError
from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def certs_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty certs.d of the test's own (never /etc/docker/certs.d), for the CLI runs
    (POLYARCH_CERTS_D) and the clients made in process (the settings); no SSL_CERT_FILE."""
    d = tmp_path / "certs.d"
    d.mkdir()
    monkeypatch.setenv("POLYARCH_CERTS_D", str(d))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with settings.using(replace(settings.current(), certs_d=d)):
        yield d


@pytest.fixture
def tls_registry(tmp_path: Path, ca: TestCA) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "tls-reg", tls=ca.issue("127.0.0.1")) as reg:
        yield reg


@pytest.fixture
def mtls_registry(tmp_path: Path, ca: TestCA) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "mtls-reg", tls=ca.issue("127.0.0.1"),
                       client_cas=[ca.cert]) as reg:
        yield reg


def small_layout(tmp: Path) -> OCILayout:
    layer = make_layer({"etc/motd": os.urandom(2000)}, "gzip")
    return OCILayout(write_oci_layout(tmp, [("linux/amd64", [(*layer, "gzip")]),
                                            ("linux/arm64", [(*layer, "gzip")])]))


def trust_in_certs_d(certs_d: Path, address: str, ca: TestCA) -> Path:
    d = certs_d / address
    d.mkdir()
    shutil.copy(ca.cert, d / "ca.crt")
    return d


def test_untrusted_ca_exit_4_at_once_never_retried(tls_registry: LocalRegistry, certs_d: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ref = parse_ref(f"{tls_registry.address}/team/app:1")
    with RegistryClient(retries=5, backoff=1.0) as client:
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="TLS certificate not trusted") as ei:
            client.get_manifest(ref)
        elapsed = time.monotonic() - t0
        # One HTTPS attempt (after the bare handshake that found TLS): no retry, no backoff.
        assert client.requests_sent == 1
    assert elapsed < 1.0, elapsed
    assert ei.value.exit_code == 4
    assert tls_registry.address in ei.value.message
    assert f"{certs_d}/{tls_registry.address}/ca.crt" in (ei.value.hint or "")
    code = cli_run(["inspect", str(ref)])
    _, err = capsys.readouterr()
    assert code == 4
    line = err.strip().splitlines()[-1]
    assert "certificate not trusted" in line and "ca.crt" in line and "attempt" not in line


def test_ca_in_certs_d_push_and_read(tls_registry: LocalRegistry, certs_d: Path, ca: TestCA,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trust_in_certs_d(certs_d, tls_registry.address, ca)
    lay = small_layout(tmp_path / "lay")
    with RegistryClient() as client:
        res = push_layout(client, lay, parse_ref(f"{tls_registry.address}/team/app"))
        assert not client.plain_http(tls_registry.address)
        assert client.base_url(tls_registry.address) == f"https://{tls_registry.address}"
        assert client.head_manifest(parse_ref(f"{tls_registry.address}/team/app@{res.digest}"))
    code = cli_run(["inspect", f"{tls_registry.address}/team/app@{res.digest}", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert res.digest in out


def test_ssl_cert_file_is_trusted(tls_registry: LocalRegistry, certs_d: Path, ca: TestCA,
                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    with RegistryClient() as client:
        res = push_layout(client, small_layout(tmp_path / "lay"),
                          parse_ref(f"{tls_registry.address}/team/app"))
        assert res.blobs_uploaded == 3  # two configs, one shared layer


def test_client_certificate_required(mtls_registry: LocalRegistry, certs_d: Path, ca: TestCA,
                                     tmp_path: Path) -> None:
    d = trust_in_certs_d(certs_d, mtls_registry.address, ca)
    ref = parse_ref(f"{mtls_registry.address}/team/app")
    with RegistryClient(retries=5, backoff=1.0) as client:
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="client certificate") as ei:
            client.get_manifest(ref.with_tag("1"))
        assert time.monotonic() - t0 < 1.0
        assert ei.value.exit_code == 4
        assert "client.cert" in (ei.value.hint or "")
    cert, key = ca.issue_client("ci")
    shutil.copy(cert, d / "client.cert")
    # A certificate without its key is named as such.
    with RegistryClient() as client, pytest.raises(RegistryError, match="no matching key"):
        client.get_manifest(ref.with_tag("1"))
    shutil.copy(key, d / "client.key")
    with RegistryClient() as client:
        res = push_layout(client, small_layout(tmp_path / "lay"), ref)
        assert client.head_manifest(ref.with_digest(res.digest)) == res.digest


def test_insecure_registry_skips_verification_as_docker_does(
        tls_registry: LocalRegistry, certs_d: Path, tmp_path: Path) -> None:
    ref = parse_ref(f"{tls_registry.address}/team/app")
    with RegistryClient(insecure_registries=[tls_registry.address]) as client:
        res = push_layout(client, small_layout(tmp_path / "lay"), ref)
        assert client.base_url(tls_registry.address).startswith("https://")
        assert client.head_manifest(ref.with_digest(res.digest)) == res.digest


def test_plain_http_registry_builds_no_tls_context(registry: str, certs_d: Path) -> None:
    # A CA file that cannot be read would fail any TLS context built for the registry.
    d = certs_d / registry
    d.mkdir()
    (d / "ca.crt").write_text("not a certificate\n")
    with RegistryClient() as client:
        assert client.plain_http(registry)
        client.list_tags(parse_ref(f"{registry}/never/pushed:x"))
        assert ("https", registry) not in client.transport._clients


def test_insecure_plain_registry_falls_back_to_http(registry: str, certs_d: Path) -> None:
    with RegistryClient(insecure_registries=[registry]) as client:
        assert client.plain_http(registry)
        assert client.list_tags(parse_ref(f"{registry}/never/pushed:x")) == []
        assert ("https", registry) not in client.transport._clients
