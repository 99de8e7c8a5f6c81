"""Where in a whole tar stream a content finding can be, found in one pass.

A node_modules layer holds tens of thousands of small files; scanning each on its own
costs more in per-file work than in reading bytes. With the prefilter
(:mod:`prefilter`, the optional ``hyperscan``), :class:`StreamMarks` reads the
decompressed tar stream once as it passes, a little ahead of the walker, and records
every place where one of the content scanner's regexes can match, and every place
where a value given to this build occurs. A file whose bytes hold none of those places
cannot give a content finding, so the walker skips its scanner
(:meth:`StreamMarks.clear`).

Why that is exact: each regex of :class:`~polyarch.checks.secrets.ContentScanner`
matches only where the prefilter's pattern of its anchor matches, on any buffer
(``tests/unit/secrets/test_prefilter.py``); the patterns have no anchors or
look-arounds, so in the whole stream they match wherever they match in the file's
own bytes (more context finds more places, never fewer). Each piece of the stream is
scanned alone and together with the :data:`SEAM` bytes before it (longer than any
pattern's match), so a match across two pieces is found too; a match inside a file
ends inside it, so it is known once the stream has been read to the file's end.
Everything else a scanner can report comes from the file's name (credential files,
``.env``), from UTF-16 text (decoded first) or from a binary, and the walker still
scans those files in full.

A layer shorter than :data:`AHEAD` is walked without marks (its few files cost less
than loading the prefilter).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import Any

from polyarch.checks.secrets import prefilter

#: Bytes read ahead of what the walker has been handed: a file up to about this size
#: is decided when the walker reaches it.
AHEAD = 1 << 18
#: Bytes of the stream before a piece scanned again with its start: more than the
#: longest match of any prefilter pattern.
SEAM = 1024
#: Most places kept at once (a layer crafted to be all anchors must not grow memory):
#: past it, the marks give up and every file is scanned on its own, as without them.
MAX_PLACES = 1 << 16


class StreamMarks:
    """Wraps the decompressed chunks of one layer; iterate it instead of them."""

    def __init__(self, chunks: Iterator[bytes], known: tuple[bytes, ...]) -> None:
        self._src = chunks
        self._known = known
        self._carry = b""  # the end of the stream read so far, for values across chunks
        self._keep = max((len(v) for v in known), default=1) - 1
        #: Sorted stream offsets where a content regex may match or a value occurs.
        self.places: list[int] = []
        self.scanned = 0  # stream bytes read by the scan
        self.done = False  # the whole stream has been read
        self.given_up = False  # no prefilter, or too many places: clear() is always False
        self._low = 0  # where the walker asked last: places before it are not needed

    def __iter__(self) -> Iterator[bytes]:
        pending: deque[bytes] = deque()
        ahead = 0
        pre = None
        seam = b""
        for chunk in self._src:
            pending.append(chunk)
            ahead += len(chunk)
            if pre is None:
                if ahead < AHEAD:
                    continue
                pre = prefilter.get()
                if pre is None:
                    self.given_up = True
                    break
                for piece in pending:  # the start of the stream, read ahead
                    seam = self._scan(pre, seam, piece)
            else:
                seam = self._scan(pre, seam, chunk)
            while ahead - len(pending[0]) >= AHEAD:
                first = pending.popleft()
                ahead -= len(first)
                yield first
        if pre is None:
            self.given_up = True  # a short layer (or no prefilter): every file on its own
        self.done = True
        yield from pending
        yield from self._src  # after giving up: the rest as it comes

    def _scan(self, pre: Any, seam: bytes, chunk: bytes) -> bytes:
        """Record the places of ``chunk`` and of the matches that cross into it from
        ``seam`` (the stream's last bytes before it); return the next seam."""
        base = self.scanned
        self.scanned += len(chunk)
        if self.given_up:
            return b""
        found = [base + p for p in pre.places(chunk, 0)]
        if seam:
            start = base - len(seam)
            found += [start + p for p in pre.places(seam + chunk[:SEAM], len(seam))]
        places = self.places
        for p in found:
            bisect.insort(places, p)
        if self._known:
            self._find_known(chunk, base)
        if len(places) > MAX_PLACES:
            self._prune()
        return chunk[-SEAM:] if len(chunk) >= SEAM else (seam + chunk)[-SEAM:]

    def _prune(self) -> None:
        del self.places[:bisect.bisect_left(self.places, self._low)]
        if len(self.places) > MAX_PLACES:
            self.given_up = True
            self.places.clear()

    def _find_known(self, chunk: bytes, at: int) -> None:
        buf = self._carry + chunk
        base = at - len(self._carry)
        for value in self._known:
            i = buf.find(value)
            while i >= 0 and not self.given_up:
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
    """Stream marks over ``chunks``, or ``None`` where the prefilter cannot be."""
    return StreamMarks(chunks, known) if prefilter.importable() else None
