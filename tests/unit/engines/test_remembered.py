"""Engine look-ups made cheaper with what an earlier command learnt: the daemon's part
asked fresh on its socket, the rest taken only while nothing it depends on changed,
only what polyarch reads of it, and asked again when a preflight fails on it.

The machine here is made of files and one thread: a daemon socket answering ``GET
/info`` (a thread of the test serves it, no process), the docker CLI's configuration
directory, a ``docker`` on PATH, the plugin directories and the kernel's emulator
registrations (a directory standing for ``/proc/sys/fs/binfmt_misc``)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from polyarch import proc
from polyarch.engines import buildx_plugin, probes, remembered
from polyarch.engines.buildx import parse_inspect

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


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
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


# -- the look-ups of a command ---------------------------------------------------------

@pytest.fixture
def in_env(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> Machine:
    for k, v in machine.env.items():
        monkeypatch.setenv(k, v)
    for k in ("DOCKER_CONTEXT", "BUILDX_CONFIG", "BUILDX_BUILDER"):
        monkeypatch.delenv(k, raising=False)
    return machine


def _taken(p: probes.Probes, argv: list[str], out: str) -> proc.Result:
    """What a look-up that ran answered, taken as preflight takes it."""
    fut: Future[proc.Result] = Future()
    fut.set_result(proc.Result(tuple(argv), 0, out, ""))
    p._early[probes._key(argv)] = (time.monotonic(), fut, remembered.fingerprint(argv, os.environ))
    return p.run(argv)


def test_a_second_command_asks_the_daemon_only(in_env: Machine) -> None:
    first = probes.Probes()
    _taken(first, INSPECT, DOCKER_DRIVER)  # kept once the daemon is known...
    _taken(first, INFO, cli_info())  # ...from docker info's answer
    second = probes.Probes()
    second.start([INFO, INSPECT])
    info, inspect = second.run(INFO), second.run(INSPECT)
    assert in_env.daemon.asked == 1  # and no command ran (the unit-test guard)
    assert json.loads(info.stdout)["ServerVersion"] == "26.1.5"
    assert json.loads(info.stdout)["ClientInfo"]["Plugins"][0]["Path"] == INSPECT[0]
    assert parse_inspect(inspect.stdout) == parse_inspect(DOCKER_DRIVER)
    assert sorted(second.recalled) == sorted([tuple(INFO), tuple(INSPECT)])


def test_a_daemon_that_changed_gets_its_builder_asked_again(in_env: Machine) -> None:
    first = probes.Probes()
    _taken(first, INFO, cli_info())
    _taken(first, INSPECT, DOCKER_DRIVER)
    in_env.daemon.info = server(DriverStatus=[["driver-type", "overlay2"]])  # store off
    second = probes.Probes()
    second.start([INFO, INSPECT])
    info = second.run(INFO)
    assert json.loads(info.stdout)["DriverStatus"] == [["driver-type", "overlay2"]]
    with pytest.raises(AssertionError, match="'inspect'"):  # runs buildx inspect (refused here)
        second.run(INSPECT)


def test_a_daemon_that_does_not_answer_gets_both_commands_run(in_env: Machine) -> None:
    first = probes.Probes()
    _taken(first, INFO, cli_info())
    _taken(first, INSPECT, DOCKER_DRIVER)
    in_env.daemon.status = 503  # a supervisor holds the socket, the daemon did not start
    second = probes.Probes()
    second.start([INFO, INSPECT])
    for argv in (INFO, INSPECT):
        with pytest.raises(AssertionError, match="a unit test tried to start a process"):
            second.run(argv)
    assert second.recalled == []


def test_nothing_kept_starts_the_commands_at_once(in_env: Machine) -> None:
    p = probes.Probes()
    p.start([INFO, INSPECT])
    assert in_env.daemon.asked == 0  # nothing to recall: the daemon is not asked
    for argv in (INFO, INSPECT):
        with pytest.raises(AssertionError, match="a unit test tried to start a process"):
            p.run(argv)


def test_answers_a_failed_preflight_was_given_are_forgotten(in_env: Machine) -> None:
    first = probes.Probes()
    _taken(first, INFO, cli_info())
    _taken(first, INSPECT, DOCKER_DRIVER)
    second = probes.Probes()
    second.start([INFO, INSPECT])
    second.run(INFO), second.run(INSPECT)
    assert second.forget_recalled() is True
    assert not list((in_env.root / "cache" / "engine").glob("*.json"))
    assert second.forget_recalled() is False


def test_a_preflight_that_fails_on_kept_answers_asks_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.engines import buildx_plan
    from polyarch.engines.base import Check, Plan
    from polyarch.engines.buildx import Buildx
    from polyarch.errors import EnvironmentProblem
    from polyarch.platforms import parse_platforms

    plans = [Plan(checks=[Check("builder", False, "stale", "", EnvironmentProblem)]),
             Plan(checks=[Check("builder", True, "fresh")])]
    calls: list[object] = []
    monkeypatch.setattr(buildx_plan, "preflight",
                        lambda bx, *a, **k: calls.append(bx._info_result) or plans.pop(0))
    bx = Buildx()
    bx._info_result = proc.Result(tuple(INFO), 0, cli_info(), "")
    bx.probes.recalled.append(tuple(INFO))
    monkeypatch.setattr(remembered, "forget", lambda argv, env: calls.append(tuple(argv)))
    plan = bx.preflight(parse_platforms("linux/amd64"))
    assert plan.ok and calls[1] == tuple(INFO) and calls[2] is None  # forgotten, asked again
    assert len(calls) == 3


def test_a_failure_kept_answers_cannot_cause_or_after_a_builder_was_set_up_is_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.engines import buildx_plan
    from polyarch.engines.base import Check, Plan
    from polyarch.engines.buildx import Buildx
    from polyarch.errors import EnvironmentProblem
    from polyarch.platforms import parse_platforms

    for plan in (Plan(checks=[Check("engine", False, "not reachable", "", EnvironmentProblem)]),
                 Plan(checks=[Check("builder", False, "could not boot", "", EnvironmentProblem)],
                      setup_commands=[["docker", "buildx", "create", "--name", "polyarch"]]),
                 Plan(checks=[Check("platform linux/arm64", False, "emulated", "", None)])):
        monkeypatch.setattr(buildx_plan, "preflight", lambda bx, *a, _p=plan, **k: _p)
        bx = Buildx()
        bx.probes.recalled.append(tuple(INFO))
        assert bx.preflight(parse_platforms("linux/arm64")) is plan
        assert bx.probes.recalled == [tuple(INFO)]  # not forgotten: not asked again


def test_a_look_up_whose_thread_failed_gets_the_error_not_a_hang(
        in_env: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(BaseException):
        pass

    def broken(*a: object) -> None:
        raise Broken("no answer")

    first = probes.Probes()
    _taken(first, INFO, cli_info())
    monkeypatch.setattr(remembered, "daemon_info", broken)  # (not an Exception)
    second = probes.Probes()
    second.start([INFO])
    with pytest.raises(Broken):
        second.run(INFO)


def test_a_config_files_cache_dir_keeps_nothing(in_env: Machine, tmp_path: Path) -> None:
    from dataclasses import replace

    from polyarch import settings

    with settings.using(replace(settings.current(), cache_dir=tmp_path / "elsewhere")):
        _taken(probes.Probes(), INFO, cli_info())
    assert not (in_env.root / "cache" / "engine").exists()
    assert not (tmp_path / "elsewhere").exists()


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
