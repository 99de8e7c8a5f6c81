"""Bounded answers: every body a registry sends is read under a size limit and a
minimum rate, while it streams.

* **Size.** A response body may hold at most :data:`MAX_BODY` bytes (4 MiB: manifests,
  indexes, configs, tokens, error bodies, tag lists), unless the request names its own
  limit (a blob: its descriptor's size). A declared ``Content-Length`` over the limit
  is refused before a byte is read; a body without one (or chunked) is cut as soon as
  it passes the limit. Nothing is buffered beyond it.
* **Rate.** One operation (:class:`Deadline`) must move at least :data:`MIN_RATE` bytes
  per second averaged over the deadline's length (``POLYARCH_REGISTRY_TIMEOUT``, 60 s):
  each time it has moved ``MIN_RATE x deadline`` bytes the deadline starts again;
  a transfer that has not by then ends with exit 4. A registry that drips one byte
  every few seconds is thus ended like one that stalls.
* **Encoding.** Requests ask for ``Accept-Encoding: identity``; a body that comes
  gzip- or deflate-encoded anyway is decoded here, in bounded steps, and the limit
  applies to the decoded bytes (a small compressed answer cannot expand in memory).
  Any other encoding is refused.

* **Every wait.** Below httpx, each connection's reads and writes (an answer's
  headers included, and an upload a registry takes a byte at a time) wait at most until
  the current request's deadline and count the bytes they move (:class:`_PacedStream`);
  a wait cut short while bytes trickled in is reported as too slow, a long silence is
  left to the caller's retries and resumes as a stall.

:class:`GuardedTransport` applies all of it below httpx's client, so every read —
including the ones httpx makes itself (a ``401`` answered by the auth flow) — is
bounded. A request states its limit, deadline and description in its extensions
(:func:`extensions`).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from polyarch.errors import RegistryError
from polyarch.registry.timeout import TIMEOUT_ENV

#: Largest body read whole: a manifest, index, config, token, error body (the
#: distribution registry's own limit for manifests).
MAX_BODY = 4 * 1024 * 1024
#: Slowest transfer accepted, in bytes per second averaged over the deadline.
MIN_RATE = 1024
#: Bytes decoded per step from a gzip/deflate body.
_STEP = 64 * 1024

LIMIT = "polyarch.limit"
DEADLINE = "polyarch.deadline"
WHAT = "polyarch.what"
SIZED = "polyarch.sized"


class Deadline:
    """The end of one operation and the minimum rate it must keep.

    The deadline is ``seconds`` from the start; every ``MIN_RATE x seconds`` bytes moved
    (:meth:`progress`) start it again, and :meth:`extend` does so at once.
    """

    def __init__(self, seconds: float, min_rate: int = MIN_RATE) -> None:
        self.seconds = seconds
        self.min_rate = min_rate
        self.start = time.monotonic()
        self.end = self.start + seconds
        #: Bytes moved since the deadline last started.
        self.moved = 0

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def passed(self) -> bool:
        return time.monotonic() > self.end

    def extend(self) -> None:
        self.end = time.monotonic() + self.seconds
        self.moved = 0

    def progress(self, n: int) -> None:
        """``n`` more bytes moved: the deadline starts again once enough have."""
        self.moved += n
        if self.moved >= self.min_rate * self.seconds:
            self.extend()

    def timeout(self) -> httpx.Timeout:
        left = max(0.5, self.remaining())
        return httpx.Timeout(left, connect=min(left, 10.0))

    def too_slow(self, host: str, what: str) -> RegistryError:
        return RegistryError(
            f"registry {host}: {what}: the transfer moved {self.moved} bytes in the last"
            f" {self.seconds:g} s, slower than the minimum of {self.min_rate} bytes/s",
            hint=f"the registry or the network is too slow; {TIMEOUT_ENV}=SECONDS sets the"
                 f" deadline the rate is measured over (now {self.seconds:g} s)")


def extensions(limit: int | None, deadline: Deadline, what: str,
               sized: bool = False) -> dict[str, Any]:
    """Request extensions that bound the answer: ``limit`` bytes (None: no size limit,
    for a blob whose size is not known; ``sized``: the limit is the size a descriptor
    gives), ``deadline`` and a description for messages."""
    return {LIMIT: limit, DEADLINE: deadline, WHAT: what, SIZED: sized}


def too_large(host: str, what: str, limit: int, declared: int | None = None,
              sized: bool = False) -> RegistryError:
    said = f" (it declares {declared} bytes)" if declared is not None else ""
    if sized:
        return RegistryError(
            f"registry {host}: {what}: the answer is larger than the {limit} bytes its"
            f" descriptor says{said}",
            hint="a wrong size in the manifest, or a registry sending more than it holds")
    return RegistryError(
        f"registry {host}: {what}: the answer is larger than {limit} bytes{said}",
        hint="a registry answer this large is refused; check the registry (or a proxy in"
             " front of it)")


class _Decoder:
    """gzip/deflate in bounded steps (at most ``_STEP`` bytes out per step)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)
        self._first = encoding == "deflate"

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._z.decompress(data, _STEP)
            except zlib.error:
                if not self._first:
                    raise
                # "deflate" is sent both zlib-wrapped (as specified) and raw.
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                continue
            self._first = False
            data = self._z.unconsumed_tail
            if out:
                yield out
            elif not data:
                break

    def flush(self) -> bytes:
        return self._z.flush()


# -- the socket level: no single read or write waits past the deadline -------------------

_current = threading.local()
#: Bytes handed to the socket per write, so that the deadline is looked at between them.
_WRITE_STEP = 64 * 1024


