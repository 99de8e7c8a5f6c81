"""``--allow``: known exceptions to the binaries and secrets checks.

Each entry is a path glob (every platform) or ``PLATFORM=GLOB`` (that platform only):
``*/prebuilds/*`` hides a finding everywhere, ``linux/amd64=*/prebuilds/*`` only in the
amd64 variant, so a bad prebuild in the arm64 variant still fails it.
"""

from __future__ import annotations

from collections.abc import Sequence


def allow_for(allow: Sequence[str], platform: object) -> tuple[str, ...]:
    """The globs of ``allow`` that apply to ``platform``: those without a platform and
    those given for it."""
    want = str(platform)
    out = []
    for a in allow:
        plat, sep, glob = a.partition("=")
        if not sep:
            out.append(a)
        elif plat == want:
            out.append(glob)
    return tuple(out)
