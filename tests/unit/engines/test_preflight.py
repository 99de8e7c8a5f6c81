"""Each engine's own preflight: what it decides from what its look-ups answered.

The answers are given to the engine object as it keeps them (once per engine), so no
process starts; anything else it asks would fail the test (the unit-test guard)."""

from __future__ import annotations

import pytest

from polyarch.engines.buildx import BuilderInfo, Buildx, EngineInfo, NodeInfo
from polyarch.engines.podman import PodmanEngine, PodmanInfo
from polyarch.errors import EnvironmentProblem
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")


def podman(version: str, *, remote: bool = False) -> PodmanEngine:
    pm = PodmanEngine()
    pm._info = PodmanInfo(version, "amd64", "linux", rootless=False, remote=remote)
    return pm


def test_podman_before_4_stops_the_preflight() -> None:
    plan = podman("3.4.4").preflight(TWO)
    assert plan.stopped and [c.name for c in plan.checks] == ["engine"]
    assert "need podman 4+" in plan.checks[0].detail
    assert plan.first_failure() is plan.checks[0]


def test_remote_podman_cannot_say_whether_it_emulates() -> None:
    plan = podman("4.3.1", remote=True).preflight(TWO)
    assert not plan.stopped and plan.ok  # a warning, not a stop
    assert plan.platform_modes == {"linux/amd64": "native", "linux/arm64": "emulated"}
    (arm,) = [c for c in plan.checks if c.name == "platform linux/arm64"]
    assert not arm.ok and arm.error is None and "remote podman host" in arm.detail


def buildx(builder: BuilderInfo, *, containerd_store: bool) -> Buildx:
    bx = Buildx(builder=builder.name)
    bx.remember("info", lambda: EngineInfo("26.1.5", "x86_64", "linux", containerd_store))
    bx.remember("buildx", lambda: "0.13.1")
    bx.remember(f"builder {builder.name}", lambda: builder)
    return bx


def test_named_container_builder_builds_what_it_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://build-host:2376")  # not this machine's binfmt
    b = BuilderInfo("b1", "docker-container",
                    (NodeInfo("b10", "unix:///var/run/docker.sock", "running",
                              ("linux/amd64", "linux/arm64")),))
    plan = buildx(b, containerd_store=False).preflight(TWO, builder="b1")
    assert plan.ok and plan.builder_arg == "b1" and not plan.setup_commands
    assert plan.platform_modes == {"linux/amd64": "native", "linux/arm64": "emulated"}
    assert [c.name for c in plan.checks] == ["engine", "buildx", "builder",
                                             "platform linux/amd64", "platform linux/arm64"]


def test_named_docker_driver_builder_needs_the_containerd_store() -> None:
    b = BuilderInfo("default", "docker",
                    (NodeInfo("default", "default", "running", ("linux/amd64",)),))
    plan = buildx(b, containerd_store=False).preflight(TWO, builder="default")
    bad = plan.first_failure()
    assert bad is not None and bad.name == "builder" and bad.error is EnvironmentProblem
    assert "containerd image store" in bad.detail and "containerd-snapshotter" in bad.remedy
    assert plan.platform_modes == {}  # no platform is checked without a builder
