"""Builder nodes through the CLI: the real docker and buildx CLIs with a DOCKER_CONFIG of
their own (so the builders they create never touch the machine's), against endpoints
that refuse connections here and, for the real creation, the sockets of the two local
engines."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import free_port

from polyarch.engines.buildx import parse_inspect


@pytest.fixture
def own_docker_config(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A DOCKER_CONFIG of its own: the builders made here are not the machine's."""
    d = tmp_path / "docker-config"
    d.mkdir()
    real = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    if (real / "cli-plugins").exists():
        (d / "cli-plugins").symlink_to(real / "cli-plugins")
    yield {"DOCKER_CONFIG": str(d)}


def write_config(where: Path, body: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "polyarch.toml").write_text(body)
    (where / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")


@pytest.mark.engine
def test_dry_run_prints_the_create_commands(tmp_path: Path, repo: str,
                                            own_docker_config: dict[str, str]) -> None:
    amd_port, arm_port = free_port(), free_port()
    proj = tmp_path / "proj"
    write_config(proj, f"""\
platforms = ["linux/amd64", "linux/arm64"]

[[nodes]]
platforms = ["linux/amd64"]
endpoint = "tcp://127.0.0.1:{amd_port}"

[[nodes]]
name = "graviton"
platforms = ["linux/arm64"]
endpoint = "ssh://ci@127.0.0.1:{arm_port}"
driver-opts = {{ network = "host" }}
""")
    run = polyarch("publish", "--dry-run", "-t", f"{repo}:1", cwd=proj, env=own_docker_config)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[1:3] == [
        "docker buildx create --name polyarch --node polyarch-0 --platform linux/amd64"
        f" --driver docker-container tcp://127.0.0.1:{amd_port}",
        "docker buildx create --name polyarch --node polyarch-graviton --platform linux/arm64"
        f" --driver docker-container --driver-opt network=host --append"
        f" ssh://ci@127.0.0.1:{arm_port}",
    ]
    assert lines[3].startswith("docker buildx build --builder polyarch --platform"
                               " linux/amd64,linux/arm64 ")
    # The dry run says the endpoints do not answer, but changes nothing.
    assert f"tcp://127.0.0.1:{amd_port} unreachable" in run.err
    ls = subprocess.run(["docker", "buildx", "ls"], capture_output=True, text=True,
                        env={**os.environ, **own_docker_config})
    assert "polyarch" not in ls.stdout

    # build --stage --dry-run prints the same setup.
    run = polyarch("build", "--stage", "--dry-run", "--platform", "linux/arm64", "-t",
                   f"{repo}:1", cwd=proj, env=own_docker_config)
    assert run.code == 0, run.err
    assert run.out.splitlines()[2].endswith(f"--append ssh://ci@127.0.0.1:{arm_port}")


@pytest.mark.engine
def test_unreachable_endpoint_is_exit_3(tmp_path: Path, repo: str,
                                        own_docker_config: dict[str, str]) -> None:
    port = free_port()
    proj = tmp_path / "proj"
    write_config(proj, f"""\
[[nodes]]
name = "graviton"
platforms = ["linux/arm64"]
endpoint = "ssh://ci@127.0.0.1:{port}"
""")
    run = polyarch("build", "--stage", "--platform", "linux/arm64", "-t", f"{repo}:1",
                   cwd=proj, env=own_docker_config)
    assert run.code == 3, run.err
    line = last_error_line(run)
    assert line.startswith(f"polyarch: error: node polyarch-graviton (ssh://ci@127.0.0.1:{port}):"
                           f" endpoint ssh://ci@127.0.0.1:{port} unreachable: cannot connect")
    assert "buildx create" not in run.err  # nothing was run against it

    # A docker context that does not exist.
    write_config(proj, '[[nodes]]\nplatforms = ["linux/arm64"]\nendpoint = "arm-box"\n')
    run = polyarch("publish", "-t", f"{repo}:1", cwd=proj, env=own_docker_config)
    assert run.code == 3, run.err
    assert "node polyarch-0 (arm-box): endpoint arm-box unreachable: no docker context named" \
        " 'arm-box'" in last_error_line(run)

    # doctor shows it, and where each platform would build.
    write_config(proj, f"""\
platforms = ["linux/amd64", "linux/arm64"]
[[nodes]]
name = "graviton"
platforms = ["linux/arm64"]
endpoint = "tcp://127.0.0.1:{port}"
driver = "remote"
""")
    run = polyarch("doctor", "--json", cwd=proj, env=own_docker_config)
    assert run.code == 3, run.err
    checks = {c["name"]: c for c in run.json()["checks"]}
    node = checks[f"node polyarch-graviton (tcp://127.0.0.1:{port})"]
    assert node["ok"] is False and node["blocking"] is True
    assert checks["platform linux/arm64"]["detail"] == \
        f"native on polyarch-graviton (tcp://127.0.0.1:{port})"
    assert checks["platform linux/amd64"]["detail"].startswith("emulated on polyarch-graviton")


@pytest.mark.engine
def test_nodes_create_and_update_the_builder(tmp_path: Path, repo: str, engine2: str,
                                             own_docker_config: dict[str, str]) -> None:
    """Real ``buildx create`` against reachable endpoints (the two local engines' sockets).
    The builder is made and updated; the build itself may not get further than booting
    BuildKit where the moby/buildkit image cannot be pulled, which is not asserted."""
    engine1 = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    env = {**os.environ, **own_docker_config}
    proj = tmp_path / "proj"
    write_config(proj, f"""\
[[nodes]]
name = "one"
platforms = ["linux/amd64"]
endpoint = "{engine1}"
[[nodes]]
name = "two"
platforms = ["linux/arm64"]
endpoint = "{engine2}"
""")
    polyarch("build", "--stage", "--platform", "linux/amd64,linux/arm64", "-t", f"{repo}:1",
             cwd=proj, env=own_docker_config, timeout=300)
    out = subprocess.run(["docker", "buildx", "inspect", "polyarch"], capture_output=True,
                         text=True, env=env, check=True).stdout
    b = parse_inspect(out)
    assert b.driver == "docker-container"
    assert [(n.name, n.endpoint) for n in b.nodes] == [("polyarch-one", engine1),
                                                       ("polyarch-two", engine2)]
    assert "linux/arm64" in b.nodes[1].platforms

    # Drop a node, move arm64 to the first: the next run updates the builder in place.
    write_config(proj, f"""\
[[nodes]]
name = "one"
platforms = ["linux/amd64", "linux/arm64"]
endpoint = "{engine1}"
""")
    run = polyarch("publish", "--dry-run", "-t", f"{repo}:1", cwd=proj, env=own_docker_config)
    assert run.code == 0, run.err
    assert run.out.splitlines()[1:3] == [
        "docker buildx create --name polyarch --node polyarch-two --leave",
        "docker buildx create --name polyarch --node polyarch-one --platform"
        f" linux/amd64,linux/arm64 --driver docker-container --append {engine1}",
    ]
    polyarch("build", "--stage", "--platform", "linux/arm64", "-t", f"{repo}:1", cwd=proj,
             env=own_docker_config, timeout=300)
    b = parse_inspect(subprocess.run(["docker", "buildx", "inspect", "polyarch"],
                                     capture_output=True, text=True, env=env,
                                     check=True).stdout)
    assert [n.name for n in b.nodes] == ["polyarch-one"]
    assert {"linux/amd64", "linux/arm64"} <= set(b.nodes[0].platforms)
    subprocess.run(["docker", "buildx", "rm", "polyarch"], capture_output=True, env=env)
