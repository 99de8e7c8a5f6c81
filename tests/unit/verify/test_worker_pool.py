"""Layers read by worker processes: the protocol, the pool's deadlines and errors, and
the same report as threads. Unit tests start no process: the workers here run the
worker's own ``serve`` loop in a thread, over real pipes (the process itself is
started in tests/engine/test_verify_layout.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch import redact
from polyarch.checks import parallel, worker
from polyarch.checks.layers import LayerFormatError, scan_layer
from polyarch.checks.secrets import prefilter
from polyarch.checks.verify import verify_source
from polyarch.errors import EnvironmentProblem, RegistryError
from polyarch.platforms import EM_AARCH64, EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

from .test_layers import elf

BOTH = parse_platforms("linux/amd64,linux/arm64")
GHP = "ghp_" + "R8vKq2LmX4tZ9wNc7YbH3jP6sD1fG5aE0uTo"  # made up, in GitHub's format


@pytest.fixture(autouse=True)
def _keep_the_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers here run in this process: what they load is undone after each test."""
    monkeypatch.setattr(prefilter, "_PREFILTER", prefilter._PREFILTER)


class PipeWorker:
    """A worker as the pool sees a process: stdin and stdout pipes, with the worker's
    ``serve`` loop (or ``behaviour``) reading and writing them in a thread."""

    def __init__(self, behaviour: str = "serve") -> None:
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        self.stdin: IO[bytes] | None = os.fdopen(w_in, "wb")
        self.stdout: IO[bytes] | None = os.fdopen(r_out, "rb")
        self._in = os.fdopen(r_in, "rb")
        self._out = os.fdopen(w_out, "wb")
        self.code: int | None = None
        self.killed = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(behaviour,), daemon=True)
        self.thread.start()

    def _run(self, behaviour: str) -> None:
        try:
            if behaviour == "serve":
                worker.serve(self._in, self._out)
            elif behaviour == "die":  # reads the known values and one frame, then dies
                worker.read_frame(self._in, worker.MAX_CONTROL)
                worker.read_frame(self._in, worker.MAX_CONTROL)
                self.code = -9
            elif behaviour == "hang":  # reads nothing more, answers nothing
                self.killed.wait(30)
        except (OSError, ValueError, worker.ProtocolError):
            pass
        finally:
            for f in (self._out, self._in):
                with contextlib.suppress(OSError):
                    f.close()
            if self.code is None:
                self.code = -9 if self.killed.is_set() else 0

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else self.code

    def kill(self) -> None:
        self.killed.set()  # a hanging worker then closes its ends of the pipes

    def wait(self, timeout: float | None = None) -> int:
        self.thread.join(timeout)
        return self.code if self.code is not None else -9


class Blobs:
    """An image source of in-memory blobs (the pool reads nothing else of it)."""

    description = "test blobs"
    ref = None

    def __init__(self, blobs: dict[str, bytes], fail: set[str] | None = None) -> None:
        self.blobs = blobs
        self.fail = fail or set()

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        data = self.blobs[digest]
        for i in range(0, len(data), 100_000):
            yield data[i:i + 100_000]
            if digest in self.fail:
                raise RegistryError(f"blob {digest} does not match its digest")


def layers() -> dict[str, bytes]:
    a, _ = make_layer({"bin/app": elf(EM_X86_64), "srv/.npmrc":
                       f"//registry.npmjs.org/:_authToken={GHP}\n".encode()})
    b, _ = make_layer({"bin/app": elf(EM_AARCH64), "big.txt": os.urandom(300_000).hex()
                       .encode()}, "zstd")
    return {"sha256:a": a, "sha256:b": b, "sha256:bad": b"\x1f\x8b\x08\x00" + b"\0" * 64}


def test_the_worker_loop_answers_what_the_walker_finds() -> None:
    blobs = layers()
    inp = io.BytesIO()
    inp.write(worker.frame(b"K", b'{"known": [], "prefilter": null}'))
    for dg in ("sha256:a", "sha256:bad", "sha256:b"):
        inp.write(worker.frame(b"L", dg.encode()))
        data = blobs[dg]
        for i in range(0, len(data), 5000):
            inp.write(worker.frame(b"D", data[i:i + 5000]))
        inp.write(worker.frame(b"E"))
    inp.seek(0)
    out = io.BytesIO()
    worker.serve(inp, out)
    out.seek(0)
    answers = []
    while (fr := worker.read_frame(out, 1 << 30)) is not None:
        answers.append(json.loads(fr[1]))
    assert len(answers) == 3
    assert answers[0]["scan"] == scan_layer("sha256:a", [blobs["sha256:a"]]).to_json()
    assert answers[1]["raise"] == "LayerFormatError"  # and the next layer is still read
    assert answers[2]["scan"] == scan_layer("sha256:b", [blobs["sha256:b"]]).to_json()


def test_a_frame_over_its_limit_is_refused_before_it_is_read() -> None:
    data = io.BytesIO(b"D" + (worker.MAX_DATA + 1).to_bytes(4, "big"))
    with pytest.raises(worker.ProtocolError, match="over the limit"):
        worker.read_frame(data, worker.MAX_DATA)


def test_the_pool_scans_as_the_walker_does_and_passes_on_layer_errors() -> None:
    blobs = layers()
    with parallel.WorkerPool(2, PipeWorker) as pool:
        src: Any = Blobs(blobs)
        for dg in ("sha256:a", "sha256:b"):
            assert pool.scan(src, dg).to_json() == scan_layer(dg, [blobs[dg]]).to_json()
        with pytest.raises(LayerFormatError):
            pool.scan(src, "sha256:bad")
        # The worker that read the broken layer serves the next ones.
        for _ in range(3):
            assert pool.scan(src, "sha256:a").secrets


