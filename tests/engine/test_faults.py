"""Faults of the machine and of the registry: a cache directory on a read-only or full
disk (exit 3, nothing pushed), a registry that stops in the middle of the push (exit 4,
no tag moved) and the re-run that uploads only what is missing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import Run, last_error_line, polyarch
from conftest import make_context
from faultproxy import Fault, FaultProxy, LocalRegistry

from .helpers import (
    COPY_ONLY,
    assert_registry_empty,
    big_context,
    blob_uploads,
    echoed_build,
    fill,
    manifest_digest,
    needs_podman,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("faults") / "ctx", dockerfile=COPY_ONLY)




def _refused_for_the_cache(run: Run, cache: Path, why: str) -> None:
    assert run.code == 3, run.text
    line = last_error_line(run)
    assert f"cache directory {cache}" in line and why in line, line
    assert "(set POLYARCH_CACHE_DIR to a writable directory with free space)" in line
    assert "Traceback" not in run.err
    assert echoed_build(run.err) is None  # stopped before the build
    assert "podman build" not in run.err


@pytest.mark.parametrize(("command", "engine"), [
    ("publish", "docker"), ("build", "docker"),
    pytest.param("publish", "podman", marks=needs_podman),
])
def test_read_only_cache_directory(command: str, engine: str, read_only_dir: Path,
                                   small: Path, own_registry: LocalRegistry) -> None:
    cache = read_only_dir / "polyarch"
    extra = ["--push"] if command == "build" else []
    run = polyarch(command, "--engine", engine, *extra, "-t",
                   f"{own_registry.address}/team/app:1", str(small),
                   env={"POLYARCH_CACHE_DIR": str(cache)})
    _refused_for_the_cache(run, cache, "it is read-only")
    assert_registry_empty(own_registry, "team/app")


def test_cache_directory_with_too_little_room(tiny_dir: Path, small: Path,
                                              own_registry: LocalRegistry) -> None:
    run = polyarch("publish", "-t", f"{own_registry.address}/team/app:1", str(small),
                   env={"POLYARCH_CACHE_DIR": str(tiny_dir)})
    _refused_for_the_cache(run, tiny_dir, "MiB free; a build needs at least")
    assert_registry_empty(own_registry, "team/app")


def test_full_cache_directory(tiny_dir: Path, small: Path, tmp_path: Path) -> None:
    (tiny_dir / "builds").mkdir()
    fill(tiny_dir)
    run = polyarch("build", "-o", f"oci:{tmp_path / 'app.tar'}", str(small),
                   env={"POLYARCH_CACHE_DIR": str(tiny_dir)})
    _refused_for_the_cache(run, tiny_dir, "the disk is full")
    assert not (tmp_path / "app.tar").exists()


def test_registry_stops_mid_push_then_rerun_uploads_only_what_is_missing(
        tmp_path: Path, small: Path, own_registry: LocalRegistry) -> None:
    reg = own_registry
    ref = f"{reg.address}/team/app:stable"
    v1 = polyarch("publish", "-t", ref, "--json", str(small))
    assert v1.code == 0, v1.text
    d1 = v1.json()["index"]["digest"]

    big = big_context(tmp_path / "big", files=4, mib=2)
    with FaultProxy(reg.address) as proxy:
        # Every blob upload takes a moment: the registry is stopped while some are done
        # and others are still on their way.
        proxy.add(Fault.delay(0.3), times=None, method="PUT", match="/blobs/uploads/")
        via = f"{proxy.address}/team/app:stable"
        port = proxy.port  # the re-run goes through the same address (one registry)
        proc = subprocess.Popen([sys.executable, "-m", "polyarch", "publish", "-t", via,
                                 str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if len(blob_uploads(proxy.log)) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "publish ended before the upload started"
        reg.stop()  # the registry dies in the middle of the push
        out, err = proc.communicate(timeout=300)
        first = set(blob_uploads(proxy.log))
    run = Run(proc.returncode, out, err)
    assert run.code == 4, run.text
    assert "Traceback" not in run.err
    reg.start()
    assert manifest_digest(reg.address, "team/app", "stable") == d1  # no tag moved
    assert len(first) >= 2

    with FaultProxy(reg.address, port=port) as proxy:
        again = polyarch("publish", "-t", f"{proxy.address}/team/app:stable", "--json",
                         str(big))
        second = blob_uploads(proxy.log)
    assert again.code == 0, again.text
    doc = again.json()
    blobs = doc["push"]["blobs"]
    # What the first run completed is skipped; only the rest is uploaded, once each (the
    # blobs it confirmed are in the record of pushes, so none is sent without asking).
    assert blobs["uploaded"] == len(second) == len(set(second))
    assert not first & set(second)
    assert blobs["skipped"] >= len(first)
    assert blobs["uploaded"] >= 1
    assert manifest_digest(reg.address, "team/app", "stable") == doc["index"]["digest"] != d1
