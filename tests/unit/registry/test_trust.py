"""Where TLS trust comes from for a registry (certs.d lookup; no network)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyarch import settings
from polyarch.config import load_settings
from polyarch.errors import RegistryError
from polyarch.registry import trust


@pytest.fixture
def certs_d(tmp_path: Path) -> Iterator[Path]:
    """``POLYARCH_CERTS_D`` names ``tmp_path``, resolved and installed as a run does."""
    with settings.using(load_settings({"POLYARCH_CERTS_D": str(tmp_path)})):
        yield tmp_path


def test_certs_d_lookup_host_port_then_host(certs_d: Path) -> None:
    assert trust.certs_d_root() == certs_d
    (certs_d / "reg.lan:5443").mkdir()
    (certs_d / "reg.lan:5443" / "ca.crt").write_text("x")
    (certs_d / "reg.lan:5443" / "extra.crt").write_text("x")
    (certs_d / "reg.lan:5443" / "README").write_text("x")
    (certs_d / "reg.lan").mkdir()
    (certs_d / "reg.lan" / "client.cert").write_text("x")
    (certs_d / "reg.lan" / "client.key").write_text("x")
    exact = trust.host_trust("reg.lan:5443")
    assert exact.directory == certs_d / "reg.lan:5443"
    assert [p.name for p in exact.cas] == ["ca.crt", "extra.crt"] and exact.client_pairs == ()
    # Another port: the directory named after the host alone.
    other = trust.host_trust("reg.lan:6000")
    assert other.directory == certs_d / "reg.lan" and other.cas == ()
    assert [(c.name, k.name) for c, k in other.client_pairs] == [("client.cert", "client.key")]
    assert trust.host_trust("elsewhere.io").directory is None


def test_default_root_is_dockers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without settings installed (a library caller), the environment is not read.
    monkeypatch.setenv("POLYARCH_CERTS_D", "/nonexistent")
    assert trust.certs_d_root() == Path("/etc/docker/certs.d")


def test_half_a_client_pair_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r:1").mkdir()
    (tmp_path / "r:1" / "client.key").write_text("x")
    with pytest.raises(RegistryError, match="no matching certificate client.cert") as ei:
        trust.host_trust("r:1", tmp_path)
    assert ei.value.exit_code == 4


def test_unreadable_ca_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    (tmp_path / "r:1").mkdir()
    (tmp_path / "r:1" / "ca.crt").write_text("not a certificate")
    with pytest.raises(RegistryError, match="is not a PEM CA certificate"):
        trust.context_for("r:1", root=tmp_path)


def test_base_store_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(RegistryError, match="SSL_CERT_FILE"):
        trust.base_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    ctx, what = trust.base_context()
    assert what == "the system trust store" and ctx.verify_mode == ssl.CERT_REQUIRED
    unverified, what = trust.context_for("r:1", verify=False, root=tmp_path)
    assert unverified.verify_mode == ssl.CERT_NONE and "insecure" in what


def test_tls_failures_say_what_to_fix() -> None:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "self-signed certificate in certificate chain"
    e = trust.tls_failure("reg:5443", err, "the system trust store")
    assert "TLS certificate not trusted (self-signed" in e.message
    assert "certs.d/reg:5443/ca.crt" in (e.hint or "")
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    e = trust.tls_failure("reg:5443", alert, "the system trust store")
    assert "requires a client certificate" in e.message and "client.key" in (e.hint or "")
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"
    assert trust.not_tls(wrong) and not trust.not_tls(alert)
