"""Build engines. One module each; all satisfy :class:`Engine`."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from polyarch.platforms import Platform

if TYPE_CHECKING:
    from polyarch.config import Options


@dataclass(frozen=True)
class BuildRequest:
    """Everything one multi-platform build needs, engine-neutral."""

    context: Path
    dockerfile: Path
    platforms: tuple[Platform, ...]
    #: Where the engine writes the OCI image layout of every platform (a directory).
    output: Path | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: Index annotations polyarch sets itself (from the tag rules).
    annotations: dict[str, str] = field(default_factory=dict)
    #: The user's ``--annotation`` values, in buildx syntax ([TYPE:]KEY=VALUE), unchanged.
    annotation_args: tuple[str, ...] = ()
    target: str | None = None
    secrets: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    #: None: the engine's default; a string: buildx's attestation options (mode=max).
    provenance: bool | str | None = None
    sbom: bool | str | None = None
    attest: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    build_contexts: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    shm_size: str | None = None
    ulimits: tuple[str, ...] = ()
    #: buildx entitlements (``--allow network.host``).
    entitlements: tuple[str, ...] = ()
    #: Export only the build cache (``cache_to``), after verification passed: the
    #: build itself comes from the local cache.
    cache_only: bool = False


@dataclass(frozen=True)
class BuildResult:
    digest: str
    """Digest of the image index (or manifest for a single platform) in ``layout``."""
    media_type: str
    size: int
    seconds: float
    layout: Path | None = None


@dataclass(frozen=True)
class StepEvent:
    """A build step changed state. ``platform`` is None for shared steps."""

    platform: str | None
    name: str
    state: str  # "started" | "done" | "cached" | "error"
    error: str | None = None
    seconds: float | None = None


class Engine(Protocol):
    name: str

    def use_builder(self, name: str | None) -> None:
        """Build with this builder (what preflight chose; None: the engine's default)."""
        ...

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]: ...

    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None
    ) -> BuildResult: ...

    def run_argv(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]: ...

    def load(self, layout: Path, names: Sequence[str]) -> str:
        """Import the OCI layout into the engine's image store under ``names`` (every
        platform where the store can hold several); returns what was loaded, in words."""
        ...

    def runnable(self, layout: Path, name: str) -> str:
        """Make the layout runnable by :meth:`run_argv` (loading it under ``name`` where
        the engine must) and return the reference to run."""
        ...

    def remove_images(self, names: Sequence[str]) -> None: ...

    def export_cache(self, req: BuildRequest) -> None:
        """Write ``req.cache_to`` from the local build cache (after verification)."""
        ...


#: Values of the ``engine`` option.
ENGINE_NAMES = ("docker", "podman", "auto")


@dataclass(frozen=True)
class EngineChoice:
    name: str  # docker | podman
    reason: str  # why, for doctor


def choose_engine(opts: Options) -> EngineChoice:
    """Resolve ``engine`` (docker|podman|auto). ``auto`` is docker when ``docker info``
    answers, else podman when it is installed, else docker (whose error then says why)."""
    if opts.engine != "auto":
        return EngineChoice(opts.engine, f"engine = {opts.engine}")
    problem = _docker_problem(opts.docker_context, os.environ.get("DOCKER_HOST", ""),
                              os.environ.get("DOCKER_CONTEXT", ""))
    if problem is None:
        return EngineChoice("docker", "auto: the Docker engine answers")
    if shutil.which("podman") is not None:
        return EngineChoice("podman", f"auto: Docker does not answer ({problem})")
    return EngineChoice("docker", f"auto: Docker does not answer ({problem}) and podman is"
                                  " not installed")


def select_engine(opts: Options) -> Engine:
    """The one place that turns the ``engine`` option into an engine."""
    if choose_engine(opts).name == "podman":
        from polyarch.engines.podman import PodmanEngine

        return PodmanEngine(insecure_registries=opts.insecure_registries)
    from polyarch.engines.buildx import Buildx

    return Buildx(docker_context=opts.docker_context, builder=opts.builder)


@functools.lru_cache(maxsize=8)
def _docker_problem(docker_context: str | None, _host: str, _context: str) -> str | None:
    """None when the Docker engine answers; else the first line of why not. (The
    environment is part of the cache key.)"""
    from polyarch import proc
    from polyarch.errors import FatalError

    argv = ["docker"] + (["--context", docker_context] if docker_context else [])
    try:
        r = proc.run(argv + ["info", "--format", "{{.ServerVersion}}"], check=False,
                     echo=False, timeout=20)
    except FatalError as e:  # no docker CLI, or it hung
        return e.message
    if r.ok and r.stdout.strip():
        return None
    lines = [ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    return lines[0] if lines else f"docker info exited with status {r.returncode}"
