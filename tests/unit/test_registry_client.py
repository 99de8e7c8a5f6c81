"""The registry client's two HTTP clients: plain HTTP without certificates loaded, TLS with
the trusted certificates."""

from __future__ import annotations

import ssl

from polyarch.registry import RegistryClient


def _context(client: object) -> ssl.SSLContext:
    ctx = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(ctx, ssl.SSLContext)
    return ctx


def test_plain_http_loads_no_certificates_and_tls_client_is_made_on_first_https() -> None:
    with RegistryClient() as c:
        assert c._tls is None
        plain = c._http("http://127.0.0.1:5000/v2/")
        assert plain is c._http("HTTP://registry.lan:5000/v2/")
        assert c._tls is None
        # Should an https:// URL ever reach it, the plain client trusts no certificate.
        ctx = _context(plain)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509_ca"] == 0

        tls = c._http("https://ghcr.io/v2/")
        assert tls is not plain and tls is c._tls
        assert c._http("https://auth.docker.io/token") is tls
        ctx = _context(tls)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509_ca"] > 0
