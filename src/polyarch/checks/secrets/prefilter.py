"""Where the content scanner's regexes can match, found in one pass (optional).

Python's regex engine scans for each anchor's literal separately (about 2 GB/s each,
five or six passes over every block). With the optional ``hyperscan`` package
(``pip install 'polyarch[fast]'``) one pass finds every place where a format's fixed
part occurs: its look-behind (``behind``), its anchor and the literal start of its
body; the scanner then runs the same regex, with the same start position, only
there. Each pattern is exactly the bytes the regex needs at that place, so every
place where a regex matches is among the candidates and the findings are the same
with and without it (``tests/unit/secrets/test_prefilter.py`` compares them).

Without ``hyperscan`` (or where its patterns cannot be built), :func:`available` is
false and the scanner runs its regexes as before.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from polyarch.checks.secrets import formats

_META = set("\\.^$*+?{}[]|()")
_QUANTIFIERS = set("*+?{")


def literal_prefix(body: str) -> str:
    """The literal characters a regex starts with (a character followed by a
    quantifier is not one of them)."""
    out: list[str] = []
    for i, c in enumerate(body):
        if c in _META:
            if c in _QUANTIFIERS and out:
                out.pop()
            break
        if i + 1 < len(body) and body[i + 1] in _QUANTIFIERS:
            break
        out.append(c)
    return "".join(out)


def _python_space(pattern: str) -> str:
    r"""``\s`` as Python's bytes regexes read it (hyperscan's may differ in VT)."""
    return pattern.replace("\\s", "\\t\\n\\x0b\\x0c\\r\\x20")


def patterns() -> list[tuple[bytes, bytes, int]]:
    """``(anchor, pattern, tail)`` per format and for URL credentials: a hyperscan
    pattern that ends ``tail`` bytes after the end of the anchor (where the regex of
    that anchor starts)."""
    out = []
    for f in formats.FORMATS:
        lit = literal_prefix(f.body)
        head = f.behind if f.lead else re.escape(f.anchor)
        out.append((f.anchor.encode(), _python_space(head + re.escape(lit)).encode(),
                    len(lit)))
    out.append((b"@", _python_space(url_pattern()).encode(), 0))
    return out


def url_pattern() -> str:
    """Where a URL credential can end: the ``scheme://user:password@`` that
    :data:`formats.URL_CREDENTIALS` requires before an ``@`` (without its look-behind,
    which only narrows it), so that the ``@`` of a JSDoc tag, an e-mail address or an
    npm scope is no candidate (a node_modules layer has about a million of them). Its
    bounded repeats are unbounded here: the same places and more, and half the memory
    to compile."""
    creds = formats.URL_CREDENTIALS.pattern.decode()
    behind, end = "(?<![A-Za-z0-9+.-])", "@\\Z"
    if not (creds.startswith(behind) and creds.endswith(end)):
        raise ValueError("URL_CREDENTIALS is not of the form (?<![...])...@\\Z")
    body = re.sub(r"\(\?P<\w+>", "(?:", creds[len(behind):-len(end)])
    body = re.sub(r"\{1,\d+\}", "+", re.sub(r"\{0,\d+\}", "*", body))
    return body + "@"


class _Prefilter:
    def __init__(self, hs: Any, compiled: tuple[bytes, bytes] | None = None) -> None:
        self.hs = hs
        pats = patterns()
        self.anchor_of = [a for a, _, _ in pats]
        self.back = [len(a) + tail for a, _, tail in pats]
        if compiled is not None:  # compiled by another process (no compiler code here)
            self.text = hs.loadb(compiled[0], hs.HS_MODE_BLOCK)
            self.binary = hs.loadb(compiled[1], hs.HS_MODE_BLOCK)
        else:
            self.text = self._compile(pats, range(len(pats)))
            # Binaries are not read for URL credentials (``@`` is frequent in machine
            # code).
            self.binary = self._compile(pats, [i for i, p in enumerate(pats) if p[0] != b"@"])
        self._local = threading.local()

    def _compile(self, pats: list[tuple[bytes, bytes, int]], ids: Iterable[int]) -> Any:
        ids = list(ids)
        db = self.hs.Database(mode=self.hs.HS_MODE_BLOCK)
        db.compile(expressions=[pats[i][1] for i in ids], ids=ids, elements=len(ids),
                   flags=[0] * len(ids))
        return db

    def dump(self) -> tuple[bytes, bytes]:
        return bytes(self.hs.dumpb(self.text)), bytes(self.hs.dumpb(self.binary))

    def _scratch(self, db: Any) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = {
                id(self.text): self.hs.Scratch(self.text),
                id(self.binary): self.hs.Scratch(self.binary)}
        return scratch[id(db)]

    def candidates(self, buf: bytes, binary: bool) -> dict[bytes, list[int]]:
        """Anchor -> sorted positions in ``buf`` where its regex may match."""
        db = self.binary if binary else self.text
        hits: list[tuple[int, int]] = []
        add = hits.append

        def on_match(pid: int, _frm: int, to: int, _flags: int, _ctx: object) -> None:
            add((pid, to))

        db.scan(buf, match_event_handler=on_match, scratch=self._scratch(db))
        found: dict[bytes, set[int]] = {}
        for pid, to in hits:
            found.setdefault(self.anchor_of[pid], set()).add(to - self.back[pid])
        return {a: sorted(positions) for a, positions in found.items()}

    def places(self, buf: bytes, after: int) -> list[int]:
        """Positions in ``buf`` where any text regex may match, of the matches that end
        past ``after`` (unsorted, perhaps repeated)."""
        out: list[int] = []
        add, back = out.append, self.back

        def on_match(pid: int, _frm: int, to: int, _flags: int, _ctx: object) -> None:
            if to > after:
                add(to - back[pid])

        self.text.scan(buf, match_event_handler=on_match, scratch=self._scratch(self.text))
        return out


def _load(compiled: tuple[bytes, bytes] | None = None) -> _Prefilter | None:
    try:
        import hyperscan
    except ImportError:
        return None
    try:
        return _Prefilter(hyperscan, compiled)
    except Exception:  # noqa: BLE001 - a pattern hyperscan refuses: the regex passes
        return None if compiled is None else _load()


#: Smallest buffer the prefilter reads: below it the regexes' passes cost no more than
#: a call into hyperscan (and a verify that reads only small files never loads it).
MIN_BYTES = 4096
_UNLOADED: Any = object()
_PREFILTER: _Prefilter | None | Any = _UNLOADED
_lock = threading.Lock()


def _get() -> _Prefilter | None:
    global _PREFILTER
    if _PREFILTER is _UNLOADED:
        with _lock:
            if _PREFILTER is _UNLOADED:
                _PREFILTER = _load()
    return _PREFILTER


def available() -> bool:
    return _get() is not None


def warm() -> None:
    """Import hyperscan and compile the patterns now (about 50 ms), while the engine
    builds: verification's first large file, or its workers' start, does not wait."""
    _get()


def compiled() -> tuple[bytes, bytes] | None:
    """The compiled patterns, serialised (for a worker process: loading them takes
    about 1 MiB, compiling them 4 MiB of hyperscan's compiler), or ``None``."""
    pre = _get()
    return None if pre is None else pre.dump()


def use_compiled(data: tuple[bytes, bytes] | None) -> None:
    """Load the patterns :func:`compiled` gave in another process (compile them here
    when they cannot be loaded; ``None``: no prefilter there, none here)."""
    global _PREFILTER
    with _lock:
        _PREFILTER = _load(data) if data is not None else None


def candidates(buf: bytes, binary: bool) -> dict[bytes, list[int]] | None:
    """Anchor -> sorted positions where its regex may match, or ``None`` (no
    prefilter, or a buffer under :data:`MIN_BYTES`)."""
    if len(buf) < MIN_BYTES:
        return None
    pre = _get()
    return None if pre is None else pre.candidates(buf, binary)


def importable() -> bool:
    """Whether the prefilter can be had, without loading it (or hyperscan)."""
    if _PREFILTER is not _UNLOADED:
        return _PREFILTER is not None
    import importlib.util

    return importlib.util.find_spec("hyperscan") is not None


def get() -> _Prefilter | None:
    """The loaded prefilter (for :mod:`marks`), or ``None``."""
    return _get()
