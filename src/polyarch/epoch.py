"""The build time a reproducible build asks for (``SOURCE_DATE_EPOCH``).

Its own module (it imports nothing of ours but :mod:`polyarch.errors`): every command
that builds checks the variable before anything runs, and that check must not load the
tag machinery of :mod:`polyarch.tags` (which re-exports :func:`build_time`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from polyarch.errors import UsageError


def build_time(env: Mapping[str, str]) -> datetime | None:
    """The build time from ``SOURCE_DATE_EPOCH`` (reproducible builds; buildx passes it to
    the build too), else ``None``. The one place it is read; every command that builds
    checks it before anything runs, a dry run included."""
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise UsageError(f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a Unix time in seconds",
                         hint="a Unix time in seconds, for example $(git log -1 --format=%ct)")
    try:
        if len(raw) > 12:
            raise OverflowError
        return datetime.fromtimestamp(int(raw), UTC)
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"SOURCE_DATE_EPOCH={raw[:40]!r} is out of range",
                         hint="a Unix time in seconds, for example $(git log -1 --format=%ct)"
                         ) from None
