"""Read many layers at once, largest first: in worker processes when there is enough
to read, else in threads.

Decompression (zlib, ISA-L, zstandard) and the digest check release the GIL; the tar
walker and the content scanner's regular expressions, most of a layer's time, hold it.
So when at least :data:`PROCESS_BYTES` of compressed layers in two or more layers are
to be read, the walk runs in worker processes (:mod:`polyarch.checks.worker`, one per
core, at most one per layer), started with ``python -m`` so that nothing of the caller
(its ``__main__``) is imported again; where none can be started (an embedded Python
without an interpreter to run), threads read them. The parent still reads every blob
through its source (so a registry's or a layout's digest check is the same as with
threads) and streams it to a worker's stdin; the worker sends the scan back as JSON.
A rebuild that changed only its top layer stays under the threshold and pays no
process start.

Every wait on a worker has a deadline (:data:`STALL_SECONDS` without progress while
the parent waits on it): a worker that stops answering is killed. A worker that ends
or is killed before its answer (out of memory, a signal) is an
:class:`~polyarch.errors.EnvironmentProblem` (exit 3); never a hang. On Ctrl-C (or any
error) the workers are killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from polyarch.checks import secrets
from polyarch.checks.layers import LayerScan, scan_layer
from polyarch.checks.secrets import prefilter
from polyarch.checks.worker import MAX_DATA, PASSED_ON, ProtocolError, frame, read_frame
from polyarch.errors import EnvironmentProblem

if TYPE_CHECKING:
    from polyarch.registry.source import ImageSource

#: Least compressed bytes to read (in two or more layers) for worker processes to pay
#: for their start: measured, a worker takes 0.1 s of CPU to start and about 28 MiB at
#: work, and on two cores saves about 4 ms per MB of a gzip node_modules layer (the
#: walk and the scan no longer wait for the GIL): even at about 25 MB, twice that here.
PROCESS_BYTES = 48 << 20
#: Seconds a worker may keep the parent waiting (on a write to it or on its answer)
#: before it is killed.
STALL_SECONDS = 120.0
#: Largest answer read from a worker (a layer's scan as JSON).
MAX_RESULT = 1 << 30


class WorkerProcess(Protocol):
    """What the pool needs of a started worker (a :class:`subprocess.Popen`)."""

    stdin: IO[bytes] | None
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


#: Starts one worker process.
Spawn = Callable[[], WorkerProcess]


def spawn_worker() -> WorkerProcess:
    """``python -m polyarch.checks.worker`` with this process's interpreter, importing
    the same polyarch as this process (its directory first on ``PYTHONPATH``)."""
    import polyarch

    if not sys.executable:
        raise OSError("no Python interpreter to run (sys.executable is empty)")
    env = dict(os.environ)
    here = str(Path(polyarch.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "polyarch.checks.worker"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, close_fds=True)


def processes_for(todo: Sequence[str], sizes: dict[str, int], cores: int) -> int:
    """How many worker processes to read ``todo`` with: none (threads) for a single
    layer, a one-core machine or less than :data:`PROCESS_BYTES` in all; else one per
    core, at most one per layer."""
    if len(todo) < 2 or cores < 2 or sum(sizes.get(d, 0) for d in todo) < PROCESS_BYTES:
        return 0
    return min(cores, len(todo))


class _Worker:
    def __init__(self, proc: WorkerProcess) -> None:
        self.proc = proc
        #: Since when the parent waits on this worker (``None``: it does not).
        self.waiting_since: float | None = None
        self.killed_for_stall = False


class WorkerPool:
    """``n`` worker processes scanning layers streamed to them. :meth:`scan` is called
    from at most ``n`` threads at once; :meth:`close` kills every worker."""

    def __init__(self, n: int, spawn: Spawn = spawn_worker, *,
                 stall: float = STALL_SECONDS) -> None:
        self.stall = stall
        #: Idle workers; ``None`` once a worker died or the pool closed (every waiter
        #: that takes it puts it back, so that all of them stop at once).
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._all: list[_Worker] = []
        self._closed = threading.Event()
        pre = prefilter.compiled()
        known = json.dumps({"known": _known_strings(), "prefilter": [
            base64.b64encode(p).decode() for p in pre] if pre else None}).encode()
        # Watched from the start: a worker that does not read what it is sent first
        # (larger than a pipe's buffer) must not keep the caller waiting either.
        self._watchdog = threading.Thread(target=self._watch, name="verify-watchdog",
                                          daemon=True)
        self._watchdog.start()
        try:
            for _ in range(n):
                w = _Worker(spawn())
                self._all.append(w)
                self._send(w, frame(b"K", known))
                self._idle.put(w)
        except OSError as e:
            self.close()
            if self._all and self._all[-1].killed_for_stall:
                raise EnvironmentProblem(
                    f"a verification worker process made no progress at its start for"
                    f" {self.stall:.0f} s and was stopped", hint="the machine may be overloaded"
                ) from None
            raise EnvironmentProblem(f"cannot start a verification worker process"
                                     f" ({sys.executable} -m polyarch.checks.worker): {e}"
                                     ) from None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return len(self._all)

    def close(self) -> None:
        self._closed.set()
        self._idle.put(None)
        for w in self._all:
            if w.proc.poll() is None:
                w.proc.kill()
            for f in (w.proc.stdin, w.proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    if f is not None:
                        f.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(timeout=10)

    def _watch(self) -> None:
        while not self._closed.wait(min(1.0, self.stall / 4)):
            now = time.monotonic()
            for w in self._all:
                since = w.waiting_since
                if since is not None and now - since > self.stall and w.proc.poll() is None:
                    w.killed_for_stall = True
                    w.proc.kill()

    def _send(self, w: _Worker, data: bytes | memoryview) -> None:
        assert w.proc.stdin is not None
        w.waiting_since = time.monotonic()
        try:
            w.proc.stdin.write(data)
        finally:
            w.waiting_since = None

    def scan(self, src: ImageSource, digest: str) -> LayerScan:
        """Stream the blob ``digest`` of ``src`` to an idle worker; its scan."""
        try:
            w = self._idle.get(timeout=self.stall)
        except queue.Empty:
            raise EnvironmentProblem("no verification worker became free within"
                                     f" {self.stall:.0f} s") from None
        if w is None:  # the pool is closing or broken: pass the word on
            self._idle.put(None)
            raise EnvironmentProblem("verification stopped (a worker process ended)"
                                     if not self._closed.is_set() else
                                     "verification was stopped")
        alive = False
        try:
            doc, failed = self._exchange(w, src, digest)
            alive = True
        finally:
            self._idle.put(w if alive and not self._closed.is_set() else None)
        if failed is not None:
            raise failed
        if "scan" in doc:
            return LayerScan.from_json(doc["scan"])
        cls = PASSED_ON.get(str(doc.get("raise")))
        if cls is not None:
            raise cls(str(doc.get("message")))
        raise EnvironmentProblem(f"verification worker failed on layer {digest}:"
                                 f" {doc.get('message')}")

    def _exchange(self, w: _Worker, src: ImageSource, digest: str
                  ) -> tuple[dict[str, Any], Exception | None]:
        """Send one layer, read the answer; with the error the source raised, if any (a
        digest that does not match, a read that fails): the layer then ends early, and
        the worker, once it has answered, serves the next layer."""
        failed: Exception | None = None
        try:
            self._send(w, frame(b"L", digest.encode()))
            try:
                for chunk in src.iter_blob(digest):
                    view = memoryview(chunk)
                    for i in range(0, len(chunk), MAX_DATA):
                        piece = view[i:i + MAX_DATA]
                        self._send(w, b"D" + len(piece).to_bytes(4, "big"))
                        self._send(w, piece)  # no copy of the data
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as e:  # noqa: BLE001 - raised below, after the answer
                failed = e
            self._send(w, frame(b"E"))
            assert w.proc.stdin is not None and w.proc.stdout is not None
            w.waiting_since = time.monotonic()
            try:
                w.proc.stdin.flush()
                answer = read_frame(w.proc.stdout, MAX_RESULT)
            finally:
                w.waiting_since = None
        except (BrokenPipeError, ConnectionResetError, ProtocolError, ValueError):
            answer = None
        if answer is None or answer[0] != b"R":
            if failed is not None:
                raise failed
            raise self._died(w, digest)
        doc = json.loads(answer[1])
        if not isinstance(doc, dict):
            raise self._died(w, digest)
        return doc, failed

    def _died(self, w: _Worker, digest: str) -> EnvironmentProblem:
        if self._closed.is_set():
            return EnvironmentProblem("verification was stopped")
        if w.killed_for_stall:
            return EnvironmentProblem(
                f"verification worker made no progress on layer {digest} for"
                f" {self.stall:.0f} s and was stopped", hint="the machine may be overloaded")
        try:
            code = w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            code = None
        how = (f"killed by signal {-code}" if code is not None and code < 0 else
               f"exit status {code}" if code is not None else "no answer")
        hint = "out of memory?" if code == -9 else "verify with --workers 1 to read in threads"
        return EnvironmentProblem(f"verification worker process ended while reading layer"
                                  f" {digest} ({how})", hint=hint)


def _known_strings() -> list[str]:
    """The values this run looks for in every layer, as the worker registers them."""
    from polyarch import redact

    secrets.known_values()  # the same values the scanner uses here
    return list(redact.secret_values())


def scan_all(src: ImageSource, digests: Sequence[str], sizes: dict[str, int], *,
             threads: ThreadPoolExecutor, processes: int = 0, spawn: Spawn = spawn_worker
             ) -> Generator[tuple[str, Callable[[], LayerScan]], None, None]:
    """(digest, result getter) for each of ``digests``, largest first (the longest
    reads start at once, the small ones fill in); the getter raises what reading the
    layer raised. With ``processes`` > 0, each layer is scanned by one of that many
    worker processes (``spawn`` starts one), fed from a thread of this process per
    worker; else in ``threads``. Close the iterator (or read it to its end) to stop
    the workers: on an error or Ctrl-C in the caller, they are killed."""
    order = sorted(digests, key=lambda d: -sizes.get(d, 0))
    pool: WorkerPool | None = None
    if processes > 0:
        try:
            pool = WorkerPool(processes, spawn)
        except EnvironmentProblem:  # no interpreter to start (an embedded Python)
            pool = None
    if pool is None:
        futures = {d: threads.submit(_scan, src, d) for d in order}
        for d, fut in futures.items():
            yield d, fut.result
        return
    feeders = ThreadPoolExecutor(max_workers=pool.size, thread_name_prefix="verify-feed")
    pfutures: dict[str, Future[LayerScan]] = {}
    try:
        for d in order:
            pfutures[d] = feeders.submit(pool.scan, src, d)
        for d, fut in pfutures.items():
            yield d, fut.result
    finally:
        pool.close()  # a feeder writing to or waiting on a worker stops at once
        feeders.shutdown(wait=True, cancel_futures=True)


def _scan(src: ImageSource, digest: str) -> LayerScan:
    return scan_layer(digest, src.iter_blob(digest))
