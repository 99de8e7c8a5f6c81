"""Build engines. One module each; all satisfy :class:`Engine`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from polyarch.platforms import Platform
from polyarch.refs import ImageRef


@dataclass(frozen=True)
class BuildRequest:
    """Everything one multi-platform build needs, engine-neutral."""

    context: Path
    dockerfile: Path
    platforms: tuple[Platform, ...]
    push_to: tuple[ImageRef, ...]
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    secrets: tuple[str, ...] = ()
    provenance: bool | None = None
    sbom: bool | None = None
    no_cache: bool = False
    pull: bool = False
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    build_contexts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildResult:
    digest: str
    """Digest of the pushed image index (or manifest for a single platform)."""
    media_type: str
    size: int
    seconds: float


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

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]: ...

    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None
    ) -> BuildResult: ...

    def run_argv(self, ref: str, platform: Platform, command: Sequence[str]) -> list[str]: ...
