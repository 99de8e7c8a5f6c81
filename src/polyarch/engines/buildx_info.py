"""What the buildx engine learns of Docker and its builders, and the part of the engine its
preflight (:mod:`polyarch.engines.buildx_plan`, :mod:`polyarch.engines.buildx_nodes`)
asks: below :mod:`polyarch.engines.buildx`, which uses them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")

DEDICATED_BUILDER = "polyarch"


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    arch: str  # as the daemon reports it (x86_64, aarch64)
    os: str
    containerd_store: bool


@dataclass(frozen=True)
class NodeInfo:
    name: str
    endpoint: str
    status: str
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    nodes: tuple[NodeInfo, ...] = field(default_factory=tuple)

    @property
    def platforms(self) -> tuple[str, ...]:
        seen: list[str] = []
        for n in self.nodes:
            seen.extend(p for p in n.platforms if p not in seen)
        return tuple(seen)


class BuildxProbes(Protocol):
    """The look-ups of the buildx engine its preflight makes (:class:`~polyarch.engines.
    buildx.Buildx` is one)."""

    docker_context: str | None

    def buildx(self, *args: str) -> list[str]: ...
    def engine_info(self) -> EngineInfo: ...
    def buildx_version(self) -> str: ...
    def inspect_builder(self, name: str | None = None) -> BuilderInfo | None: ...
    def remember(self, what: str, look_up: Callable[[], T]) -> T: ...
