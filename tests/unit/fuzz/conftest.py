"""Property tests of bad input: whatever a user, a file or the environment hands the CLI,
polyarch ends with a documented exit code and one error line, never a traceback or the
internal-error exit 70.

The CLI runs in process (click's runner). A command that gets past its input checks goes
on to start the engine or to call a registry; here that is where the run stops: starting
a process or opening an HTTP connection raises :class:`LeftTheProcess`, and the input
counts as accepted (the real run would go on with the engine).

Budget: ``POLYARCH_FUZZ_EXAMPLES`` examples per property (default 200); under ``CI``
the examples are derandomized, so a CI run is repeatable.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any, NoReturn

import httpx
import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

settings.register_profile(
    "polyarch-fuzz",
    max_examples=int(os.environ.get("POLYARCH_FUZZ_EXAMPLES", "200")),
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)
settings.load_profile("polyarch-fuzz")


class LeftTheProcess(BaseException):  # noqa: N818  (not an error: a stop signal)
    """The command got past its input checks and tried to start a process or to reach
    a registry. A BaseException, so no ``except Exception`` in polyarch swallows it."""


def _stop(*args: Any, **kwargs: Any) -> NoReturn:
    argv = args[0] if args else kwargs.get("args")
    if isinstance(argv, list | tuple) and argv and os.path.basename(str(argv[0])) == "git":
        # As on a machine without git (a CI container): git state comes from CI
        # variables only, and the command goes on to the input under test.
        raise FileNotFoundError(2, "No such file or directory", "git")
    # What the real Popen refuses before it starts anything, it refuses here too.
    words = [argv] if isinstance(argv, str | bytes) else list(argv or [])
    env = kwargs.get("env") or {}
    for w in [*words, *env.keys(), *env.values()]:
        if b"\0" in os.fsencode(w):  # UnicodeEncodeError for what cannot be encoded
            raise ValueError("embedded null byte")
    raise LeftTheProcess(repr(argv))


@pytest.fixture(autouse=True)
def _stop_at_the_engine(_forbid_processes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "Popen", _stop)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", _stop_http)


def _stop_http(self: httpx.HTTPTransport, request: httpx.Request) -> NoReturn:
    raise LeftTheProcess(f"{request.method} {request.url}")
