"""Verification of multi-platform images: coverage, labels, ELF machines, secrets, smoke.

The package imports none of its modules itself (so that ``checks.layers`` and the
others import each other without a cycle through here); the names below are loaded
from :mod:`polyarch.checks.verify` on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: at run time the names load on first use
    from polyarch.checks.verify import (
        CHECKS,
        Finding,
        PlatformResult,
        VerifyReport,
        verify,
        verify_source,
    )

__all__ = ["CHECKS", "Finding", "PlatformResult", "VerifyReport", "verify", "verify_source"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'polyarch.checks' has no attribute {name!r}")
    mod = importlib.import_module("polyarch.checks.verify")
    # Importing the submodule bound the name ``verify`` to it; the function wins.
    globals().update({n: getattr(mod, n) for n in __all__})
    return getattr(mod, name)
