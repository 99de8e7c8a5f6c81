"""What every rule gets: the parsed file, one stage graph per target platform, and a
place to put findings."""

from __future__ import annotations

from typing import Any

from polyarch.lint.graph import PlatformGraph, StageView, build_graph
from polyarch.lint.model import Dockerfile, Finding, Severity, Stage
from polyarch.platforms import Platform


class LintContext:
    def __init__(self, df: Dockerfile, path: str, platforms: tuple[Platform, ...],
                 target: str | None = None) -> None:
        self.df = df
        self.path = path
        self.platforms = platforms
        self.target = target
        self.graphs: list[PlatformGraph] = [build_graph(df, p, target=target) for p in platforms]
        self.findings: list[Finding] = []
        #: Per-stage results rules share (computed once).
        self.memo: dict[Any, Any] = {}

    def add(self, rule: str, severity: Severity, line: int, message: str, hint: str,
            stage: Stage | None) -> None:
        self.findings.append(Finding(rule, severity, line, message, hint, self.path,
                                     stage.label if stage is not None else None))

    def reached(self, index: int) -> list[tuple[PlatformGraph, StageView]]:
        """(graph, view) of every target platform that builds stage ``index``."""
        return [(g, g.views[index]) for g in self.graphs if index in g.reachable]

    def reachable_stages(self) -> list[Stage]:
        """Stages at least one target platform builds, in file order."""
        seen = set().union(*(g.reachable for g in self.graphs)) if self.graphs else set()
        return [st for st in self.df.stages if st.index in seen]

    @property
    def multi_arch(self) -> bool:
        return len({p.architecture for p in self.platforms}) > 1

    def in_final_lineage(self, index: int) -> bool:
        return any(index in g.lineage() for g in self.graphs if index in g.reachable)
