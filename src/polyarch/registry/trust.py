"""TLS trust for registries, the way docker decides it.

For a registry ``HOST[:PORT]`` the SSL context is built when the first HTTPS request
to it is made (never for a plain-HTTP registry), once per client:

1. the base trust store: ``SSL_CERT_FILE`` when set, else the operating system's store
   (through ``truststore``), else certifi's bundle when ``truststore`` cannot be used;
2. plus every ``*.crt`` in ``CERTS_D/HOST:PORT/`` (or ``CERTS_D/HOST/`` when the
   registry has no port, or no directory with the port exists), as docker reads
   ``/etc/docker/certs.d``;
3. plus the client certificate of each ``*.cert`` file there with the ``*.key`` of the
   same name (docker's ``client.cert`` / ``client.key``).

``CERTS_D`` is the run's ``certs_d`` setting: ``/etc/docker/certs.d`` unless
``POLYARCH_CERTS_D`` names another directory. Nothing here imports ``truststore`` or
reads a certificate until a context is asked for.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from polyarch import settings
from polyarch.errors import RegistryError

DEFAULT_CERTS_D = settings.DEFAULTS.certs_d


def certs_d_root() -> Path:
    """docker's certs.d, or the directory the ``certs_d`` setting names."""
    return settings.current().certs_d


@dataclass(frozen=True)
class HostTrust:
    """What ``certs.d`` holds for one registry."""

    directory: Path | None
    cas: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = field(default_factory=tuple)


def host_trust(registry: str, root: Path | None = None) -> HostTrust:
    """The CA files and client certificates ``certs.d`` has for ``registry``."""
    base = root if root is not None else certs_d_root()
    names = [registry]
    host, sep, _port = registry.rpartition(":")
    if sep and host and not registry.endswith("]"):
        names.append(host)
    for name in names:
        d = base / name
        try:
            if not d.is_dir():
                continue
            entries = sorted(d.iterdir())
        except OSError:
            continue
        cas = tuple(p for p in entries if p.suffix == ".crt" and p.is_file())
        pairs: list[tuple[Path, Path]] = []
        for cert in (p for p in entries if p.suffix == ".cert" and p.is_file()):
            key = cert.with_suffix(".key")
            if not key.is_file():
                raise RegistryError(
                    f"{cert} has no matching key {key.name}",
                    hint=f"put the client certificate's private key in {key}",
                )
            pairs.append((cert, key))
        for key in (p for p in entries if p.suffix == ".key" and p.is_file()):
            if not key.with_suffix(".cert").is_file():
                raise RegistryError(
                    f"{key} has no matching certificate {key.with_suffix('.cert').name}",
                    hint=f"put the client certificate in {key.with_suffix('.cert')}",
                )
        return HostTrust(d, cas, tuple(pairs))
    return HostTrust(None)


def base_context() -> tuple[ssl.SSLContext, str]:
    """The base trust store and how to name it in messages."""
    cafile = os.environ.get("SSL_CERT_FILE")
    if cafile:
        try:
            return ssl.create_default_context(cafile=cafile), f"SSL_CERT_FILE ({cafile})"
        except (OSError, ssl.SSLError) as e:
            raise RegistryError(
                f"SSL_CERT_FILE={cafile} cannot be read as CA certificates ({e})",
                hint="point SSL_CERT_FILE at a PEM bundle or unset it",
            ) from e
    try:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "the system trust store"
    except (ImportError, OSError, ssl.SSLError):
        import certifi

        return ssl.create_default_context(cafile=certifi.where()), "certifi's CA bundle"


def context_for(registry: str, *, verify: bool = True,
                root: Path | None = None) -> tuple[ssl.SSLContext, str]:
    """An SSL context for ``registry`` and a description of what it trusts."""
    trust = host_trust(registry, root)
    if verify:
        ctx, what = base_context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        what = "no verification (insecure registry)"
    for ca in trust.cas:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as e:
            raise RegistryError(f"{ca} is not a PEM CA certificate ({e})",
                                hint="replace it with the registry's CA certificate") from e
    if trust.cas:
        what += " + " + ", ".join(str(p) for p in trust.cas)
    if trust.client_pairs:
        what += "; client certificate " + ", ".join(str(c) for c, _ in trust.client_pairs)
    for cert, key in trust.client_pairs:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise RegistryError(f"client certificate {cert} with {key.name} cannot be loaded ({e})",
                                hint="check the certificate and key are PEM and belong together"
                                ) from e
    return ctx, what


def tls_failure(registry: str, error: BaseException, trusted: str) -> RegistryError:
    """A certificate or handshake failure as the one-line error it deserves."""
    root = certs_d_root()
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or error.reason or str(error)
        return RegistryError(
            f"registry {registry}: TLS certificate not trusted ({reason}; trusted: {trusted})",
            hint=f"put the registry's CA certificate in {root}/{registry}/ca.crt"
                 " (or POLYARCH_CERTS_D/...), or set SSL_CERT_FILE",
        )
    text = str(getattr(error, "reason", None) or error)
    alert = text.upper()
    if any(a in alert for a in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA",
                                "CERTIFICATE_UNKNOWN", "CERTIFICATE_EXPIRED")):
        # The server's alert about *our* certificate: none sent, or not one it accepts.
        sent = "client certificate" in trusted
        return RegistryError(
            f"registry {registry}: "
            + ("the registry refused the client certificate" if sent
               else "the registry requires a client certificate")
            + f" ({text})",
            hint=f"put client.cert and client.key (signed by a CA the registry trusts) in"
                 f" {root}/{registry}/",
        )
    return RegistryError(
        f"registry {registry}: TLS handshake failed ({text})",
        hint=f"check the registry's TLS setup and {root}/{registry}/",
    )


def find_ssl_error(error: BaseException) -> ssl.SSLError | None:
    """The :class:`ssl.SSLError` behind an httpx/httpcore error, if there is one."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            return e
        e = e.__cause__ or e.__context__
    return None


def not_tls(error: ssl.SSLError) -> bool:
    """Whether a handshake failed because the server does not speak TLS at all."""
    text = f"{getattr(error, 'reason', '')} {error}".upper()
    return any(s in text for s in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE",
                                   "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"))
