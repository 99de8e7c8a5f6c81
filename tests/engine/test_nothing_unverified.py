"""Nothing unverified leaves the machine: an image that fails verification (a credential
in a layer, a binary of the wrong architecture) leaves no repository, no tag and no blob
in the registry, read back with plain HTTP and from the registry's own storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import LocalRegistry

from .helpers import (
    NPM_TOKEN,
    TOKEN_DELETED_LATER,
    WRONG_ARCH,
    assert_registry_empty,
    needs_podman,
    token_context,
)

ENGINES = ["docker", pytest.param("podman", marks=needs_podman)]


@pytest.mark.parametrize("engine", ENGINES)
def test_token_in_the_final_layer_pushes_nothing(engine: str, tmp_path: Path,
                                                 own_registry: LocalRegistry) -> None:
    ctx = token_context(tmp_path / "ctx")
    ref = f"{own_registry.address}/team/app:1.0"
    run = polyarch("publish", "--engine", engine, "-t", ref, "-t",
                   f"{own_registry.address}/team/app:latest", "--json", str(ctx))
    assert run.code == 5, run.text
    line = last_error_line(run)
    assert "verification failed" in line and "nothing was pushed" in line
    assert "/root/.npmrc" in run.err  # the finding names the file ...
    assert NPM_TOKEN not in run.text  # ... never the token
    doc = run.json()
    assert doc["promoted"] is False and doc["push"] is None
    assert {p["checks"]["secrets"] for p in doc["verification"]["platforms"]} == {"fail"}
    assert_registry_empty(own_registry, "team/app")


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_arch_binary_pushes_nothing(engine: str, tmp_path: Path,
                                          own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=WRONG_ARCH)
    run = polyarch("publish", "--engine", engine, "-t", f"{own_registry.address}/team/app:1",
                   "--json", str(ctx))
    assert run.code == 5, run.text
    line = last_error_line(run)
    assert "linux/arm64" in line and "nothing was pushed" in line
    arm = next(p for p in run.json()["verification"]["platforms"]
               if p["platform"] == "linux/arm64")
    if engine == "docker":
        assert "bin/busybox" in run.err, run.err
        assert arm["checks"]["binaries"] == "fail"
    else:
        # podman builds an amd64-only filesystem for arm64 as it sees fit: an arm64 entry
        # with an amd64 config, or one image for both (the arm64 entry is then missing).
        # Verification fails every form of it, and nothing is pushed.
        assert arm["status"] == "missing" or "fail" in (arm["checks"]["binaries"],
                                                         arm["checks"]["labels"]), arm
    assert_registry_empty(own_registry, "team/app")


def test_build_push_of_a_bad_part_pushes_nothing(tmp_path: Path,
                                                 own_registry: LocalRegistry) -> None:
    """The split-build path (``build --push``) checks before pushing too, and writes no
    descriptor for a part that failed."""
    ctx = token_context(tmp_path / "ctx")
    desc = tmp_path / "part.json"
    run = polyarch("build", "--platform", "linux/arm64", "--push", "-t",
                   f"{own_registry.address}/team/app:1", "--descriptor", str(desc), str(ctx))
    assert run.code == 5, run.text
    assert "nothing was written or pushed" in last_error_line(run)
    assert not desc.exists()
    assert_registry_empty(own_registry, "team/app")


def test_token_deleted_by_a_later_layer_fails_verification(tmp_path: Path,
                                                          own_registry: LocalRegistry) -> None:
    """The final filesystem has no .npmrc, but the layer that added it is a blob anyone
    could pull: verification reports it (kind deleted-but-shipped) and nothing is pushed."""
    ctx = token_context(tmp_path / "ctx", TOKEN_DELETED_LATER)
    run = polyarch("publish", "-t", f"{own_registry.address}/team/app:1", "--json", str(ctx))
    # Whatever the outcome, the token is never printed.
    assert NPM_TOKEN not in run.text
    assert run.code == 5, run.text
    assert "/root/.npmrc" in run.err
    assert "deleted-but-shipped" in run.text
    assert_registry_empty(own_registry, "team/app")


def test_registry_build_cache_leaves_only_after_verification(tmp_path: Path,
                                                             own_registry: LocalRegistry) -> None:
    """The registry build cache holds the layers too (the token among them): it is
    exported only once the image passed, so a failed run leaves no cache behind either."""
    bad = token_context(tmp_path / "bad")
    run = polyarch("publish", "--cache", "registry", "-t",
                   f"{own_registry.address}/team/app:1", str(bad))
    assert run.code == 5, run.text
    assert "--cache-to" not in run.err  # the build itself never writes the cache
    assert_registry_empty(own_registry, "team/app")

    good = make_context(tmp_path / "good", dockerfile=WRONG_ARCH.replace(
        "COPY rootfs-amd64/ /", "ARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /"))
    run = polyarch("publish", "--cache", "registry", "-t",
                   f"{own_registry.address}/team/app:1", str(good))
    assert run.code == 0, run.text
    assert sorted(registry_tags(own_registry.address, "team/app")) == [
        "1", "buildcache-linux-amd64-linux-arm64"]
    # The cache export came after verification and the push.
    order = [ln for ln in run.out.splitlines() if ln.startswith("==> ")]
    assert order.index("==> export build cache") > next(
        i for i, ln in enumerate(order) if ln.startswith("==> push "))
