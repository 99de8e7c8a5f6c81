"""Build engines. One module each; all satisfy :class:`Engine`."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyarch.engines.base import (
    BuildRequest,
    BuildResult,
    Check,
    Engine,
    EngineArg,
    Plan,
    StepEvent,
)

if TYPE_CHECKING:
    from polyarch.config import Options

__all__ = ["ENGINE_NAMES", "BuildRequest", "BuildResult", "Check", "Engine", "EngineArg",
           "EngineChoice",
           "Plan", "StepEvent", "choose_engine", "select_engine", "start_at_entry", "start_engine"]


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


def _early_wanted(options: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """The docker context and builder whose look-ups may start early, from these
    command-line options and the POLYARCH_* environment; None when the engine is not
    docker without nodes."""

    def value(name: str) -> Any:
        return options.get(name) or os.environ.get(f"POLYARCH_{name.upper()}") or None

    if value("engine") not in (None, "docker") or value("nodes"):
        return None
    return value("docker_context"), value("builder")


def start_at_entry() -> None:
    """At the program's entry, before the command line is parsed (click and the option
    table take about as long to import as the look-ups take; ``polyarch.__main__``
    decides for which command lines): start the look-ups of a build for the POLYARCH_*
    environment's engine, context and builder. :func:`start_engine` takes them when the
    parsed options ask for the same command lines; otherwise they are stopped (a command
    line naming another context or builder: a wasted look-up, never a wrong one)."""
    wanted = _early_wanted({})
    if wanted is None:
        return
    from polyarch.engines import buildx_plugin, probes

    probes.start_at_entry(probes.preflight_argvs(*wanted, buildx_plugin.find()))


def start_engine(options: Mapping[str, Any]) -> Engine | None:
    """The engine of these command-line options and the POLYARCH_* environment, made
    before the options are loaded, with its preflight look-ups started (when the engine
    is docker without nodes; else None), or taken from those :func:`start_at_entry`
    started for the same command lines. :func:`select_engine` takes it when the loaded
    options ask for the same engine; a config file that says otherwise leaves it unused."""
    from polyarch.engines import buildx_plugin, probes

    wanted = _early_wanted(options)
    if wanted is None:
        probes.abandon_entry()  # another engine: the entry's look-ups are not needed
        return None

    context, builder = wanted
    plugin = buildx_plugin.find()
    # Started before the engine's module is loaded: the look-ups are the longer of the
    # two paths to the build (they take about as long as every import before it).
    started = probes.adopt(probes.preflight_argvs(context, builder, plugin))
    from polyarch.engines.buildx import Buildx

    return Buildx(docker_context=context, builder=builder, started=started, plugin=plugin)


def select_engine(opts: Options, started: Engine | None = None) -> Engine:
    """The one place that turns the ``engine`` option into an engine (``started``, from
    :func:`start_engine`, where it is that engine; when it is not, its look-ups still
    running are stopped)."""
    from polyarch.engines.buildx import Buildx

    if choose_engine(opts).name == "podman":
        from polyarch.engines.podman import PodmanEngine

        _unused(started)
        return PodmanEngine(insecure_registries=opts.insecure_registries)
    if (isinstance(started, Buildx) and started.docker_context == opts.docker_context
            and started.requested_builder == opts.builder):
        return started
    _unused(started)
    from polyarch.engines import buildx_plugin

    return Buildx(docker_context=opts.docker_context, builder=opts.builder,
                  plugin=buildx_plugin.find())


def _unused(started: Engine | None) -> None:
    from polyarch.engines.buildx import Buildx

    if isinstance(started, Buildx):
        started.probes.abandon()


@functools.lru_cache(maxsize=8)
def _docker_problem(docker_context: str | None, _host: str, _context: str) -> str | None:
    """None when the Docker engine answers; else the first line of why not. (The
    environment is part of the cache key.)"""
    from polyarch import proc
    from polyarch.errors import FatalError

    argv = ["docker"] + (["--context", docker_context] if docker_context else [])
    try:
        # Not checked: a non-zero exit is the answer (the engine is not reachable), and
        # what docker printed is the reason returned.
        r = proc.run(argv + ["info", "--format", "{{.ServerVersion}}"], check=False,
                     echo=False, timeout=20)
    except FatalError as e:  # no docker CLI, or it hung
        return e.message
    if r.ok and r.stdout.strip():
        return None
    lines = [ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    return lines[0] if lines else f"docker info exited with status {r.returncode}"
