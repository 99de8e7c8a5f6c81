"""Preflight's engine look-ups (``docker info``, ``docker buildx inspect``) made from
what earlier commands kept: a later build runs neither command (the daemon is asked on
its socket); a change they depend on makes it run them.

The docker CLI and the buildx plugin the commands run are the real ones behind shims
that write down every command line they are given."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_helpers import polyarch

from polyarch.engines import buildx_plugin


def _shim(path: Path, real: str, log: Path, word: str) -> None:
    path.write_text(f'#!/bin/sh\necho "{word} $*" >> "{log}"\nexec "{real}" "$@"\n')
    path.chmod(0o755)


@pytest.mark.engine
@pytest.mark.usefixtures("cache_dir")
def test_a_second_build_takes_the_engines_answers_until_something_they_depend_on_changes(
        hello_context: Path, tmp_path: Path) -> None:
    real_docker, real_plugin = shutil.which("docker"), buildx_plugin.find()
    assert real_docker is not None and real_plugin is not None
    log = tmp_path / "ran.log"
    bin_dir, conf = tmp_path / "bin", tmp_path / "docker-config"
    bin_dir.mkdir()
    (conf / "cli-plugins").mkdir(parents=True)
    _shim(bin_dir / "docker", real_docker, log, "docker")
    _shim(conf / "cli-plugins" / "docker-buildx", real_plugin, log, "buildx")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DOCKER_CONFIG": str(conf)}

    def build_and_look_ups() -> list[str]:
        log.unlink(missing_ok=True)
        run = polyarch("build", "--platform", "linux/amd64,linux/arm64", str(hello_context),
                       env=env)
        assert run.code == 0, run.err
        ran = log.read_text().splitlines()
        assert any(line.startswith("buildx build ") for line in ran), ran  # (the shims ran)
        return [line for line in ran
                if line.startswith("docker info") or line.startswith("buildx inspect")]

    both = ["buildx inspect", "docker info --format {{json .}}"]
    assert sorted(build_and_look_ups()) == both  # nothing kept yet
    # The first build with this configuration directory makes buildx's state in it:
    # the builder is asked again, the CLI's plugins are not.
    assert "docker info --format {{json .}}" not in build_and_look_ups()
    assert build_and_look_ups() == []  # kept: only the daemon is asked, on its socket
    (conf / "config.json").write_text("{}\n")  # the CLI's configuration changed
    assert sorted(build_and_look_ups()) == both
    assert build_and_look_ups() == []
