"""Engine look-ups started early: which command lines, and when a result is used.

Processes cannot start here: an early look-up's result is the unit-test guard's
AssertionError naming the command line it tried to start."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future

import pytest

from polyarch import proc
from polyarch.__main__ import builds
from polyarch.config import Options
from polyarch.engines import probes, select_engine, start_at_entry, start_engine
from polyarch.engines.buildx import Buildx


def test_start_makes_the_two_preflight_look_ups_of_the_options() -> None:
    bx = start_engine({"engine": None, "docker_context": "remote", "builder": "b1"})
    assert isinstance(bx, Buildx)
    assert bx.probes.started() == [
        ("docker", "--context", "remote", "buildx", "inspect", "b1"),
        ("docker", "--context", "remote", "info", "--format", "{{json .}}"),
    ]
    # The result taken is the early one (here: the guard refusing to start it).
    with pytest.raises(AssertionError, match="'buildx', 'inspect', 'b1'"):
        bx.inspect_builder("b1")
    assert len(bx.probes.started()) == 1


@pytest.mark.parametrize("options", [{"engine": "podman"}, {"engine": "auto"},
                                     {"nodes": ("linux/arm64=ssh://arm",)}])
def test_nothing_starts_for_other_engines_or_nodes(options: dict[str, object]) -> None:
    assert start_engine(options) is None


def test_environment_gives_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYARCH_ENGINE", "podman")
    assert start_engine({}) is None


def test_the_session_engine_is_the_started_one_only_where_the_options_agree() -> None:
    started = Buildx(docker_context="remote", builder="b1")
    same = Options(platforms=(), docker_context="remote", builder="b1")
    assert select_engine(same, started) is started
    assert started.probes._cancel.error is None
    other = Options(platforms=(), docker_context="remote")
    chosen = select_engine(other, started)
    assert chosen is not started and isinstance(chosen, Buildx)
    assert chosen.requested_builder is None
    assert started.probes._cancel.error is not None  # its look-ups are stopped


def test_a_config_that_says_podman_stops_the_started_look_ups() -> None:
    started = Buildx()
    chosen = select_engine(Options(platforms=(), engine="podman"), started)
    assert chosen is not started and started.probes._cancel.error is not None


def _early(bx: Buildx, argv: list[str], result: proc.Result, age: float = 0.0) -> None:
    fut: Future[proc.Result] = Future()
    fut.set_result(result)
    bx.probes._early[probes._key(argv)] = (time.monotonic() - age, fut, None)


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
    bx = Buildx()
    answer = proc.Result(tuple(INFO), 0, _info([BUILDX]), "")
    _early(bx, INFO, answer)
    assert bx.probes.run(INFO) is answer
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        bx.probes.run(INFO)  # used already: runs again
    _early(bx, INFO, answer, age=probes.MAX_AGE + 1)
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        bx.probes.run(INFO)


def test_another_engine_object_does_not_take_the_result() -> None:
    bx = Buildx()
    _early(bx, INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        Buildx().engine_info()


def test_one_docker_info_gives_the_engine_and_the_buildx_version() -> None:
    bx = Buildx()
    _early(bx, INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    assert bx.engine_info().containerd_store
    assert bx.buildx_version() == "0.13.1"  # from the same answer: nothing runs again
    assert bx.engine_info().arch == "x86_64"


@pytest.mark.parametrize("plugins", [[], [{**BUILDX, "Err": "exec format error"}],
                                     [{**BUILDX, "Name": "compose"}]],
                         ids=["not listed", "listed with an error", "another plugin"])
def test_buildx_missing_from_docker_info_is_asked_directly(plugins: list[dict[str, str]]) -> None:
    bx = Buildx()
    _early(bx, INFO, proc.Result(tuple(INFO), 0, _info(plugins), ""))
    with pytest.raises(AssertionError, match="'buildx', 'version'"):
        bx.buildx_version()


def test_another_environment_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    bx = Buildx()
    _early(bx, INFO, proc.Result(tuple(INFO), 0, _info([BUILDX]), ""))
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        bx.buildx_version()


def test_preflight_asks_each_engine_once_and_asks_again_after_a_miss() -> None:
    """A project of many images runs one preflight per image on the session's one engine:
    a look-up that answered is not made again for that engine; one that found nothing
    (or failed) is."""
    calls: list[str] = []
    answers = iter([None, "builder b", "other"])

    def inspect() -> str | None:
        calls.append("inspect")
        return next(answers)

    engine, other_engine = Buildx(), Buildx()
    assert engine.remember("builder", inspect) is None  # not found: not kept
    assert engine.remember("builder", inspect) == "builder b"
    assert engine.remember("builder", inspect) == "builder b"  # kept
    assert len(calls) == 2
    assert other_engine.remember("builder", inspect) == "other"  # another engine asks
    assert len(calls) == 3


# The program's entry starts the look-ups before the command line is parsed.

@pytest.fixture
def no_entry_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "_at_entry", None)
    for name in ("POLYARCH_ENGINE", "POLYARCH_NODES", "POLYARCH_BUILDER",
                 "POLYARCH_DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_entry_probes")
def test_the_entry_starts_the_default_look_ups_and_the_engine_takes_them() -> None:
    start_at_entry()
    entry = probes._at_entry
    assert entry is not None and len(entry.started()) == 2
    bx = start_engine({"engine": None})
    assert isinstance(bx, Buildx) and bx.probes is entry
    assert probes._at_entry is None  # handed over once


@pytest.mark.usefixtures("no_entry_probes")
def test_options_that_name_another_builder_leave_the_entry_look_ups_unused() -> None:
    start_at_entry()  # for: publish --builder b1 .
    entry = probes._at_entry
    assert entry is not None
    bx = start_engine({"builder": "b1"})
    assert isinstance(bx, Buildx) and bx.probes is not entry
    assert any(a[-2:] == ("inspect", "b1") for a in bx.probes.started())
    assert entry._cancel.error is not None  # what still runs of them is stopped


@pytest.mark.usefixtures("no_entry_probes")
def test_options_that_name_another_engine_stop_the_entry_look_ups() -> None:
    start_at_entry()  # for: publish --engine podman .
    entry = probes._at_entry
    assert entry is not None
    assert start_engine({"engine": "podman"}) is None
    assert probes._at_entry is None and entry._cancel.error is not None


@pytest.mark.usefixtures("no_entry_probes")
def test_look_ups_nobody_took_are_stopped_at_exit() -> None:
    start_at_entry()
    entry = probes._at_entry
    assert entry is not None
    probes.abandon_entry(wait=1.0)  # what the exit hook runs
    assert probes._at_entry is None and entry._cancel.error is not None
    assert not any(t.is_alive() for t in entry._threads)


@pytest.mark.usefixtures("no_entry_probes")
def test_the_environment_names_the_builder_at_the_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYARCH_BUILDER", "b2")
    start_at_entry()
    entry = probes._at_entry
    assert entry is not None and any(a[-2:] == ("inspect", "b2") for a in entry.started())
    assert start_engine({}).probes is entry  # type: ignore[union-attr]


@pytest.mark.parametrize("argv", [["publish", "-t", "r/a:1", "."], ["build", "."],
                                  ["build", "--push", "-t", "r/a:1", "."]])
def test_the_entry_starts_look_ups_for_builds(argv: list[str]) -> None:
    assert builds(argv)


@pytest.mark.parametrize("argv", [[], ["inspect", "r/a:1"], ["lint", "."], ["--help"],
                                  ["publish", "--help"], ["build", "-h"],
                                  ["publish", "--dry-run", "."], ["--verbose", "publish"]])
def test_the_entry_starts_nothing_for_other_commands_help_or_dry_runs(argv: list[str]) -> None:
    assert not builds(argv)


@pytest.mark.usefixtures("no_entry_probes")
@pytest.mark.parametrize(("name", "value"), [("POLYARCH_ENGINE", "podman"),
                                             ("POLYARCH_ENGINE", "auto"),
                                             ("POLYARCH_NODES", "linux/arm64=ssh://arm")])
def test_the_entry_starts_nothing_for_other_engines(monkeypatch: pytest.MonkeyPatch,
                                                    name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    start_at_entry()
    assert probes._at_entry is None
