"""Engine look-ups started early: which command lines, and when a result is used.

Processes cannot start here: an early look-up's result is the unit-test guard's
AssertionError naming the command line it tried to start."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest

from polyarch import proc
from polyarch.config import Options
from polyarch.engines import probes, select_engine, start_engine
from polyarch.engines.buildx import Buildx


def test_start_makes_the_three_preflight_look_ups_of_the_options() -> None:
    bx = start_engine({"engine": None, "docker_context": "remote", "builder": "b1"})
    assert isinstance(bx, Buildx)
    assert bx.probes.started() == [
        ("docker", "--context", "remote", "buildx", "inspect", "b1"),
        ("docker", "--context", "remote", "buildx", "version"),
        ("docker", "--context", "remote", "info", "--format", "{{json .}}"),
    ]
    # The result taken is the early one (here: the guard refusing to start it).
    with pytest.raises(AssertionError, match="'buildx', 'inspect', 'b1'"):
        bx.inspect_builder("b1")
    assert len(bx.probes.started()) == 2


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
    other = Options(platforms=(), docker_context="remote")
    chosen = select_engine(other, started)
    assert chosen is not started and isinstance(chosen, Buildx)
    assert chosen.requested_builder is None


def _early(bx: Buildx, argv: list[str], result: proc.Result, age: float = 0.0) -> None:
    fut: Future[proc.Result] = Future()
    fut.set_result(result)
    bx.probes._early[probes._key(argv)] = (time.monotonic() - age, fut)


def test_a_result_is_used_once_and_only_while_fresh() -> None:
    argv = ["docker", "buildx", "version"]
    bx = Buildx()
    _early(bx, argv, proc.Result(tuple(argv), 0, "github.com/docker/buildx v0.13.1 abc\n", ""))
    assert bx.buildx_version() == "0.13.1"
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        bx.buildx_version()  # used already: runs again
    _early(bx, argv, proc.Result(tuple(argv), 0, "v0.13.1", ""), age=probes.MAX_AGE + 1)
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        bx.buildx_version()


def test_another_engine_object_does_not_take_the_result() -> None:
    argv = ["docker", "buildx", "version"]
    bx = Buildx()
    _early(bx, argv, proc.Result(tuple(argv), 0, "v0.13.1", ""))
    with pytest.raises(AssertionError, match="a unit test tried to start a process"):
        Buildx().buildx_version()


def test_another_environment_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["docker", "buildx", "version"]
    bx = Buildx()
    _early(bx, argv, proc.Result(tuple(argv), 0, "v0.13.1", ""))
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
