"""Builder nodes from the configuration: parsing and the buildx commands (pure logic)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from polyarch import config
from polyarch.engines.buildx import BuilderInfo, Buildx, NodeInfo
from polyarch.engines.buildx_nodes import setup_commands
from polyarch.errors import ConfigError
from polyarch.nodespec import parse_nodes
from polyarch.platforms import parse_platform

from ..inprocess import error_line

# -- parsing -----------------------------------------------------------------------------

def test_list_of_tables() -> None:
    nodes = parse_nodes([
        {"platforms": ["linux/amd64"], "endpoint": "default"},
        {"name": "graviton", "platforms": "linux/arm64", "endpoint": "ssh://ci@arm.example",
         "driver-opts": {"network": "host", "memory": 2048}},
    ])
    assert [n.name for n in nodes] == ["polyarch-0", "polyarch-graviton"]
    assert nodes[1].platforms == (parse_platform("linux/arm64"),)
    assert nodes[1].driver == "docker-container"
    assert nodes[1].driver_opts == (("network", "host"), ("memory", "2048"))


def test_table_of_tables_and_env_json() -> None:
    nodes = parse_nodes({"arm": {"platforms": ["arm64"], "endpoint": "tcp://10.0.0.9:1234",
                                 "driver": "remote"}})
    assert nodes[0].name == "polyarch-arm" and nodes[0].driver == "remote"
    assert parse_nodes('[{"platforms": ["linux/arm64"], "endpoint": "arm-box"}]')[0].endpoint \
        == "arm-box"


def test_kubernetes_needs_no_endpoint() -> None:
    n = parse_nodes([{"platforms": ["linux/arm64"], "driver": "kubernetes",
                      "driver-opts": ["namespace=ci", "nodeselector=kubernetes.io/arch=arm64"]}])[0]
    assert n.endpoint is None
    assert n.driver_opts == (("namespace", "ci"), ("nodeselector", "kubernetes.io/arch=arm64"))


@pytest.mark.parametrize(("nodes", "message"), [
    ([{"platforms": ["linux/arm64"], "endpont": "x"}], "unknown key 'endpont'; did you mean 'endpoint'?"),
    ([{"platforms": ["linux/arm64"]}], "'endpoint' is required for the docker-container driver"),
    ([{"platforms": [], "endpoint": "x"}], "'platforms' must be a non-empty list"),
    ([{"platforms": ["linux/arm65"], "endpoint": "x"}], "did you mean linux/arm64"),
    ([{"platforms": ["linux/arm64"], "endpoint": "x", "driver": "docker"}],
     "driver 'docker' is not one of docker-container, remote, kubernetes"),
    ([{"platforms": ["linux/arm64"], "endpoint": "a"},
      {"platforms": ["linux/amd64"], "endpoint": "tcp://b:1234", "driver": "remote"}],
     "all nodes of a builder use one driver"),
    ([{"platforms": ["linux/arm64"], "endpoint": "a"},
      {"platforms": ["linux/arm64", "linux/amd64"], "endpoint": "b"}],
     "linux/arm64 is given to two nodes (polyarch-0 and polyarch-1)"),
    ([{"name": "x", "platforms": ["linux/arm64"], "endpoint": "a"},
      {"name": "x", "platforms": ["linux/amd64"], "endpoint": "b"}], "two nodes are named polyarch-x"),
    ([{"name": "no spaces", "platforms": ["linux/arm64"], "endpoint": "a"}], "name 'no spaces'"),
])
def test_bad_nodes_in_config(tmp_path: Path, nodes: list[dict[str, object]], message: str) -> None:
    import json

    with pytest.raises(ConfigError) as e:
        config.load({}, env={"POLYARCH_NODES": json.dumps(nodes)}, cwd=tmp_path)
    assert message in e.value.message
    assert "POLYARCH_NODES" in e.value.message


def test_nodes_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.polyarch]\nplatforms = ['linux/amd64', 'linux/arm64']\n"
        "[[tool.polyarch.nodes]]\nplatforms = ['linux/amd64']\nendpoint = 'default'\n"
        "[[tool.polyarch.nodes]]\nname = 'graviton'\nplatforms = ['linux/arm64']\n"
        "endpoint = 'ssh://ci@arm.example'\n[tool.polyarch.nodes.driver-opts]\nnetwork = 'host'\n"
    )
    opts = config.load({}, env={}, cwd=tmp_path)
    assert [n.name for n in opts.nodes] == ["polyarch-0", "polyarch-graviton"]
    assert opts.nodes[1].driver_opts == (("network", "host"),)

    (tmp_path / "pyproject.toml").write_text(
        "[tool.polyarch]\nnodes = 'arm'\n")
    with pytest.raises(ConfigError) as e:
        config.load({}, env={}, cwd=tmp_path)
    assert "'nodes'" in e.value.message


# -- the commands ------------------------------------------------------------------------

NODES = parse_nodes([
    {"platforms": ["linux/amd64"], "endpoint": "default"},
    {"name": "graviton", "platforms": ["linux/arm64", "linux/arm/v7"],
     "endpoint": "ssh://ci@arm.example", "driver-opts": {"network": "host"}},
])


def test_commands_for_a_new_builder() -> None:
    cmds = [shlex.join(c) for c in setup_commands(Buildx(), NODES, None)]
    assert cmds == [
        "docker buildx create --name polyarch --node polyarch-0 --platform linux/amd64"
        " --driver docker-container default",
        "docker buildx create --name polyarch --node polyarch-graviton --platform"
        " linux/arm64,linux/arm/v7 --driver docker-container --driver-opt network=host"
        " --append ssh://ci@arm.example",
    ]


def test_commands_update_an_existing_builder() -> None:
    existing = BuilderInfo("polyarch", "docker-container", (
        NodeInfo("polyarch-0", "default", "running", ("linux/amd64",)),
        NodeInfo("polyarch-old", "tcp://gone:2375", "inactive", ("linux/s390x",)),
    ))
    cmds = [shlex.join(c) for c in setup_commands(Buildx(docker_context="ci"), NODES, existing)]
    assert cmds[0] == "docker --context ci buildx create --name polyarch --node polyarch-old --leave"
    assert all("--append" in c for c in cmds[1:]) and len(cmds) == 3


def test_commands_replace_a_builder_of_another_driver() -> None:
    existing = BuilderInfo("polyarch", "remote", (NodeInfo("polyarch-0", "tcp://b:1234", "", ()),))
    cmds = [shlex.join(c) for c in setup_commands(Buildx(), NODES, existing)]
    assert cmds[0] == "docker buildx rm polyarch"
    assert "--append" not in cmds[1] and "--append" in cmds[2]


def test_a_bad_node_port_is_a_config_error(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    nodes = '[{"platforms": ["linux/arm64"], "endpoint": "tcp://127.0.0.1:99999"}]'
    run = run_cli("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(tmp_path),
                   env={"POLYARCH_NODES": nodes})
    assert run.code == 2, run.err
    assert "bad port" in error_line(run)
