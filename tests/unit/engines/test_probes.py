"""Engine look-ups started early: which command lines, and when a result is used.

Processes cannot start here: an early look-up's result is the unit-test guard's
AssertionError naming the command line it tried to start."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future

import pytest

from polyarch import proc
from polyarch.engines import probes
from polyarch.engines.buildx import Buildx


@pytest.fixture(autouse=True)
def _clean() -> None:
    probes._early.clear()


def _started() -> list[tuple[str, ...]]:
    return sorted(argv for argv, _ in probes._early)


def test_start_makes_the_two_preflight_look_ups_of_the_options() -> None:
    probes.start({"engine": None, "docker_context": "remote", "builder": "b1"})
    assert _started() == [
        ("docker", "--context", "remote", "buildx", "inspect", "b1"),
        ("docker", "--context", "remote", "info", "--format", "{{json .}}"),
    ]
    bx = Buildx(docker_context="remote", builder="b1")
    # The result taken is the early one (here: the guard refusing to start it).
    with pytest.raises(AssertionError, match="'buildx', 'inspect', 'b1'"):
        bx.inspect_builder("b1")
    assert len(probes._early) == 1


@pytest.mark.parametrize("options", [{"engine": "podman"}, {"engine": "auto"},
                                     {"nodes": ("linux/arm64=ssh://arm",)}])
def test_nothing_starts_for_other_engines_or_nodes(options: dict[str, object]) -> None:
    probes.start(options)
    assert probes._early == {}


def test_environment_gives_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYARCH_ENGINE", "podman")
    probes.start({})
    assert probes._early == {}


def _early(argv: list[str], result: proc.Result, age: float = 0.0) -> None:
    fut: Future[proc.Result] = Future()
    fut.set_result(result)
    probes._early[probes._key(argv)] = (time.monotonic() - age, fut)


INFO = ["docker", "info", "--format", "{{json .}}"]


def _info(plugins: list[dict[str, str]]) -> str:
    """``docker info --format '{{json .}}'`` output, the parts polyarch reads (the
    shape of Docker 26's; the docker CLI lists each plugin it ran, or its error)."""
    return json.dumps({
        "ServerVersion": "26.1.5", "Architecture": "x86_64", "OSType": "linux",
        "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
        "ClientInfo": {"Version": "28.2.2", "Plugins": plugins}})


BUILDX = {"SchemaVersion": "0.1.0", "Vendor": "Docker Inc.", "Version": "0.13.1+ds1",
          "Name": "buildx", "Path": "/usr/libexec/docker/cli-plugins/docker-buildx"}


def test_a_result_is_used_once_and_only_while_fresh() -> None:
    _early(INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    assert Buildx().engine_info().server_version == "26.1.5"
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        Buildx().engine_info()  # used already: runs again
    _early(INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""), age=probes.MAX_AGE + 1)
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        Buildx().engine_info()


def test_one_docker_info_gives_the_engine_and_the_buildx_version() -> None:
    _early(INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    bx = Buildx()
    assert bx.engine_info().containerd_store
    assert bx.buildx_version() == "0.13.1"  # from the same answer: nothing runs again
    assert bx.engine_info().arch == "x86_64"


@pytest.mark.parametrize("plugins", [[], [{**BUILDX, "Err": "exec format error"}],
                                     [{**BUILDX, "Name": "compose"}]],
                         ids=["not listed", "listed with an error", "another plugin"])
def test_buildx_missing_from_docker_info_is_asked_directly(plugins: list[dict[str, str]]) -> None:
    _early(INFO, proc.Result(tuple(INFO), 0, _info(plugins), ""))
    with pytest.raises(AssertionError, match="'buildx', 'version'"):
        Buildx().buildx_version()


def test_another_environment_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    _early(INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        Buildx().buildx_version()


def test_preflight_asks_each_engine_once_and_asks_again_after_a_miss() -> None:
    """A project of many images runs one preflight per image on the session's one engine:
    a look-up that answered is not made again for that engine; one that found nothing
    (or failed) is."""
    from polyarch.pipeline.plan import _once

    calls: list[str] = []
    answers = iter([None, "builder b", "other"])

    def inspect() -> str | None:
        calls.append("inspect")
        return next(answers)

    engine, other_engine = Buildx(), Buildx()
    assert _once(engine, "builder", inspect)() is None  # not found: not kept
    assert _once(engine, "builder", inspect)() == "builder b"
    assert _once(engine, "builder", inspect)() == "builder b"  # kept
    assert len(calls) == 2
    assert _once(other_engine, "builder", inspect)() == "other"  # another engine asks
    assert len(calls) == 3


def test_the_argv_flags_are_the_option_tables() -> None:
    from polyarch.config.table import BY_NAME

    for flag, name in probes.ARGV_FLAGS.items():
        assert BY_NAME[name].flags[-1] == flag
        assert {"publish", "build"} <= set(BY_NAME[name].commands or ())


@pytest.mark.parametrize("argv", [["publish", "--context", "remote", "--builder=b1", "."],
                                  ["build", "--context=remote", "-t", "x", "--builder", "b1"]])
def test_the_raw_command_line_starts_the_look_ups_and_the_command_keeps_them(
        argv: list[str]) -> None:
    probes.start_from_argv(argv)
    early = dict(probes._early)
    assert _started() == [
        ("docker", "--context", "remote", "buildx", "inspect", "b1"),
        ("docker", "--context", "remote", "info", "--format", "{{json .}}"),
    ]
    # The command, its options parsed, asks for the same look-ups: the running ones stay.
    probes.start({"docker_context": "remote", "builder": "b1"})
    assert probes._early == early
    # Other options: other look-ups, the early ones dropped.
    probes.start({"docker_context": "other"})
    assert _started() == [("docker", "--context", "other", "buildx", "inspect"),
                          ("docker", "--context", "other", "info", "--format", "{{json .}}")]


@pytest.mark.parametrize("argv", [["publish", "--dry-run", "."], ["build", "--help"],
                                  ["publish", "-t", "x", "-h"],
                                  ["verify", "oci:x"], ["tags"], []])
def test_nothing_starts_from_a_dry_run_help_or_another_command(argv: list[str]) -> None:
    probes.start_from_argv(argv)
    assert probes._early == {}
