"""buildx's progress output read back: a failed build is classified by what failed
(the engine, the registry, or a step of the build)."""

from __future__ import annotations

from polyarch.engines.buildx_progress import RawJsonProgress, build_failure
from polyarch.errors import BuildError, EnvironmentProblem, RegistryError


def _failure(*lines: str) -> Exception:
    p = RawJsonProgress(None)
    for ln in lines:
        p.feed(ln)
    return build_failure(p)


def test_build_failures_are_classified() -> None:
    assert isinstance(_failure("ERROR: failed to dial gRPC: cannot connect to the docker"
                               " daemon"), EnvironmentProblem)
    assert isinstance(_failure("ERROR: failed to solve: failed to push r/a:1: connection"
                               " refused"), RegistryError)
    failed_run = ["{", '  "vertexes": [{"digest": "d1", "name": "[2/2] RUN make",'
                  ' "started": "2026-01-01T00:00:00Z", "completed": "2026-01-01T00:00:01Z",'
                  ' "error": "exit code: 2"}]', "}",
                  "ERROR: failed to solve: process did not complete successfully: exit code: 2"]
    e = _failure(*failed_run)
    assert isinstance(e, BuildError) and "RUN make" in str(e)
