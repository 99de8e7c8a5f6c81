"""What preflight found: one :class:`Check` per question, and the :class:`Plan` the build
follows (builder, how each platform builds). Below both preflight and the builder-node
planning, which fill it in."""

from __future__ import annotations

from dataclasses import dataclass, field

from polyarch.engines.buildx import BuilderInfo, EngineInfo
from polyarch.errors import FatalError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    remedy: str = ""
    error: type[FatalError] | None = None  # what to raise when not ok (None: warning only)


@dataclass
class Plan:
    """What preflight decided: which builder to pass, how each platform builds."""

    checks: list[Check] = field(default_factory=list)
    engine: EngineInfo | None = None
    builder: BuilderInfo | None = None
    builder_arg: str | None = None  # value for --builder (None: the current builder)
    create_builder: list[str] | None = None  # command to create the dedicated builder
    node_commands: list[list[str]] = field(default_factory=list)  # buildx create per node
    platform_modes: dict[str, str] = field(default_factory=dict)  # platform -> native|emulated

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
