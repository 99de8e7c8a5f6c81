"""Engine tests: everything under this folder runs against the real engine and
registries that ``scripts/engine up`` starts; ``tests/conftest.py`` marks them
``engine`` (a missing engine fails them under ``CI=true`` and skips them elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import IN_CI, REGISTRY
from faultproxy import LocalRegistry

from polyarch import settings

from .helpers import mount_tmpfs

ROOT = Path(__file__).resolve().parents[2]


def _image_names(engine: str) -> set[str] | None:
    """NAME:TAG of every image in an engine's store (None: that engine is not here)."""
    if shutil.which(engine) is None:
        return None
    try:
        r = subprocess.run([engine, "images", "--format", "{{.Repository}}:{{.Tag}}"],
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return {n for n in r.stdout.split() if "<none>" not in n}


@pytest.fixture(scope="session", autouse=True)
def images_left_behind() -> Iterator[None]:
    """The images the tests named in the engines' own stores (``--load``, a smoke run's
    image, buildx ``--push`` with the docker driver, which names one too) are removed
    when the session ends: each pins its layers in the store and in the build cache.
    Only names on the test registry that were not there before the session go; the
    base images scripts/make-base keeps (``REGISTRY/polyarch/``) stay, like everything
    that was there before."""
    before = {engine: _image_names(engine) for engine in ("docker", "podman")}
    yield
    for engine, had in before.items():
        now = _image_names(engine) if had is not None else None
        if had is None or now is None:
            continue
        made = sorted(n for n in now - had if n.startswith(f"{REGISTRY}/")
                      and not n.startswith(f"{REGISTRY}/polyarch/"))
        for i in range(0, len(made), 50):
            # Best effort, as any clean-up: an image a test still holds stays.
            subprocess.run([engine, "rmi", *made[i:i + 50]], capture_output=True,
                           timeout=600, check=False)


@pytest.fixture(scope="session")
def base_images() -> dict[str, str]:
    """``{"debian": REF, "node": REF}``: the local base images on the test registry, made
    from Debian and npm packages by scripts/make-base (once; it answers at once when they
    are there)."""
    if shutil.which("mmdebstrap") is None and not IN_CI:
        pytest.skip("mmdebstrap is not installed (scripts/engine up installs it on Debian)")
    r = subprocess.run([str(ROOT / "scripts/make-base")], capture_output=True, text=True,
                       timeout=1200, env={**os.environ, "POLYARCH_TEST_REGISTRY": REGISTRY})
    if r.returncode != 0:
        pytest.fail(f"scripts/make-base failed:\n{r.stderr[-3000:]}")
    refs = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
    return {"debian": refs["POLYARCH_DEBIAN_BASE"], "node": refs["POLYARCH_NODE_BASE"]}


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of this test alone: its catalog and blob store say what was pushed."""
    reg = LocalRegistry(tmp_path / "own-registry")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """POLYARCH_CACHE_DIR of this test alone (the CLI runs inherit it), and the cache
    directory of what the test calls of polyarch in process (its settings)."""
    d = tmp_path / "polyarch-cache"
    monkeypatch.setenv("POLYARCH_CACHE_DIR", str(d))
    with settings.using(replace(settings.current(), cache_dir=d)):
        yield d


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of this test (a disk that fills at once)."""
    yield from mount_tmpfs(tmp_path / "tiny", "size=1m")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs of this test."""
    yield from mount_tmpfs(tmp_path / "ro", "ro,size=1m")
