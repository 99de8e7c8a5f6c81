"""What every engine takes and gives: the build request, its result, step events, the
preflight :class:`Plan` with its :class:`Check` rows, and the :class:`Engine` protocol
(the engines import this module, never the package)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from polyarch.errors import FatalError
from polyarch.platforms import Platform

if TYPE_CHECKING:
    from polyarch.nodespec import NodeSpec
    from polyarch.proc import Cancel


@dataclass(frozen=True)
class EngineArg:
    """One passthrough build option, as each engine spells it (from the option table)."""

    option: str  # polyarch's flag, for messages (--add-host)
    argv: Mapping[str, tuple[str, ...]]  # engine name -> its arguments
    #: engine name -> what it lacks (the engine refuses the build naming it).
    missing: Mapping[str, str] = field(default_factory=dict)


def engine_argv(args: Sequence[EngineArg], engine: str) -> list[str]:
    """The arguments of ``args`` for ``engine`` (those it lacks: see :func:`missing`)."""
    return [a for arg in args for a in arg.argv.get(engine, ())]


def missing(args: Sequence[EngineArg], engine: str) -> list[str]:
    """What ``engine`` cannot do of ``args``, in words naming the flag."""
    return [f"{arg.missing[engine]} ({arg.option})" for arg in args if engine in arg.missing]


@dataclass(frozen=True)
class BuildRequest:
    """Everything one multi-platform build needs, engine-neutral.

    The build options an engine takes as they are travel in ``args``; the fields are
    the ones polyarch computes or an engine rewrites (per platform count, a podman
    build context, the cache exported after verification)."""

    context: Path
    dockerfile: Path
    platforms: tuple[Platform, ...]
    #: Where the engine writes the OCI image layout of every platform (a directory).
    output: Path | None = None
    #: Also read by podman: the plain-HTTP registries a build pulls from.
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: Index annotations polyarch sets itself (from the tag rules).
    annotations: dict[str, str] = field(default_factory=dict)
    #: The user's ``--annotation`` values, in buildx syntax ([TYPE:]KEY=VALUE), unchanged.
    annotation_args: tuple[str, ...] = ()
    #: None: the engine's default; a string: buildx's attestation options (mode=max).
    provenance: bool | str | None = None
    sbom: bool | str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    build_contexts: dict[str, str] = field(default_factory=dict)
    #: The passthrough build options (``--target``, ``--secret``, ``--add-host``, ...).
    args: tuple[EngineArg, ...] = ()
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
    context_bytes: int = 0
    """Build context the builder received (0 when the engine does not say)."""


@dataclass(frozen=True)
class StepEvent:
    """A build step changed state. ``platform`` is None for shared steps. State
    ``exported`` is no step: the image index is stored in the output layout (``name``
    is its digest) while the build's command still runs (buildx only)."""

    platform: str | None
    name: str
    state: str  # "started" | "done" | "cached" | "error" | "exported"
    error: str | None = None
    seconds: float | None = None


@dataclass
class Check:
    """One preflight question and its answer."""

    name: str
    ok: bool
    detail: str
    remedy: str = ""
    error: type[FatalError] | None = None  # what to raise when not ok (None: warning only)


@dataclass
class Plan:
    """What preflight found and decided: one :class:`Check` per question, the builder to
    pass, how each platform builds."""

    checks: list[Check] = field(default_factory=list)
    builder_arg: str | None = None  # the builder to build with (None: the engine's default)
    #: Commands preflight ran (or, with nothing to change, would run) to set the builder
    #: up: what a dry run prints before the build.
    setup_commands: list[list[str]] = field(default_factory=list)
    platform_modes: dict[str, str] = field(default_factory=dict)  # platform -> native|emulated
    #: The engine cannot be used: the checks that need it were not made.
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return all(c.ok or c.error is None for c in self.checks)

    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok and c.error is not None), None)

    def raise_for_failure(self) -> None:
        c = self.first_failure()
        if c is not None:
            assert c.error is not None
            raise c.error(f"{c.name}: {c.detail}", hint=c.remedy or None)


class Engine(Protocol):
    name: str
    #: Stopping a build (its command's process group) stops everything it runs: a check
    #: made while it builds may stop it (:mod:`polyarch.pipeline.local`).
    cancels_cleanly: bool

    def preflight(self, platforms: Sequence[Platform], *, builder: str | None = None,
                  nodes: Sequence[NodeSpec] = (), allow_create: bool = True) -> Plan:
        """The engine's own checks (is it there, which builder, can it build each
        platform) and its plan; sets a builder up where ``allow_create``. Look-ups that
        answered are made once per engine object."""
        ...

    def use_builder(self, name: str | None) -> None:
        """Build with this builder (what preflight chose; None: the engine's default)."""
        ...

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]: ...

    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None,
        cancel: Cancel | None = None,
    ) -> BuildResult:
        """Build ``req``; ``cancel`` stops it from another thread (its error is raised).
        The build's command runs with ``cancel`` (:func:`polyarch.proc.run` sets
        ``cancel.started`` when it starts it: work beside the build waits for that)."""
        ...

    def run_argv(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]: ...

    def load(self, layout: Path, names: Sequence[str]) -> str:
        """Import the OCI layout into the engine's image store under ``names`` (every
        platform where the store can hold several); returns what was loaded, in words."""
        ...

    def runnable_platforms(self, layout: Path, digests: Sequence[str], name: str
                           ) -> dict[str, str]:
        """Make only the platform manifests ``digests`` of the layout runnable by
        :meth:`run_argv` (loading just what they reach, under names derived from
        ``name``, where the engine must load); returns digest -> reference to run."""
        ...

    def remove_images(self, names: Sequence[str]) -> None: ...

    def forget_runs(self, refs: Sequence[str]) -> None:
        """After running ``refs`` (from :meth:`runnable_platforms`): drop the names the
        runs left in the engine's store, leaving the images themselves (podman names an
        image it runs from ``oci:PATH`` after PATH)."""
        ...

