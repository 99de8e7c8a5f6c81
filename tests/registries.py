"""Test registries: a ``docker-registry`` process of one's own, and a private CA.

LocalRegistry
=============

``LocalRegistry(tmp_path, htpasswd={"user": "pw"})`` starts ``docker-registry serve`` on
a free loopback port with its own storage (optionally with ``auth: htpasswd``); use
``.address``, ``.stop()`` and ``.start()``; it is a context manager.
``LocalRegistry(tmp_path, tls=TestCA(dir).issue("127.0.0.1"), client_cas=[ca.cert])``
serves HTTPS (requiring a client certificate signed by ``client_cas`` when given).

TestCA
======

``TestCA(directory, "name")`` makes a private certificate authority with the
``openssl`` command; ``.issue("127.0.0.1")`` a server certificate (with the IP or DNS
name as subjectAltName), ``.issue_client("ci")`` a client certificate, each a
``(cert, key)`` pair of paths.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


class TestCA:
    """A private certificate authority made with the ``openssl`` command."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "polyarch test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.cert = directory / "ca.crt"
        self.key = directory / "ca.key"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                      "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _openssl(self, *args: object) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)

    def _issue(self, stem: str, subject: str, ext: str) -> tuple[Path, Path]:
        key, csr = self.directory / f"{stem}.key", self.directory / f"{stem}.csr"
        cert = self.directory / f"{stem}.crt"
        extfile = self.directory / f"{stem}.ext"
        extfile.write_text(ext)
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", f"/CN={subject}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                      "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extfile)
        return cert, key

    def issue(self, host: str = "127.0.0.1") -> tuple[Path, Path]:
        """A server certificate for ``host`` (an IP address or a DNS name)."""
        import ipaddress

        try:
            ipaddress.ip_address(host)
            san = f"IP:{host}"
        except ValueError:
            san = f"DNS:{host}"
        stem = "server-" + re.sub(r"[^A-Za-z0-9]", "_", host)
        return self._issue(stem, host, f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")

    def issue_client(self, name: str = "client") -> tuple[Path, Path]:
        return self._issue(f"client-{name}", name, "extendedKeyUsage=clientAuth\n")


class LocalRegistry:
    """A ``docker-registry`` process of its own, on a free loopback port."""

    def __init__(self, directory: Path, *, htpasswd: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None,
                 client_cas: list[Path] | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        auth = ""
        if htpasswd:
            pw_file = directory / "htpasswd"
            pw_file.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in htpasswd.items()))
            auth = f"auth:\n  htpasswd:\n    realm: polyarch-test\n    path: {pw_file}\n"
        tls_conf = ""
        if tls:
            tls_conf = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n"
            if client_cas:
                tls_conf += "    clientcas:\n" + "".join(f"      - {c}\n" for c in client_cas)
        self.config = directory / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n" + tls_conf + auth
        )
        self.start()

    def start(self, timeout: float = 15.0) -> None:
        exe = shutil.which("docker-registry") or shutil.which("registry")
        assert exe, "docker-registry binary not found"
        self.proc = subprocess.Popen([exe, "serve", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.tls:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.1)
                    continue
            try:
                httpx.get(f"http://{self.address}/v2/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry on {self.address} did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash or a pulled cable would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
