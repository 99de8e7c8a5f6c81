"""Lint a Dockerfile for multi-architecture pitfalls.

``parser`` reads the file as BuildKit does, ``shellwords`` expands variables with
BuildKit's lexer semantics, ``graph`` builds the stage graph each target platform
really builds, ``shell`` reads RUN scripts, and ``rules/`` holds one module per rule.
Nothing here touches the network: PA005 asks an injected ``platform_lookup``.
"""

from __future__ import annotations

from collections.abc import Sequence

from polyarch.lint import suppress
from polyarch.lint.context import LintContext
from polyarch.lint.graph import PLATFORM_ARGS, build_graph
from polyarch.lint.model import (
    RULES,
    SEVERITY_RANK,
    Dockerfile,
    Finding,
    LookupFailed,
    PlatformLookup,
    Severity,
    Stage,
)
from polyarch.lint.parser import parse
from polyarch.lint.rules import CHECKS, pa000_parse, pa005_base_platforms
from polyarch.platforms import DEFAULT_PLATFORMS, Platform, parse_platform

DEFAULT_TARGETS: tuple[Platform, ...] = tuple(parse_platform(x) for x in DEFAULT_PLATFORMS)

__all__ = [
    "DEFAULT_TARGETS", "PLATFORM_ARGS", "RULES", "SEVERITY_RANK", "Dockerfile", "Finding",
    "LookupFailed", "PlatformLookup", "Severity", "Stage", "build_graph", "lint", "parse",
]


def lint(
    text: str,
    *,
    path: str = "Dockerfile",
    platforms: Sequence[Platform] = DEFAULT_TARGETS,
    platform_lookup: PlatformLookup | None = None,
    target: str | None = None,
) -> list[Finding]:
    """Lint Dockerfile ``text`` for building ``platforms`` (stage ``target``, default the
    last); findings sorted by line, inline suppressions applied.

    ``platform_lookup(ref)`` returns the platforms an image provides, or ``None`` (or
    raises :class:`LookupFailed`) when it cannot tell; then rule PA005 gives a note
    (PA006) instead. Without a lookup, base images are not checked.
    """
    df = parse(text)
    ctx = LintContext(df, path, tuple(platforms), target)
    if df.stages:
        for check in CHECKS:
            check(ctx)
        if platform_lookup is not None:
            pa005_base_platforms.check(ctx, platform_lookup)
    # Last: the rules may find more (an ARG chain too large to expand).
    pa000_parse.check(ctx)
    seen: set[tuple[str, int, str]] = set()
    out: list[Finding] = []
    for f in sorted(ctx.findings, key=lambda f: (f.line, f.rule)):
        key = (f.rule, f.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return suppress.apply(df, out)
