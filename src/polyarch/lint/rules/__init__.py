"""One module per rule; each has ``check(ctx)`` that adds findings to the context."""

from __future__ import annotations

from collections.abc import Callable

from polyarch.lint.context import LintContext
from polyarch.lint.rules import (
    pa000_parse,
    pa001_hardcoded_arch,
    pa002_fixed_platform,
    pa003_emulated_build,
    pa004_undeclared_arg,
    pa007_build_detection,
    pa008_build_machine_output,
    pa009_platform_arg_default,
    pa010_unused_stage,
)

#: Rules that need nothing but the file (PA005/PA006 need a lookup: see pa005_base_platforms).
CHECKS: tuple[Callable[[LintContext], None], ...] = (
    pa001_hardcoded_arch.check,
    pa002_fixed_platform.check,
    pa003_emulated_build.check,
    pa004_undeclared_arg.check,
    pa007_build_detection.check,
    pa008_build_machine_output.check,
    pa009_platform_arg_default.check,
    pa010_unused_stage.check,
)

__all__ = ["CHECKS", "pa000_parse"]
