"""A layer-scanning worker process: ``python -m polyarch.checks.worker``.

The parent streams layer blobs to the worker's stdin and reads each scan back from its
stdout, so that the tar walker and the content scanner (which hold the GIL) run on
another core. The worker imports the walker and nothing of the registry client; the
parent reads the blob (and checks its digest) as it would for a thread.

The protocol is frames of ``kind (1 byte) + length (4 bytes, big-endian) + payload``:

parent -> worker
    ``K`` (once, first) as JSON: ``known``, the values this run knows are secret (a
    list of strings: the content scanner looks for them), and ``prefilter``, the
    content scanner's prefilter compiled by the parent (base64, or ``null``); ``L`` a
    layer starts (payload: its digest); ``D`` a piece of its blob (at most
    :data:`MAX_DATA` bytes); ``E`` its end.
worker -> parent
    ``R`` the result of one layer, as JSON: ``{"scan": LayerScan.to_json()}`` or
    ``{"raise": class name, "message": text}`` for an error the walker raised.

The worker ignores SIGINT (the parent stops it on Ctrl-C) and ends at the end of its
stdin, so a parent that dies leaves no worker behind.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
from collections.abc import Iterator
from typing import IO, Any

from polyarch import redact
from polyarch.checks.layers import LayerFormatError, scan_layer
from polyarch.checks.secrets import prefilter

#: Largest ``D`` frame (the parent splits larger pieces).
MAX_DATA = 1 << 20
#: Largest control frame (``K``, ``L``).
MAX_CONTROL = 1 << 20
#: Exceptions of the walker passed on by name (the parent raises the same class);
#: any other is reported as a failure of the worker.
PASSED_ON = {"LayerFormatError": LayerFormatError, "ValueError": ValueError,
             "KeyError": KeyError, "TypeError": TypeError, "AttributeError": AttributeError}


class ProtocolError(Exception):
    """The other end sent something the protocol does not allow (or ended early)."""


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def read_exact(f: IO[bytes], n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        piece = f.read(n - len(out))
        if not piece:
            raise ProtocolError(f"stream ended {n - len(out)} bytes early")
        out += piece
    return bytes(out)


def read_frame(f: IO[bytes], limit: int) -> tuple[bytes, bytes] | None:
    """The next frame, or ``None`` at a clean end of the stream. A frame longer than
    ``limit`` is a :class:`ProtocolError` (nothing that large is read into memory)."""
    head = f.read(5)
    if not head:
        return None
    if len(head) < 5:
        head += read_exact(f, 5 - len(head))
    n = int.from_bytes(head[1:], "big")
    if n > limit:
        raise ProtocolError(f"frame of {n} bytes is over the limit of {limit}")
    if not n:
        return head[:1], b""
    data = f.read(n)  # a buffered stream gives all n bytes at once (no copy)
    if len(data) < n:
        data += read_exact(f, n - len(data))
    return head[:1], data


class _Blob:
    """The ``D`` frames of one layer, up to its ``E``, as an iterator of chunks."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        while not self.ended:
            fr = read_frame(self.f, MAX_DATA)
            if fr is None:
                raise ProtocolError("stream ended inside a layer")
            kind, payload = fr
            if kind == b"E":
                self.ended = True
            elif kind == b"D":
                yield payload
            else:
                raise ProtocolError(f"frame {kind!r} inside a layer")

    def drain(self) -> None:
        for _ in self:
            pass


def scan_one(digest: str, f: IO[bytes]) -> dict[str, Any]:
    """Scan the layer whose blob follows on ``f``; the result document."""
    blob = _Blob(f)
    try:
        doc: dict[str, Any] = {"scan": scan_layer(digest, blob).to_json()}
    except ProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 - passed on to the parent by name
        name = type(e).__name__
        doc = {"raise": name if name in PASSED_ON else "", "message":
               str(e) if name in PASSED_ON else f"{name}: {e}"}
    blob.drain()  # what the walker left unread, to the layer's end
    return doc


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer layers until the end of ``inp``."""
    first = read_frame(inp, MAX_CONTROL)
    if first is None:
        return
    kind, payload = first
    if kind != b"K":
        raise ProtocolError(f"first frame is {kind!r}, not K")
    doc = json.loads(payload)
    redact.register(str(v) for v in doc["known"])
    pre = doc.get("prefilter")
    prefilter.use_compiled((base64.b64decode(pre[0]), base64.b64decode(pre[1]))
                           if pre else None)
    while (fr := read_frame(inp, MAX_CONTROL)) is not None:
        kind, payload = fr
        if kind != b"L":
            raise ProtocolError(f"frame {kind!r} where a layer should start")
        doc = scan_one(payload.decode("ascii", "replace"), inp)
        out.write(frame(b"R", json.dumps(doc, separators=(",", ":")).encode()))
        out.flush()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers on Ctrl-C
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (ProtocolError, BrokenPipeError) as e:
        print(f"polyarch worker: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