def _use(deadline: Deadline, host: str, what: str) -> None:
    """The deadline of the request this thread is reading or writing now."""
    _current.deadline, _current.host, _current.what = deadline, host, what


def _bounded(timeout: float | None) -> float | None:
    dl: Deadline | None = getattr(_current, "deadline", None)
    if dl is None:
        return timeout
    left = dl.remaining()
    if left <= 0:
        raise dl.too_slow(_current.host, _current.what)
    return left if timeout is None else min(timeout, left)


def _moved(n: int) -> None:
    dl: Deadline | None = getattr(_current, "deadline", None)
    if dl is not None:
        dl.progress(n)


def _slow_or_stalled(timeout: float | None, wait: float | None) -> None:
    """A read or write timed out. When the deadline cut its wait short, and it had
    less than half the deadline left when it began, bytes were moving too slowly: that
    is reported as such (it is not worth a retry). A wait of half the deadline or more
    without a byte is a stall, left to the caller's retries and resumes."""
    dl: Deadline | None = getattr(_current, "deadline", None)
    if dl is None or wait is None or (timeout is not None and timeout <= wait):
        return
    if dl.moved > 0 and wait < dl.seconds / 2:
        raise dl.too_slow(_current.host, _current.what) from None


class _PacedStream(httpcore.NetworkStream):
    """A connection whose reads and writes wait at most until the current deadline: a
    registry that drips its headers or reads an upload a byte at a time ends there."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = _bounded(timeout)
        try:
            data = self._inner.read(max_bytes, wait)
        except httpcore.ReadTimeout:
            _slow_or_stalled(timeout, wait)
            raise
        _moved(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for i in range(0, len(buffer), _WRITE_STEP):
            piece = buffer[i:i + _WRITE_STEP]
            wait = _bounded(timeout)
            try:
                self._inner.write(piece, wait)
            except httpcore.WriteTimeout:
                _slow_or_stalled(timeout, wait)
                raise
            _moved(len(piece))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _PacedStream(self._inner.start_tls(ssl_context, server_hostname,
                                                  _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PacedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _PacedStream(self._inner.connect_tcp(host, port, _bounded(timeout),
                                                    local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _PacedStream(self._inner.connect_unix_socket(path, _bounded(timeout),
                                                            socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, *, host: str, what: str,
                 limit: int | None, deadline: Deadline, decoder: _Decoder | None,
                 sized: bool = False) -> None:
        self._sized = sized
        self._inner = inner
        self._host = host
        self._what = what
        self._limit = limit
        self._deadline = deadline
        self._decoder = decoder

    def _count(self, got: int, chunk: bytes) -> int:
        got += len(chunk)
        if self._limit is not None and got > self._limit:
            raise too_large(self._host, self._what, self._limit, sized=self._sized)
        return got

    def __iter__(self) -> Iterator[bytes]:
        got = 0
        dl = self._deadline
        chunks = iter(self._inner)
        while True:
            # Before every read (the consumer may have sent other requests since the
            # last one): the connection's reads wait until this request's deadline and
            # count the bytes they move (_PacedStream).
            _use(dl, self._host, self._what)
            try:
                raw = next(chunks)
            except StopIteration:
                break
            if self._decoder is None:
                got = self._count(got, raw)
                yield raw
                continue
            try:
                for chunk in self._decoder.feed(raw):
                    got = self._count(got, chunk)
                    yield chunk
            except zlib.error as e:
                raise RegistryError(f"registry {self._host}: {self._what}: the answer is not"
                                    f" valid {self._decoder.encoding} ({e})") from None
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._count(got, tail)
                yield tail

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose answers are bounded (see module): its connections
    never wait past the request's deadline, its response bodies are bounded in size."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpcore's pool takes a network backend; httpx does not pass one through.
        pool = getattr(self, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if not isinstance(backend, httpcore.NetworkBackend):  # pragma: no cover
            raise RuntimeError("httpcore's connection pool has no network backend to pace;"
                               " this httpx/httpcore version is not supported")
        pool._network_backend = _PacedBackend(backend)  # type: ignore[union-attr]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ext = request.extensions
        limit: int | None = ext.get(LIMIT, MAX_BODY)
        deadline = ext.get(DEADLINE)
        if not isinstance(deadline, Deadline):
            deadline = Deadline(60.0)
        what = str(ext.get(WHAT) or f"{request.method} {request.url.path}")
        sized = bool(ext.get(SIZED))
        host = urlsplit(str(request.url)).netloc
        _use(deadline, host, what)
        resp = super().handle_request(request)
        encoding = resp.headers.get("Content-Encoding", "").strip().lower()
        decoder = None
        if encoding and encoding != "identity":
            if encoding not in ("gzip", "x-gzip", "deflate"):
                resp.close()
                raise RegistryError(
                    f"registry {host}: {what}: the answer came with Content-Encoding"
                    f" {encoding[:40]!r}, which was not asked for (identity was)")
            decoder = _Decoder(encoding)
            del resp.headers["Content-Encoding"]
            resp.headers.pop("Content-Length", None)
        declared = resp.headers.get("Content-Length", "").strip()
        if (request.method != "HEAD" and limit is not None and declared.isdigit()
                and int(declared) > limit):
            resp.close()
            raise too_large(host, what, limit, int(declared), sized)
        inner = resp.stream
        assert isinstance(inner, httpx.SyncByteStream)
        resp.stream = GuardedStream(inner, host=host, what=what, limit=limit,
                                    deadline=deadline, decoder=decoder, sized=sized)
        return resp
