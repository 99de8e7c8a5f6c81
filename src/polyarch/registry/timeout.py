"""The registry deadline, without the HTTP stack: the ``registry_timeout`` setting
(``POLYARCH_REGISTRY_TIMEOUT``, declared in the option table, resolved at start-up and
checked there: a bad value is exit 2 before any command runs)."""

from __future__ import annotations

from polyarch import settings

#: The setting's environment variable, as the hints of a passed deadline name it.
TIMEOUT_ENV = "POLYARCH_REGISTRY_TIMEOUT"
DEFAULT_TIMEOUT = settings.DEFAULTS.registry_timeout


def default_timeout() -> float:
    """The deadline of one registry operation (a request with its retries), seconds:
    the run's ``registry_timeout`` setting."""
    return settings.current().registry_timeout
