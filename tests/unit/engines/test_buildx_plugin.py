"""The buildx plugin run directly: found where the docker CLI finds it, or not used."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from polyarch import proc
from polyarch.engines import buildx_plugin, probes, start_engine
from polyarch.engines.buildx import Buildx


def plugin(d: Path, mode: int = 0o755) -> str:
    d.mkdir(parents=True, exist_ok=True)
    p = d / "docker-buildx"
    p.write_text("#!/bin/sh\n")
    p.chmod(mode)
    return str(p)


@pytest.fixture
def no_system_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The system directories, under tmp_path (in the CLI's order)."""
    dirs = tuple(str(tmp_path / "sys" / str(i)) for i in range(4))
    monkeypatch.setattr(buildx_plugin, "SYSTEM_DIRS", dirs)
    return tmp_path / "sys"


def test_the_configuration_directory_comes_first(tmp_path: Path, no_system_dirs: Path) -> None:
    plugin(no_system_dirs / "3")
    env = {"DOCKER_CONFIG": str(tmp_path / "conf")}
    assert buildx_plugin.find(env) == str(no_system_dirs / "3" / "docker-buildx")
    own = plugin(tmp_path / "conf" / "cli-plugins")
    assert buildx_plugin.find(env) == own
    plugin(no_system_dirs / "1")
    assert buildx_plugin.find(env) == own


def test_system_directories_in_the_cli_order(tmp_path: Path, no_system_dirs: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "conf")}
    assert buildx_plugin.find(env) is None
    plugin(no_system_dirs / "2")
    plugin(no_system_dirs / "1", mode=0o644)  # not executable: the CLI skips it too
    assert buildx_plugin.find(env) == str(no_system_dirs / "2" / "docker-buildx")


def test_home_is_the_default_configuration_directory(
        tmp_path: Path, no_system_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    own = plugin(tmp_path / ".docker" / "cli-plugins")
    assert buildx_plugin.find({}) == own


@pytest.mark.parametrize("config", [{"cliPluginsExtraDirs": ["/opt/plugins"]}, "not json",
                                    [1, 2]])
def test_extra_plugin_directories_or_a_broken_configuration_leave_it_to_docker(
        tmp_path: Path, no_system_dirs: Path, config: object) -> None:
    conf = tmp_path / "conf"
    plugin(conf / "cli-plugins")
    (conf / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    assert buildx_plugin.find({"DOCKER_CONFIG": str(conf)}) is None
    (conf / "config.json").write_text(json.dumps({"auths": {}, "cliPluginsExtraDirs": []}))
    assert buildx_plugin.find({"DOCKER_CONFIG": str(conf)}) is not None


def test_a_huge_configuration_is_not_read(tmp_path: Path, no_system_dirs: Path) -> None:
    conf = tmp_path / "conf"
    plugin(conf / "cli-plugins")
    (conf / "config.json").write_bytes(b" " * (buildx_plugin.MAX_CONFIG + 1))
    assert buildx_plugin.find({"DOCKER_CONFIG": str(conf)}) is None


def test_command_lines_run_the_plugin_unless_a_context_is_named() -> None:
    p = "/usr/libexec/docker/cli-plugins/docker-buildx"
    assert Buildx(plugin=p).buildx("build", ".") == [p, "build", "."]
    assert Buildx(plugin=p, docker_context="remote").buildx("ls") == [
        "docker", "--context", "remote", "buildx", "ls"]
    assert Buildx().buildx("ls") == ["docker", "buildx", "ls"]
    assert probes.preflight_argvs(None, "b1", p)[1] == [p, "inspect", "b1"]
    assert probes._timeout([p, "inspect"]) == probes.TIMEOUTS["inspect"]
    # Messages name it as the docker CLI would.
    assert proc.command_name([p, "build", "--platform", "x"]) == "docker buildx build"


def test_start_engine_starts_the_plugin_it_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildx_plugin, "find", lambda env=None: "/p/docker-buildx")
    bx = start_engine({"engine": None})
    assert isinstance(bx, Buildx) and bx.plugin == "/p/docker-buildx"
    assert ("/p/docker-buildx", "inspect") in bx.probes.started()


def info(path: str | None) -> proc.Result:
    plugins = [{"Name": "compose", "Path": "/x/docker-compose"}]
    if path is not None:
        plugins.append({"Name": "buildx", "Path": path, "Version": "v0.13.1"})
    doc = {"ServerVersion": "26.1.5", "ClientInfo": {"Plugins": plugins}}
    return proc.Result(("docker", "info"), 0, json.dumps(doc), "")


@pytest.mark.parametrize("listed", ["/usr/local/lib/docker/cli-plugins/docker-buildx", None])
def test_docker_info_naming_another_plugin_sends_it_back_to_docker_buildx(
        listed: str | None) -> None:
    p = "/usr/libexec/docker/cli-plugins/docker-buildx"
    bx = Buildx(plugin=p)
    fut: Future[proc.Result] = Future()
    fut.set_result(info(listed))
    bx.probes._early[probes._key(probes.docker_argv(None, *probes.INFO))] = (
        time.monotonic(), fut, None)
    bx._check_plugin(ask=True)
    assert bx.plugin is None and bx.buildx("inspect") == ["docker", "buildx", "inspect"]


def test_docker_info_naming_the_same_plugin_keeps_it() -> None:
    p = "/usr/libexec/docker/cli-plugins/docker-buildx"
    bx = Buildx(plugin=p)
    bx._info_result = info(p)
    bx._check_plugin(ask=False)
    assert bx.plugin == p
    assert os.path.basename(bx.buildx("build")[0]) == "docker-buildx"


def test_a_dry_run_shows_the_command_as_docker_runs_it() -> None:
    assert buildx_plugin.as_docker(["/usr/libexec/docker/cli-plugins/docker-buildx", "build",
                                    "."]) == ["docker", "buildx", "build", "."]
    assert buildx_plugin.as_docker(["docker", "buildx", "ls"]) == ["docker", "buildx", "ls"]
