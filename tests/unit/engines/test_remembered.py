"""Engine look-ups kept between commands: taken only while nothing they depend on
changed, and only what polyarch reads of them.

The machine here is made of files: a daemon socket that listens (bound in the test, no
process), the docker CLI's configuration directory, a ``docker`` on PATH, the plugin
directories and the kernel's emulator registrations (a directory standing for
``/proc/sys/fs/binfmt_misc``)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from polyarch import proc
from polyarch.engines import buildx_plugin, probes, remembered
from polyarch.engines.buildx import parse_inspect

INFO = ["docker", "info", "--format", "{{json .}}"]
INSPECT = ["/usr/libexec/docker/cli-plugins/docker-buildx", "inspect"]

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


def _info() -> str:
    return json.dumps({
        "ServerVersion": "26.1.5", "Architecture": "x86_64", "OSType": "linux",
        "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
        "HttpProxy": "http://user:proxy-pass@proxy:3128",
        "RegistryConfig": {"Mirrors": ["https://mirror.example"]},
        "ClientInfo": {"Version": "28.2.2", "Plugins": [
            {"Name": "buildx", "Version": "0.13.1", "Path": INSPECT[0],
             "ShortDescription": "Docker Buildx"}]}})


@dataclass
class Machine:
    root: Path
    env: dict[str, str]
    sock: Path
    listener: socket.socket

    @property
    def conf(self) -> Path:
        return Path(self.env["DOCKER_CONFIG"])

    def restart_daemon(self) -> None:
        self.listener.close()
        self.sock.unlink()
        self.listener = _listen(self.sock)

    def fp(self, argv: list[str] = INFO) -> str | None:
        return remembered.fingerprint(argv, self.env)


def _listen(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(4)
    return s


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    # (AF_UNIX paths are short: the socket lives in a short directory of its own)
    sock_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"pa-sock-{os.getpid()}-{id(tmp_path)}"
    sock_dir.mkdir()
    sock = sock_dir / "d.sock"
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
    env = {"DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(conf),
           "PATH": str(bin_dir), "HOME": str(tmp_path),
           "POLYARCH_CACHE_DIR": str(tmp_path / "cache")}
    m = Machine(tmp_path, env, sock, _listen(sock))
    monkeypatch.setattr(remembered, "cache_root", lambda env: tmp_path / "cache" / "engine")
    try:
        yield m
    finally:
        m.listener.close()
        sock.unlink(missing_ok=True)
        sock_dir.rmdir()


def _keep(m: Machine, argv: list[str] = INFO, out: str | None = None) -> str:
    fp = m.fp(argv)
    assert fp is not None
    stdout = out if out is not None else _info()
    remembered.keep(argv, m.env, fp, proc.Result(tuple(argv), 0, stdout, ""))
    return fp


def test_an_answer_is_taken_while_nothing_changed(machine: Machine) -> None:
    fp = _keep(machine)
    got = remembered.recall(INFO, machine.env, machine.fp())
    assert got is not None and got.ok and machine.fp() == fp
    doc = json.loads(got.stdout)
    assert doc["ServerVersion"] == "26.1.5" and doc["DriverStatus"]
    assert doc["ClientInfo"]["Plugins"] == [{"Name": "buildx", "Path": INSPECT[0],
                                             "Version": "0.13.1"}]
    kept = (machine.root / "cache" / "engine").iterdir()
    text = "".join(f.read_text() for f in kept)
    assert "proxy-pass" not in text and "mirror.example" not in text  # not what polyarch reads


CHANGES: dict[str, Callable[[Machine], None]] = {
    "the daemon restarted": Machine.restart_daemon,
    "the CLI's config": lambda m: (m.conf / "config.json").write_text('{"auths": {}}'),
    "another current builder": lambda m: (m.conf / "buildx" / "current").write_text(
        '{"Key":"unix:///var/run/docker.sock","Name":"multi"}'),
    "a builder created": lambda m: (m.conf / "buildx" / "instances" / "multi").write_text("{}"),
    "another docker CLI": lambda m: (m.root / "bin" / "docker").write_text("#!/bin/sh\n# 2\n"),
    "a buildx plugin of the user's": lambda m: (
        (m.conf / "cli-plugins").mkdir(), (m.conf / "cli-plugins" / "docker-buildx").write_text("x")),
    "QEMU registered for another CPU": lambda m: (
        remembered.BINFMT / "qemu-riscv64").write_text("enabled\n"),
    "an emulator disabled": lambda m: (remembered.BINFMT / "qemu-aarch64").write_text(
        "disabled\ninterpreter /usr/libexec/qemu-binfmt\n"),
    "BUILDX_BUILDER set": lambda m: m.env.update(BUILDX_BUILDER="multi"),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_anything_it_depends_on_changed_asks_again(machine: Machine, change: str) -> None:
    _keep(machine)
    time.sleep(0.01)  # (a file written again has another change time)
    CHANGES[change](machine)
    assert remembered.recall(INFO, machine.env, machine.fp()) is None


def test_what_buildx_writes_on_every_build_changes_nothing(machine: Machine) -> None:
    fp = _keep(machine)
    current = machine.conf / "buildx" / "current"
    current.write_text(current.read_text())  # buildx writes it again, the same
    (machine.conf / "buildx" / "activity").mkdir()
    (machine.conf / "buildx" / "activity" / "default").write_text("2026-12-07T08:00:00Z")
    assert machine.fp() == fp
    assert remembered.recall(INFO, machine.env, fp) is not None


def test_a_daemon_that_stopped_is_asked(machine: Machine) -> None:
    fp = _keep(machine)
    machine.listener.close()  # the socket file stays, nothing accepts on it
    assert machine.fp() == fp
    assert remembered.recall(INFO, machine.env, fp) is None


def test_an_old_answer_is_not_taken(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    fp = _keep(machine)
    later = time.time() + remembered.MAX_AGE + 1
    monkeypatch.setattr(remembered.time, "time", lambda: later)
    assert remembered.recall(INFO, machine.env, fp) is None


def test_a_damaged_or_failed_answer_is_not_taken(machine: Machine) -> None:
    fp = _keep(machine)
    for f in (machine.root / "cache" / "engine").iterdir():
        f.write_text('{"fingerprint": "' + fp + '", "argv": ')
    assert remembered.recall(INFO, machine.env, fp) is None
    remembered.keep(INFO, machine.env, fp, proc.Result(tuple(INFO), 1, _info(), "refused"))
    assert remembered.recall(INFO, machine.env, fp) is None
    # docker info exits 0 when the CLI answers and the daemon does not
    unanswered = json.dumps({"ServerErrors": ["Cannot connect to the Docker daemon"],
                             "ClientInfo": {"Plugins": []}})
    remembered.keep(INFO, machine.env, fp, proc.Result(tuple(INFO), 0, unanswered, ""))
    assert remembered.recall(INFO, machine.env, fp) is None


def test_only_the_docker_drivers_builder_is_kept_and_as_polyarch_reads_it(
        machine: Machine) -> None:
    fp = _keep(machine, INSPECT, CONTAINER_DRIVER)
    assert remembered.recall(INSPECT, machine.env, fp) is None  # its container may stop
    fp = _keep(machine, INSPECT, DOCKER_DRIVER)
    got = remembered.recall(INSPECT, machine.env, fp)
    assert got is not None
    assert parse_inspect(got.stdout) == parse_inspect(DOCKER_DRIVER)
    assert "host-gateway" not in got.stdout


@pytest.mark.parametrize("host", ["tcp://10.0.0.5:2376", "ssh://builder@arm-host", "npipe:////./pipe/x"])
def test_a_daemon_a_client_cannot_see_restart_is_never_kept(machine: Machine, host: str) -> None:
    machine.env["DOCKER_HOST"] = host
    assert machine.fp() is None


def test_a_context_is_followed_to_its_socket(machine: Machine) -> None:
    import hashlib

    del machine.env["DOCKER_HOST"]
    (machine.conf / "config.json").write_text('{"currentContext": "desktop-linux"}')
    meta = (machine.conf / "contexts" / "meta" / hashlib.sha256(b"desktop-linux").hexdigest())
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": "desktop-linux", "Endpoints": {"docker": {"Host": f"unix://{machine.sock}"}}}))
    fp = _keep(machine)
    assert remembered.recall(INFO, machine.env, fp) is not None
    machine.restart_daemon()
    assert remembered.recall(INFO, machine.env, machine.fp()) is None
    (meta / "meta.json").write_text(json.dumps(
        {"Name": "desktop-linux", "Endpoints": {"docker": {"Host": "ssh://far"}}}))
    assert machine.fp() is None


def test_answers_no_command_will_take_are_pruned(machine: Machine) -> None:
    _keep(machine)
    root = machine.root / "cache" / "engine"
    [f] = list(root.iterdir())
    remembered.prune(root)
    assert f.exists()
    old = time.time() - 2 * max(remembered.MAX_AGE, 3600)
    os.utime(f, (old, old))
    remembered.prune(root)
    assert not f.exists()


def test_early_look_ups_take_a_kept_answer_without_starting_anything(
        machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in machine.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    started = probes.Probes()
    started.start([INFO])  # nothing kept: started (the unit-test guard refuses it)
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        started.run(INFO)
    _keep(machine)
    again = probes.Probes()
    again.start([INFO])
    assert not again._threads  # nothing started
    r = again.run(INFO)
    assert r.ok and json.loads(r.stdout)["ServerVersion"] == "26.1.5"


def test_an_early_answer_taken_is_kept_for_the_next_command(
        machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import Future

    for k, v in machine.env.items():
        monkeypatch.setenv(k, v)
    fp = machine.fp()
    fut: Future[proc.Result] = Future()
    fut.set_result(proc.Result(tuple(INFO), 0, _info(), ""))
    first = probes.Probes()
    first._early[probes._key(INFO)] = (time.monotonic(), fut, fp)  # as start() leaves it
    assert remembered.recall(INFO, machine.env, fp) is None
    assert first.run(INFO).ok
    assert remembered.recall(INFO, machine.env, fp) is not None