def test_the_workers_look_for_the_values_given_to_this_build() -> None:
    blobs = layers()
    value = "Kq7pLm2Xv9TzR4wN8sYb"
    token, _ = make_layer({"srv/app/settings.txt": f"password {value}\n".encode()})
    src: Any = Blobs({"sha256:t": token})
    try:
        redact.register([value])
        with parallel.WorkerPool(1, PipeWorker) as pool:
            scan = pool.scan(src, "sha256:t")
    finally:
        redact.REDACTOR.clear()
    assert [h.kind for h in scan.secrets["/srv/app/settings.txt"]] == [
        "value of a secret given to this build"]
    assert blobs


def test_a_source_error_is_raised_and_the_worker_serves_on() -> None:
    blobs = layers()
    src: Any = Blobs(blobs, fail={"sha256:b"})
    with parallel.WorkerPool(1, PipeWorker) as pool:
        with pytest.raises(RegistryError, match="does not match"):
            pool.scan(src, "sha256:b")
        assert pool.scan(src, "sha256:a").elf


def test_a_worker_that_dies_is_an_environment_problem_not_a_hang() -> None:
    src: Any = Blobs(layers())
    with parallel.WorkerPool(1, lambda: PipeWorker("die")) as pool:
        with pytest.raises(EnvironmentProblem, match="killed by signal 9") as e:
            pool.scan(src, "sha256:b")
        assert e.value.exit_code == 3
        with pytest.raises(EnvironmentProblem, match="a worker process ended"):
            pool.scan(src, "sha256:a")  # the pool is broken: no wait for a free worker


def test_a_worker_that_stops_answering_is_killed_at_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    src: Any = Blobs(layers())
    monkeypatch.setattr(prefilter, "compiled", lambda: None)  # a first frame a pipe holds
    with parallel.WorkerPool(1, lambda: PipeWorker("hang"), stall=0.5) as pool, \
            pytest.raises(EnvironmentProblem, match="made no progress"):
        pool.scan(src, "sha256:b")


def test_a_worker_that_reads_nothing_at_its_start_is_killed_at_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefilter, "compiled", lambda: (b"x" * (1 << 20), b""))  # > a pipe
    t0 = time.monotonic()
    with pytest.raises(EnvironmentProblem, match="made no progress at its start") as e:
        parallel.WorkerPool(1, lambda: PipeWorker("hang"), stall=0.5)
    assert e.value.exit_code == 3 and time.monotonic() - t0 < 10


def test_processes_only_for_enough_work_in_two_layers_on_two_cores() -> None:
    big = parallel.PROCESS_BYTES
    assert parallel.processes_for(["a", "b"], {"a": big, "b": 1}, 2) == 2
    assert parallel.processes_for(["a", "b", "c"], {"a": big}, 8) == 3
    assert parallel.processes_for(["a"], {"a": 10 * big}, 8) == 0  # one layer: threads
    assert parallel.processes_for(["a", "b"], {"a": big // 4, "b": big // 4}, 8) == 0
    assert parallel.processes_for(["a", "b"], {"a": big, "b": big}, 1) == 0


def test_verify_with_workers_gives_the_report_threads_give(tmp_path: Path) -> None:
    amd = make_layer({"bin/app": elf(EM_X86_64), "srv/.npmrc":
                      f"//registry.npmjs.org/:_authToken={GHP}\n".encode()})
    arm = make_layer({"bin/app": elf(EM_X86_64)}, "zstd")  # the wrong machine
    d = write_oci_layout(tmp_path / "l", [("linux/amd64", [(*amd, "gzip")]),
                                          ("linux/arm64", [(*arm, "zstd")])])
    threads = verify_source(OCILayout(d), BOTH, cache=None, processes=0)
    procs = verify_source(OCILayout(d), BOTH, cache=None, processes=2, spawn=PipeWorker)
    assert [p.to_json() for p in procs.platforms] == [p.to_json() for p in threads.platforms]
    assert {f.kind for _, f in procs.errors()} >= {"wrong-machine"}
    assert any(f.check == "secrets" for _, f in procs.errors())


def test_closing_the_results_stops_the_workers() -> None:
    """What happens on Ctrl-C or an error in the caller: the workers are killed, the
    feeding threads end."""
    started: list[PipeWorker] = []

    def spawn() -> PipeWorker:
        started.append(PipeWorker())
        return started[-1]

    blobs = layers()
    src: Any = Blobs(blobs)
    with ThreadPoolExecutor(2) as threads:
        results = parallel.scan_all(src, list(blobs), {"sha256:a": 9, "sha256:b": 5},
                                    threads=threads, processes=2, spawn=spawn)
        digest, get = next(results)
        assert digest == "sha256:a" and get().elf
        results.close()
    assert len(started) == 2
    for w in started:
        w.thread.join(10)
        assert w.poll() is not None


def test_workers_that_cannot_be_started_leave_the_work_to_threads(tmp_path: Path) -> None:
    def spawn() -> PipeWorker:
        raise FileNotFoundError("no interpreter")

    amd = make_layer({"bin/app": elf(EM_X86_64)})
    arm = make_layer({"bin/app": elf(EM_AARCH64)}, "zstd")
    d = write_oci_layout(tmp_path / "l", [("linux/amd64", [(*amd, "gzip")]),
                                          ("linux/arm64", [(*arm, "zstd")])])
    report = verify_source(OCILayout(d), BOTH, cache=None, processes=2, spawn=spawn)
    assert report.layers_read == 2 and not report.errors()
