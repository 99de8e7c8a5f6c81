"""A machine made of files and one thread, for the tests of engine look-ups answered
from what earlier commands kept (:mod:`polyarch.engines.remembered`): a daemon socket
answering ``GET /info`` (a thread serves it, no process), the docker CLI's
configuration directory, a ``docker`` on PATH, the plugin directories and the kernel's
emulator registrations (a directory standing for ``/proc/sys/fs/binfmt_misc``)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from polyarch.engines import buildx_plugin, remembered

INFO = ["docker", "info", "--format", "{{json .}}"]
INSPECT = ["/usr/libexec/docker/cli-plugins/docker-buildx", "inspect"]
STORE = [["driver-type", "io.containerd.snapshotter.v1"]]

#: ``docker buildx inspect`` of the default builder (Docker 26, buildx 0.13's layout).
DOCKER_DRIVER = """Name:          default
Driver:        docker
Last Activity: 2026-12-07 07:57:04 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.13.2
Platforms:        linux/amd64, linux/amd64/v2, linux/arm64, linux/386
Labels:
 org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1
"""
CONTAINER_DRIVER = """Name:          multi
Driver:        docker-container
Driver Options:
 env.http_proxy: "http://user:proxy-pass@proxy:3128"

Nodes:
Name:      multi0
Endpoint:  unix:///var/run/docker.sock
Status:    running
Platforms: linux/amd64, linux/arm64
"""


def server(**changes: Any) -> dict[str, Any]:
    """The daemon's ``GET /info`` (its fields polyarch reads, and some it must not keep)."""
    return {"ID": "9f1c", "ServerVersion": "26.1.5", "Architecture": "x86_64",
            "OSType": "linux", "Driver": "overlayfs", "DriverStatus": STORE,
            "KernelVersion": "6.1.0", "HttpProxy": "http://user:proxy-pass@proxy:3128",
            "RegistryConfig": {"Mirrors": ["https://mirror.example"]}, **changes}


def cli_info(**changes: Any) -> str:
    """``docker info --format '{{json .}}'``: the daemon's part and the CLI's."""
    return json.dumps({**server(**changes), "ClientInfo": {"Version": "28.2.2", "Plugins": [
        {"Name": "buildx", "Version": "0.13.1", "Path": INSPECT[0],
         "ShortDescription": "Docker Buildx"}]}})


@dataclass
class Daemon:
    """A thread answering ``GET /info`` on a unix socket as dockerd does."""

    path: Path
    info: dict[str, Any] = field(default_factory=server)
    status: int = 200
    asked: int = 0
    #: keep the connection open after the answer (HTTP/1.1 keep-alive, some proxies)
    keep_open: bool = False
    _sock: socket.socket | None = None

    def start(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.path))
        s.listen(8)
        self._sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.asked += 1
                body = json.dumps(self.info).encode()
                conn.sendall(f"HTTP/1.0 {self.status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                if self.keep_open:
                    conn.settimeout(5)
                    with contextlib.suppress(OSError):
                        conn.recv(1)  # until the client closes

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass
class Machine:
    root: Path
    env: dict[str, str]
    daemon: Daemon

    @property
    def conf(self) -> Path:
        return Path(self.env["DOCKER_CONFIG"])

    def fp(self, argv: list[str] = INFO) -> str | None:
        return remembered.fingerprint(argv, self.env)

    def keep(self, argv: list[str], out: str, daemon: str | None = None) -> str:
        fp = self.fp(argv)
        assert fp is not None
        remembered.keep(argv, self.env, fp, out, daemon)
        return fp


def make_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    # (AF_UNIX paths are short: the socket lives in a short directory of its own)
    sock_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"pa-sock-{os.getpid()}-{id(tmp_path)}"
    sock_dir.mkdir()
    conf = tmp_path / "docker-config"
    (conf / "buildx" / "instances").mkdir(parents=True)
    (conf / "buildx" / "current").write_text('{"Key":"unix:///var/run/docker.sock"}')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\n")
    (bin_dir / "docker").chmod(0o755)
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    (binfmt / "status").write_text("enabled\n")
    (binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt\n")
    monkeypatch.setattr(remembered, "BINFMT", binfmt)
    plugins = tmp_path / "system-plugins"
    plugins.mkdir()
    monkeypatch.setattr(buildx_plugin, "SYSTEM_DIRS", (str(plugins),))
    daemon = Daemon(sock_dir / "d.sock")
    daemon.start()
    env = {"DOCKER_HOST": f"unix://{daemon.path}", "DOCKER_CONFIG": str(conf),
           "PATH": str(bin_dir), "HOME": str(tmp_path)}
    monkeypatch.setattr(remembered, "cache_root", lambda env: tmp_path / "cache" / "engine")
    try:
        yield Machine(tmp_path, env, daemon)
    finally:
        daemon.stop()
        daemon.path.unlink(missing_ok=True)
        sock_dir.rmdir()
