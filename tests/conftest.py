"""Shared test fixtures.

Engine tests (marker ``engine``) need what ``scripts/engine up`` brings up: a Docker
engine with buildx and the containerd image store, QEMU binfmt handlers, and a
registry on loopback (``POLYARCH_TEST_REGISTRY``, default 127.0.0.1:5000). Outside CI
they are skipped when the engine is down; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faultproxy import LocalRegistry, free_port  # noqa: F401  (free_port: re-exported for tests)

REGISTRY = os.environ.get("POLYARCH_TEST_REGISTRY", "127.0.0.1:5000")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _default_state() -> Path:
    if os.geteuid() == 0:
        return Path(os.environ.get("POLYARCH_STATE_DIR", "/var/lib/polyarch-engine"))
    return Path(os.environ.get("POLYARCH_STATE_DIR", Path.home() / ".cache/polyarch-engine"))


FIXTURES = Path(os.environ.get("POLYARCH_FIXTURES", _default_state() / "fixtures"))


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not found"
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        return "Docker engine not running: " + r.stderr.strip()[:200]
    r = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return "docker buildx missing"
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=3)
    except httpx.HTTPError as e:
        return f"registry {REGISTRY} not answering: {e}"
    for a in ("amd64", "arm64"):
        if not (FIXTURES / f"busybox-static_{a}.deb").exists():
            return f"fixture package missing: {FIXTURES}/busybox-static_{a}.deb"
    return None


_PROBLEM: list[str | None] = []


def engine_problem() -> str | None:
    if not _PROBLEM:
        _PROBLEM.append(_engine_problem())
    return _PROBLEM[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/engine/ needs the engine; tests/unit/ never does.
    for item in items:
        if "/tests/engine/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.engine)
    if not any(item.get_closest_marker("engine") for item in items):
        return
    problem = engine_problem()
    if problem is None:
        return
    if IN_CI:
        # In CI the engine must be there: fail loudly instead of skipping.
        for item in items:
            if item.get_closest_marker("engine"):
                item.add_marker(pytest.mark.usefixtures("_engine_required"))
        return
    skip = pytest.mark.skip(reason=f"engine not available ({problem}); run scripts/engine up")
    for item in items:
        if item.get_closest_marker("engine"):
            item.add_marker(skip)



# A run started in the background of a non-interactive shell inherits SIGINT ignored
# (POSIX), and Python then never raises KeyboardInterrupt, nor do the polyarch processes
# the tests start (an ignored signal stays ignored across exec). The tests of Ctrl-C
# need it delivered: restore Python's handler for this process and its children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

@pytest.fixture
def _engine_required() -> None:
    problem = engine_problem()
    if problem:
        pytest.fail(f"CI=true but the engine is not available: {problem}")


@pytest.fixture(scope="session")
def registry() -> str:
    """host:port of the loopback test registry."""
    return REGISTRY


@pytest.fixture
def repo(registry: str) -> str:
    """A fresh repository name in the test registry (no tag)."""
    return f"{registry}/test/{uuid.uuid4().hex[:12]}"


def unpack_busybox(arch: str, dest: Path) -> None:
    """Make a minimal root filesystem for ``arch`` (amd64|arm64) from busybox-static."""
    deb = FIXTURES / f"busybox-static_{arch}.deb"
    tmp = dest.parent / f".x-{arch}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for d in ("tmp", "etc", "root"):
        (dest / d).mkdir(exist_ok=True)
    shutil.copy2(tmp / "bin/busybox", dest / "bin/busybox")
    for applet in ("sh", "uname", "ls", "cat", "echo", "true", "false", "mkdir", "cp", "rm",
                   "sleep", "head", "dd", "env", "test", "grep", "wc", "touch", "chmod"):
        (dest / "bin" / applet).symlink_to("busybox")
    shutil.rmtree(tmp)


HELLO_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN echo hello > /hello && uname -m > /built-on
CMD ["/bin/sh", "-c", "cat /hello /built-on"]
"""


def make_context(path: Path, dockerfile: str = HELLO_DOCKERFILE,
                 arches: tuple[str, ...] = ("amd64", "arm64")) -> Path:
    """A build context with ``rootfs-<arch>/`` busybox trees and the given Dockerfile."""
    path.mkdir(parents=True, exist_ok=True)
    for a in arches:
        unpack_busybox(a, path / f"rootfs-{a}")
    (path / "Dockerfile").write_text(dockerfile)
    return path


@pytest.fixture
def hello_context(tmp_path: Path) -> Path:
    """A 2-platform busybox build context (the `examples/hello` shape)."""
    return make_context(tmp_path / "ctx")


@pytest.fixture
def isolated_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty DOCKER_CONFIG, so tests never read the developer's credentials."""
    d = tmp_path / "docker-config"
    d.mkdir()
    # buildx keeps its builder state under DOCKER_CONFIG; share the real one so the
    # builders the engine knows stay visible.
    real = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    if (real / "buildx").exists():
        (d / "buildx").symlink_to(real / "buildx")
    if (real / "cli-plugins").exists():
        (d / "cli-plugins").symlink_to(real / "cli-plugins")
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    yield d


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry requiring user 'alice' with password 'wonderland-s3cret'."""
    r = LocalRegistry(tmp_path / "auth-registry", htpasswd={"alice": "wonderland-s3cret"})
    yield r
    r.stop()


def registry_tags(registry: str, repository: str, auth: tuple[str, str] | None = None) -> list[str]:
    """Tags of a repository, read with plain HTTP (independent of polyarch's client)."""
    r = httpx.get(f"http://{registry}/v2/{repository}/tags/list", auth=auth, timeout=10)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return list(r.json().get("tags") or [])


def registry_catalog(registry: str) -> list[str]:
    """Every repository of a registry (the catalog is paged: the Link headers are followed)."""
    out: list[str] = []
    url: str | None = f"http://{registry}/v2/_catalog?n=1000"
    while url:
        r = httpx.get(url, timeout=10)
        r.raise_for_status()
        out.extend(r.json().get("repositories") or [])
        nxt = r.links.get("next", {}).get("url")
        url = f"http://{registry}{nxt}" if nxt and nxt.startswith("/") else nxt
    return out


@pytest.fixture(scope="session")
def engine2() -> str:
    """DOCKER_HOST of a second, independent engine (scripts/engine2 up; .ci/run stops it)."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([str(root / "scripts/engine2"), "up"], capture_output=True, text=True,
                       timeout=180)
    if r.returncode != 0:
        msg = f"second engine did not start: {r.stderr.strip()[-400:]}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return next(ln.split("=", 1)[1] for ln in r.stdout.splitlines()
                if ln.startswith("DOCKER_HOST="))
