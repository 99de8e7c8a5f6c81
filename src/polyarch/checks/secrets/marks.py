"""Where in a whole tar stream a content finding can be, found in one pass.

A node_modules layer holds tens of thousands of small files; scanning each on its own
costs more in per-file work than in reading bytes. With the prefilter's stream
database (:mod:`prefilter`, the optional ``hyperscan``), :class:`StreamMarks` reads
the decompressed tar stream once as it passes, a little ahead of the walker, and
records every place where one of the content scanner's regexes can match, and every
place where a value given to this build occurs. A file whose bytes hold none of those
places cannot give a content finding, so the walker skips its scanner
(:meth:`StreamMarks.clear`).

Why that is exact: each regex of :class:`~polyarch.checks.secrets.ContentScanner`
matches only where the prefilter's pattern of its anchor matches, on any buffer
(``tests/unit/secrets/test_prefilter.py``); the patterns have no anchors or
look-arounds, so in the whole stream they match wherever they match in the file's
own bytes (more context finds more places, never fewer); and such a match lies inside
the file, so it has been reported once the stream has been read to the file's end
(hyperscan reports a match when it reads its last byte).
Everything else a scanner can report comes from the file's name (credential files,
``.env``), from UTF-16 text (decoded first) or from a binary, and the walker still
scans those files in full.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import Any

from polyarch.checks.secrets import prefilter

#: Bytes read ahead of what the walker has been handed: a file up to about this size
#: is decided when the walker reaches it.
AHEAD = 1 << 20
#: Most places kept at once (a layer crafted to be all anchors must not grow memory):
#: past it, the marks give up and every file is scanned on its own, as without them.
MAX_PLACES = 1 << 16


class StreamMarks:
    """Wraps the decompressed chunks of one layer; iterate it instead of them."""

    def __init__(self, chunks: Iterator[bytes], pre: Any, known: tuple[bytes, ...]) -> None:
        self._src = chunks
        self._pre = pre
        self._known = known
        self._carry = b""  # the end of the stream read so far, for values across chunks
        self._keep = max((len(v) for v in known), default=1) - 1
        #: Sorted stream offsets where a content regex may match or a value occurs.
        self.places: list[int] = []
        self.scanned = 0  # stream bytes read by the scan
        self.done = False  # the whole stream has been read
        self.given_up = False  # too many places: clear() is always False
        self._low = 0  # where the walker asked last: places before it are not needed

    def __iter__(self) -> Iterator[bytes]:
        pending: deque[bytes] = deque()
        ahead = 0
        back, places = self._pre.back, self.places

        def on_match(pid: int, _frm: int, to: int, _flags: int, _ctx: object) -> None:
            bisect.insort(places, to - back[pid])
            if len(places) > MAX_PLACES:
                self._prune()

        with self._pre.stream.stream(match_event_handler=on_match) as hs_stream:
            for chunk in self._src:
                hs_stream.scan(chunk)
                if self._known:
                    self._find_known(chunk)
                self.scanned += len(chunk)
                pending.append(chunk)
                ahead += len(chunk)
                while ahead - len(pending[0]) >= AHEAD:
                    first = pending.popleft()
                    ahead -= len(first)
                    yield first
        self.done = True  # the stream's close reports nothing more: no pattern ends at $
        while pending:
            yield pending.popleft()

    def _prune(self) -> None:
        del self.places[:bisect.bisect_left(self.places, self._low)]
        if len(self.places) > MAX_PLACES:
            self.given_up = True
            self.places.clear()

    def _find_known(self, chunk: bytes) -> None:
        buf = self._carry + chunk
        base = self.scanned - len(self._carry)
        for value in self._known:
            i = buf.find(value)
            while i >= 0:
                bisect.insort(self.places, base + i)
                if len(self.places) > MAX_PLACES:
                    self._prune()
                i = buf.find(value, i + 1)
        self._carry = buf[-self._keep:] if self._keep else b""

    def clear(self, start: int, end: int) -> bool:
        """True when the stream bytes ``[start, end)`` (a file's content) hold no place;
        False when they do, or when the scan has not read far enough to know."""
        self._low = start
        if self.given_up or (not self.done and end > self.scanned):
            return False
        i = bisect.bisect_left(self.places, start)
        return i == len(self.places) or self.places[i] >= end


def marks(chunks: Iterator[bytes], known: tuple[bytes, ...]) -> StreamMarks | None:
    """Stream marks over ``chunks``, or ``None`` without the prefilter."""
    pre = prefilter.get()
    if pre is None or getattr(pre, "stream", None) is None:
        return None
    return StreamMarks(chunks, pre, known)
