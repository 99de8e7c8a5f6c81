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


def _status(vertex: str, sid: str, current: int) -> list[str]:
    """One ``statuses`` record as ``--progress=rawjson`` prints it (buildx 0.13)."""
    return ["{", f'  "statuses": [{{"id": "{sid}", "vertex": "{vertex}", "name": "transferring",'
            f' "current": {current}, "timestamp": "2026-12-06T21:46:55.5Z",'
            ' "started": "2026-12-06T21:46:55.0Z"}]', "}"]


def test_context_bytes_sum_the_largest_transfer_of_each_context() -> None:
    # Two platforms, each with its own "load build context" vertex, reported as the
    # transfer grows; the Dockerfile's own transfer is not build context.
    p = RawJsonProgress(None)
    for vertex, sid, n in (("sha256:df", "transferring dockerfile:", 160),
                           ("sha256:a", "transferring context:", 22_957),
                           ("sha256:b", "transferring context:", 813_660),
                           ("sha256:a", "transferring context:", 750_280_000),
                           ("sha256:a", "transferring context:", 750_280_000),
                           ("sha256:b", "transferring context:", 742_550_000)):
        for line in _status(vertex, sid, n):
            p.feed(line)
    assert p.context_bytes == 750_280_000 + 742_550_000


def test_named_contexts_count_too() -> None:
    # --build-context base-amd64=DIR: its own "[context base-amd64] load from client"
    # vertex; its .dockerignore load reports a few bytes under the same id.
    p = RawJsonProgress(None)
    for vertex, sid, n in (("sha256:i", "transferring base-amd64:", 2),
                           ("sha256:c", "transferring base-amd64:", 390_000_000),
                           ("sha256:d", "transferring context:", 33)):
        for line in _status(vertex, sid, n):
            p.feed(line)
    assert p.context_bytes == 390_000_000 + 2 + 33


def test_context_bytes_are_zero_without_a_transfer_status() -> None:
    p = RawJsonProgress(None)
    for line in _status("sha256:df", "transferring dockerfile:", 160):
        p.feed(line)
    assert p.context_bytes == 0


def _events(*records: str) -> list[tuple[str, str]]:
    """(state, name) of every event the parser gives for these rawjson records."""
    out: list[tuple[str, str]] = []
    p = RawJsonProgress(lambda ev: out.append((ev.state, ev.name)))
    for rec in records:
        for line in ["{", rec, "}"]:
            p.feed(line)
    return out


EXPORTER = '"digest": "sha256:ex", "name": "exporting to oci image format"'
INDEX = "exporting manifest list sha256:" + "c1" * 32


def test_the_exported_index_is_said_once_the_exporter_step_is_done() -> None:
    """The index digest (from the exporter's status) is given once the exporter's step
    completed: its blobs are in the layout then, while buildx still runs."""
    started = f'  "vertexes": [{{{EXPORTER}, "started": "2026-12-07T10:00:00Z"}}]'
    index_done = (f'  "statuses": [{{"id": "{INDEX}", "vertex": "sha256:ex",'
                  ' "started": "2026-12-07T10:00:00.1Z", "completed": "2026-12-07T10:00:00.2Z"}]')
    done = (f'  "vertexes": [{{{EXPORTER}, "started": "2026-12-07T10:00:00Z",'
            ' "completed": "2026-12-07T10:00:00.3Z"}]')
    ev = _events(started, index_done, done, done)
    assert [e for e in ev if e[0] == "exported"] == [("exported", "sha256:" + "c1" * 32)]
    # Before the step's end (its index written, other blobs maybe not yet): nothing.
    assert not [e for e in _events(started, index_done) if e[0] == "exported"]
    # The status and the step's end in one record: said too.
    both = (f'  "vertexes": [{{{EXPORTER}, "completed": "2026-12-07T10:00:00.3Z"}}],'
            f'\n  "statuses": [{{"id": "{INDEX}", "vertex": "sha256:ex",'
            ' "completed": "2026-12-07T10:00:00.2Z"}]')
    assert [e for e in _events(both) if e[0] == "exported"]
    # An exporter that failed, or a status not yet complete: nothing.
    failed = (f'  "vertexes": [{{{EXPORTER}, "completed": "2026-12-07T10:00:00.3Z",'
              ' "error": "failed to export"}]')
    assert not [e for e in _events(index_done, failed) if e[0] == "exported"]
    pending = f'  "statuses": [{{"id": "{INDEX}", "vertex": "sha256:ex"}}]'
    assert not [e for e in _events(pending, done) if e[0] == "exported"]
