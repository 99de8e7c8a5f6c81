"""scripts/engine on a fresh machine: podman's configuration, its storage and the engine
state all start empty (a private mount namespace hides this machine's own), and
`scripts/engine podman` must leave podman able to run a container, whatever the cgroup
layout (this machine's may be hybrid, where podman's default runtime crun cannot run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
DROPIN = "/etc/containers/containers.conf.d/50-polyarch-engine.conf"


def in_fresh_namespace(tmp: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) where /etc/containers is a copy without drop-ins, podman's
    storage and run directories are empty, and POLYARCH_STATE_DIR is new."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("podman") is None:
        pytest.fail("this test needs root, unshare(1) and podman (scripts/engine up)")
    state = tmp / "state"
    (state / "fixtures").mkdir(parents=True)
    for deb in FIXTURES.glob("busybox-static_*.deb"):
        shutil.copy(deb, state / "fixtures")
    etc = tmp / "etc"
    shutil.copytree("/etc/containers", etc, symlinks=True)
    shutil.rmtree(etc / "containers.conf.d", ignore_errors=True)
    for d in ("varlib", "run-c", "run-l", "cni"):
        (tmp / d).mkdir()
    setup = (f"mount --bind {etc} /etc/containers && "
             f"mount --bind {tmp}/varlib /var/lib/containers && "
             f"mkdir -p /run/containers /run/libpod /var/lib/cni && "
             f"mount --bind {tmp}/run-c /run/containers && "
             f"mount --bind {tmp}/run-l /run/libpod && "
             f"mount --bind {tmp}/cni /var/lib/cni && ")
    env = {**os.environ, "POLYARCH_STATE_DIR": str(state)}
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           setup + script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_engine_makes_podman_run_on_a_fresh_machine(tmp_path: Path) -> None:
    r = in_fresh_namespace(tmp_path, (
        "scripts/engine podman && "
        "podman run --rm --network none localhost/polyarch-engine-probe:busybox /bin/sh -c "
        "'echo container-ran' && "
        f"(cat {DROPIN} 2>/dev/null || echo no-drop-in) && "
        "scripts/engine podman"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "container-ran" in r.stdout
    assert "engine: podman: cgroup layout " in r.stderr
    # The second run finds a working setup and leaves it alone.
    assert r.stderr.rstrip().splitlines()[-1].startswith("engine: podman runs containers as"
                                                         " configured")
    if "no-drop-in" not in r.stdout:
        # Configured because the defaults could not run a container: say what and why.
        assert "engine: podman cannot run a container as configured" in r.stderr
        assert 'runtime = "' in r.stdout and 'cgroup_manager = "' in r.stdout
    fs = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup", "/sys/fs/cgroup/unified"],
                        capture_output=True, text=True).stdout.split()
    if fs == ["tmpfs", "cgroup2fs"]:
        # Hybrid: podman's default runtime (crun) refuses it, so a fresh podman cannot run
        # a container until the drop-in chooses runc.
        assert "cgroup layout hybrid" in r.stderr
        assert "no-drop-in" not in r.stdout and 'runtime = "runc"' in r.stdout, r.stdout
