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


def escape_glob(path: str) -> str:
    """``path`` as a glob matching only itself (``*``, ``?`` and ``[`` bracketed, as
    :func:`fnmatch.fnmatchcase` reads them)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def allow_argument(platform: object, path: str) -> str:
    """The ``--allow`` argument that accepts the finding about ``path`` on ``platform``
    only, quoted for a POSIX shell."""
    import shlex

    return "--allow " + shlex.quote(f"{platform}={escape_glob(path)}")
