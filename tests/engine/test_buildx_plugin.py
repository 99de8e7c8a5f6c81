"""The buildx plugin run directly, where the docker CLI would run that one; through
``docker buildx`` where its configuration names more plugin directories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import polyarch

from polyarch.engines import buildx_plugin

from .helpers import echoed_build


def listed_by_docker(env: dict[str, str] | None = None) -> str | None:
    r = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True,
                       text=True, timeout=60, env=env)
    return buildx_plugin.listed_path(r.stdout)


@pytest.mark.engine
def test_the_build_runs_the_plugin_docker_would_run(hello_context: Path) -> None:
    found = buildx_plugin.find()
    assert found is not None and found == listed_by_docker()
    run = polyarch("build", "--platform", "linux/amd64", str(hello_context),
                   env={"POLYARCH_DEBUG": "1"})
    assert run.code == 0, run.err
    line = echoed_build(run.err)
    assert line is not None and line.startswith(f"+ {found} build "), run.err


@pytest.mark.engine
def test_more_plugin_directories_leave_it_to_docker_buildx(hello_context: Path,
                                                          tmp_path: Path) -> None:
    conf = tmp_path / "docker-config"
    conf.mkdir()
    (conf / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(tmp_path)]}))
    run = polyarch("build", "--platform", "linux/amd64", str(hello_context),
                   env={"POLYARCH_DEBUG": "1", "DOCKER_CONFIG": str(conf)})
    assert run.code == 0, run.err
    line = echoed_build(run.err)
    assert line is not None and line.startswith("+ docker buildx build "), run.err
