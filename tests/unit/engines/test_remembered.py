"""Engine look-ups made cheaper with what an earlier command learnt: what is kept and
for what, which daemon it is about, and the daemon's own answer on its socket (the
machine: :mod:`.remembered_machine`)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polyarch.engines import remembered
from polyarch.engines.buildx import parse_inspect

from .remembered_machine import (
    CONTAINER_DRIVER,
    DOCKER_DRIVER,
    INFO,
    INSPECT,
    Machine,
    cli_info,
    server,
)

# -- what is kept, and for what --------------------------------------------------------

def test_only_what_polyarch_reads_is_kept(machine: Machine) -> None:
    fp = machine.keep(INFO, cli_info())
    plugins = remembered.recall(INFO, machine.env, fp)
    assert plugins is not None
    assert json.loads(plugins) == [{"Name": "buildx", "Path": INSPECT[0], "Version": "0.13.1"}]
    text = "".join(f.read_text() for f in (machine.root / "cache" / "engine").iterdir())
    assert "proxy-pass" not in text and "mirror.example" not in text
    assert (machine.root / "cache" / "engine").stat().st_mode & 0o077 == 0


def test_only_the_docker_drivers_builder_is_kept(machine: Machine) -> None:
    daemon = remembered.daemon_key(server())
    fp = machine.keep(INSPECT, CONTAINER_DRIVER, daemon)
    assert remembered.recall(INSPECT, machine.env, fp, daemon) is None  # its container may stop
    fp = machine.keep(INSPECT, DOCKER_DRIVER, daemon)
    got = remembered.recall(INSPECT, machine.env, fp, daemon)
    assert got is not None and parse_inspect(got) == parse_inspect(DOCKER_DRIVER)
    assert "host-gateway" not in got
    assert remembered.recall(INSPECT, machine.env, fp, None) is None


def test_an_answer_without_a_daemon_is_not_kept(machine: Machine) -> None:
    # docker info exits 0 when the CLI answers and the daemon does not
    fp = machine.keep(INFO, json.dumps({"ServerErrors": ["Cannot connect to the Docker daemon"],
                                        "ClientInfo": {"Plugins": []}}))
    assert remembered.recall(INFO, machine.env, fp) is None


CLIENT_CHANGES: dict[str, Callable[[Machine], None]] = {
    "the CLI's config": lambda m: (m.conf / "config.json").write_text('{"auths": {}}'),
    "another docker CLI": lambda m: (m.root / "bin" / "docker").write_text("#!/bin/sh\n# 2\n"),
    "a buildx plugin of the user's": lambda m: (
        (m.conf / "cli-plugins").mkdir(), (m.conf / "cli-plugins" / "docker-buildx").write_text("x")),
    "another daemon": lambda m: m.env.update(DOCKER_HOST="unix:///run/user/1000/docker.sock"),
}
BUILDER_CHANGES: dict[str, Callable[[Machine], None]] = {
    **CLIENT_CHANGES,
    "another current builder": lambda m: (m.conf / "buildx" / "current").write_text(
        '{"Key":"unix:///var/run/docker.sock","Name":"multi"}'),
    "a builder created": lambda m: (m.conf / "buildx" / "instances" / "multi").write_text("{}"),
    "QEMU registered for another CPU": lambda m: (
        remembered.BINFMT / "qemu-riscv64").write_text("enabled\n"),
    "an emulator disabled": lambda m: (remembered.BINFMT / "qemu-aarch64").write_text(
        "disabled\ninterpreter /usr/libexec/qemu-binfmt\n"),
    "BUILDX_BUILDER set": lambda m: m.env.update(BUILDX_BUILDER="multi"),
}


@pytest.mark.parametrize("change", list(CLIENT_CHANGES), ids=list(CLIENT_CHANGES))
def test_the_clis_part_is_asked_again_when_the_client_changed(machine: Machine,
                                                             change: str) -> None:
    machine.keep(INFO, cli_info())
    time.sleep(0.01)  # (a file written again has another change time)
    CLIENT_CHANGES[change](machine)
    assert remembered.recall(INFO, machine.env, machine.fp()) is None


@pytest.mark.parametrize("change", list(BUILDER_CHANGES), ids=list(BUILDER_CHANGES))
def test_a_builder_is_asked_again_when_anything_it_depends_on_changed(
        machine: Machine, change: str) -> None:
    daemon = remembered.daemon_key(server())
    machine.keep(INSPECT, DOCKER_DRIVER, daemon)
    time.sleep(0.01)
    BUILDER_CHANGES[change](machine)
    assert remembered.recall(INSPECT, machine.env, machine.fp(INSPECT), daemon) is None


@pytest.mark.parametrize("changes", [{"DriverStatus": [["driver-type", "overlay2"]]},
                                     {"ServerVersion": "27.0.1"}, {"ID": "another-engine"}],
                         ids=["containerd store turned off", "upgraded", "another engine"])
def test_a_builder_is_asked_again_when_the_daemon_describes_itself_otherwise(
        machine: Machine, changes: dict[str, Any]) -> None:
    fp = machine.keep(INSPECT, DOCKER_DRIVER, remembered.daemon_key(server()))
    assert remembered.recall(INSPECT, machine.env, fp, remembered.daemon_key(server())) is not None
    assert remembered.recall(INSPECT, machine.env, fp,
                             remembered.daemon_key(server(**changes))) is None


def test_buildx_state_is_read_where_buildx_keeps_it(machine: Machine) -> None:
    state = machine.root / "buildx-state"  # BUILDX_CONFIG: not under DOCKER_CONFIG
    (state / "instances").mkdir(parents=True)
    machine.env["BUILDX_CONFIG"] = str(state)
    daemon = remembered.daemon_key(server())
    machine.keep(INSPECT, DOCKER_DRIVER, daemon)
    assert remembered.recall(INSPECT, machine.env, machine.fp(INSPECT), daemon) is not None
    (state / "current").write_text('{"Key":"unix:///var/run/docker.sock","Name":"multi"}')
    assert remembered.recall(INSPECT, machine.env, machine.fp(INSPECT), daemon) is None


def test_what_buildx_writes_on_every_build_changes_nothing(machine: Machine) -> None:
    fp = machine.fp(INSPECT)
    current = machine.conf / "buildx" / "current"
    current.write_text(current.read_text())  # buildx writes it again, the same
    (machine.conf / "buildx" / "activity").mkdir()
    (machine.conf / "buildx" / "activity" / "default").write_text("2026-12-07T08:00:00Z")
    assert machine.fp(INSPECT) == fp


def test_an_old_or_damaged_answer_is_not_taken(machine: Machine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fp = machine.keep(INFO, cli_info())
    later = time.time() + remembered.MAX_AGE + 1
    with monkeypatch.context() as m:
        m.setattr(remembered.time, "time", lambda: later)
        assert remembered.recall(INFO, machine.env, fp) is None
    [f] = list((machine.root / "cache" / "engine").iterdir())
    for damaged in ('{"fingerprint": "' + fp + '", "argv": ', "[" * 100_000,
                    json.dumps({"fingerprint": fp, "argv": INFO, "at": "x", "stdout": 5})):
        f.write_text(damaged)
        assert remembered.recall(INFO, machine.env, fp) is None


def test_a_cache_that_cannot_be_written_is_skipped(machine: Machine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = machine.root / "a-file"
    blocker.write_text("the cache directory cannot be made below a file")
    monkeypatch.setattr(remembered, "cache_root", lambda env: blocker / "engine")
    fp = machine.keep(INFO, cli_info())  # no error
    assert remembered.recall(INFO, machine.env, fp) is None


# -- which daemon ----------------------------------------------------------------------

@pytest.mark.parametrize("host", ["tcp://10.0.0.5:2376", "ssh://builder@arm-host",
                                  "npipe:////./pipe/x"])
def test_a_daemon_a_client_cannot_see_is_never_kept(machine: Machine, host: str) -> None:
    machine.env["DOCKER_HOST"] = host
    assert machine.fp() is None and machine.fp(INSPECT) is None


def _context(m: Machine, name: str, host: str) -> None:
    import hashlib

    meta = m.conf / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Endpoints": {"docker": {"Host": host}}}))


def test_the_daemon_is_found_as_the_docker_cli_finds_it(machine: Machine) -> None:
    env = machine.env
    _context(machine, "desktop-linux", f"unix://{machine.daemon.path}")
    _context(machine, "far", "ssh://far")
    sock = str(machine.daemon.path)
    assert remembered.docker_socket(INFO, env) == sock  # DOCKER_HOST
    env["DOCKER_CONTEXT"] = "far"  # DOCKER_HOST wins over DOCKER_CONTEXT
    assert remembered.docker_socket(INFO, env) == sock
    del env["DOCKER_HOST"]
    assert remembered.docker_socket(INFO, env) is None
    env["DOCKER_CONTEXT"] = "desktop-linux"
    assert remembered.docker_socket(INFO, env) == sock
    assert remembered.docker_socket(["docker", "--context", "far", *INFO[1:]], env) is None
    del env["DOCKER_CONTEXT"]
    assert remembered.docker_socket(INFO, env) == remembered.DEFAULT_SOCKET
    # --context default is DOCKER_HOST's daemon
    default = ["docker", "--context", "default", *INFO[1:]]
    assert remembered.docker_socket(default, {**env, "DOCKER_HOST": "tcp://far:2376"}) is None
    assert remembered.docker_socket(default, env) == remembered.DEFAULT_SOCKET
    (machine.conf / "config.json").write_text('{"currentContext": "desktop-linux"}')
    assert remembered.docker_socket(INFO, env) == sock
    for broken in ('{"currentContext": 5}', "[" * 100_000, "{"):
        (machine.conf / "config.json").write_text(broken)
        assert remembered.docker_socket(INFO, env) in (None, remembered.DEFAULT_SOCKET)


def test_docker_installed_as_a_snap_is_never_kept(machine: Machine) -> None:
    # /snap/bin/docker -> /usr/bin/snap: the snap's CLI keeps its configuration under
    # ~/snap/docker/<revision>, and a refresh does not change what PATH names
    snap = machine.root / "snap" / "bin"
    snap.mkdir(parents=True)
    (snap / "docker").symlink_to(machine.root / "bin" / "docker")
    machine.env["PATH"] = str(snap)
    assert machine.fp() is not None  # (it resolves to a docker outside /snap/)
    real = machine.root / "usr-bin" / "snap" / "snap"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    (snap / "docker").unlink()
    (snap / "docker").symlink_to(real)
    assert machine.fp() is None


# -- the daemon's own answer -----------------------------------------------------------

def test_the_daemon_is_asked_on_its_socket(machine: Machine) -> None:
    got = remembered.daemon_info(str(machine.daemon.path))
    assert got is not None and got["ServerVersion"] == "26.1.5"
    machine.daemon.status = 500
    assert remembered.daemon_info(str(machine.daemon.path)) is None
    machine.daemon.status, machine.daemon.info = 200, {"message": "not info"}
    assert remembered.daemon_info(str(machine.daemon.path)) is None
    machine.daemon.info = {"ServerVersion": "x", "Big": "y" * (remembered.MAX_FILE + 10)}
    assert remembered.daemon_info(str(machine.daemon.path)) is None
    machine.daemon.stop()  # the socket file stays, nothing accepts on it
    assert remembered.daemon_info(str(machine.daemon.path)) is None


def test_an_answer_is_read_to_its_length_on_a_connection_kept_open(machine: Machine) -> None:
    machine.daemon.keep_open = True
    t0 = time.monotonic()
    got = remembered.daemon_info(str(machine.daemon.path))
    assert got is not None and got["ServerVersion"] == "26.1.5"
    assert time.monotonic() - t0 < 1  # not the whole deadline


def test_a_daemon_that_does_not_answer_is_given_up_in_time(tmp_path: Path) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pa-mute-{os.getpid()}.sock"
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(path))
    mute.listen(1)  # accepts (the kernel does), never answers
    try:
        t0 = time.monotonic()
        assert remembered.daemon_info(str(path), timeout=0.3) is None
        assert time.monotonic() - t0 < 2
    finally:
        mute.close()
        path.unlink()


def test_answers_no_command_will_take_are_pruned(machine: Machine) -> None:
    machine.keep(INFO, cli_info())
    root = machine.root / "cache" / "engine"
    [f] = list(root.iterdir())
    remembered.prune(root)
    assert f.exists()
    old = time.time() - 2 * max(remembered.MAX_AGE, 3600)
    os.utime(f, (old, old))
    remembered.prune(root)
    assert not f.exists()
