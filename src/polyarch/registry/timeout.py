"""The registry deadline setting, without the HTTP stack: commands check it before
anything runs (a bad value is exit 2), also those that never talk to a registry."""

from __future__ import annotations

import os
from collections.abc import Mapping

from polyarch.errors import ConfigError

#: Environment variable with the per-operation deadline in seconds.
TIMEOUT_ENV = "POLYARCH_REGISTRY_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


def default_timeout(environ: Mapping[str, str] | None = None) -> float:
    """The registry deadline: ``POLYARCH_REGISTRY_TIMEOUT`` seconds, else 60.

    This is the one place the variable is read.
    """
    env = os.environ if environ is None else environ
    raw = env.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 < value <= 86_400):
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
                          hint="use a number between 0 and 86400, e.g. 60")
    return value
