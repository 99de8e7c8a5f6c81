"""The look-ups of a command answered from what earlier commands kept: the daemon asked
on its socket and no command run, the commands run where anything no longer fits, and
a preflight that failed on kept answers asking again (the machine:
:mod:`.remembered_machine`)."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from polyarch import proc
from polyarch.engines import probes, remembered
from polyarch.engines.buildx import parse_inspect

from .remembered_machine import DOCKER_DRIVER, INFO, INSPECT, Machine, cli_info, server


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
