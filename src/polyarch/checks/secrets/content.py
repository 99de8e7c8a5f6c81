"""Streaming content scanner: known token formats in a file of any size.

:class:`ContentScanner` is fed a file's bytes in chunks of any size and keeps at most
one block plus a fixed overlap in memory. The formats of :mod:`formats` are found by
one regex per anchor frequent in text and bytes.find probes for the rarer ones
(:func:`formats.anchored_regexes`), and the values this run knows are secret
(:mod:`known`) by bytes.find; what a match is, :mod:`matches` says. A match is reported
once, with its line number and a masked fingerprint, never its value.

Binaries (ELF executables and libraries) are read for the strings a build can embed
(``go build -ldflags "-X main.token=..."``): the token formats of error level and the
values given to this build, not URLs or JWTs (libraries' own documentation strings).
Text in UTF-16 (a byte-order mark, or ASCII with every other byte zero) is decoded
first.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

from polyarch.checks.secrets import files, formats, kinds, prefilter
from polyarch.checks.secrets.files import is_env_file
from polyarch.checks.secrets.hits import SecretHit, fingerprint
from polyarch.checks.secrets.known import KNOWN_KIND, REMEDY_KNOWN, known_values
from polyarch.checks.secrets.matches import LOOKBACK, URL_KIND, Found, MatchJudge
from polyarch.checks.secrets.parsers import secret_env_key

_BY_ANCHOR = formats.anchored_regexes()
_VAULT = b"hvs."
#: Text: the regexes of the anchors frequent in text (``_``, ``-``) scan a block
#: themselves; the rarer ones (``K``, ``J``, the ``@`` of URL credentials) are found
#: with bytes.find and matched only there, which measured faster on real text
#: (node_modules JavaScript: 440 MB/s against 380 MB/s with a regex scan for each).
_SCANNING = (_BY_ANCHOR[b"_"], _BY_ANCHOR[b"-"])
_PROBING = ((b"K", _BY_ANCHOR[b"K"]), (b"J", _BY_ANCHOR[b"J"]), (b"@", formats.URL_SCAN))
#: Vault tokens: a scan of their own (a sixth of the scanner's time), so only where the
#: builder's own files are: not in installed package trees (where any finding would
#: only be a warning) nor in the distribution's files under /usr (but /usr/local).
_SCANNING_APP = (*_SCANNING, _BY_ANCHOR[_VAULT])
_NO_VAULT_SCAN = re.compile(r"^/usr/(?!local/)")
#: A binary: K and J are frequent in machine code, so every anchor is a regex scan; no
#: URLs (a library's own documentation strings; ``@`` is frequent too).
_SCANNING_BINARY = (*_SCANNING_APP, _BY_ANCHOR[b"K"], _BY_ANCHOR[b"J"])
assert set(_BY_ANCHOR) == {b"_", b"-", b"K", b"J", _VAULT}, "an anchor without a scan"
_ANCHOR_OF = {regex: anchor for anchor, regex in _BY_ANCHOR.items()}
#: Bytes gathered before a scan (small chunks are joined first).
BLOCK = 256 << 10
#: Longest match any format can have (bounded quantifiers) plus look-behind: a match that
#: starts in the last OVERLAP bytes of a block is left for the next block (which gets
#: :data:`matches.LOOKBACK` bytes of context before it too).
OVERLAP = 8192
GCP_KIND = "Google Cloud service account key"
#: More findings of one file add nothing: at most this many errors, and warnings up to
#: this many findings in all (an error is never left out for a warning).
MAX_HITS = 20


class ContentScanner(MatchJudge):
    """Scans one file's content for known token formats, streamed.

    ``feed`` takes chunks of any size; ``finish`` returns the findings. Memory stays
    at most one block (:data:`BLOCK`, or one chunk when a chunk is larger) plus
    :data:`OVERLAP`. Findings in ``.env`` files include secret-looking ``KEY=value``
    lines anywhere in the file, not only in its first megabyte. ``binary=True`` reads
    a compiled file (see the module's docstring); an ELF file is recognised by its
    first bytes too.
    """

    def __init__(self, path: str, *, binary: bool = False) -> None:
        self.path = path
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._tail = b""  # the last OVERLAP bytes already scanned (context for the next block)
        self._base = 0  # absolute offset of _tail[0]
        self._next = 0  # absolute offset from which matches are still to be reported
        self._lines = 0  # newlines before _base
        self._hits: list[SecretHit] = []
        self._errors = 0
        self._gcp = False
        self._env = ".env" in path and is_env_file(path.rpartition("/")[2])
        self._env_line_start = 0  # absolute offset of the first line not yet read (.env)
        self._vendored = kinds.vendored(path)
        self._doc: bool | None = None  # a documentation file (read when a URL is found)
        self._third_party = self._vendored or bool(_NO_VAULT_SCAN.match(path))
        self._binary = binary
        self._decoder: codecs.IncrementalDecoder | None = None
        self._codec = ""
        self._started = False
        self._first = b""
        # Values this run knows are secret (build arguments, --secret values, registry
        # passwords): found anywhere, they are the caller's own secret.
        self._known = known_values()
        # A file the name rules read (.npmrc, .netrc, kubeconfig, ...): its first
        # MAX_SIZE bytes go to the parser for that kind too.
        self._head: bytearray | None = bytearray() if files.is_candidate(path) else None
        self.size = 0
        self._clear: Callable[[int, int], bool] | None = None

    def use_marks(self, clear: Callable[[int, int], bool]) -> None:
        """``clear(a, b)``: True when no regex of this scanner can match in the file's
        bytes ``[a, b)`` and no known value occurs there (:mod:`marks`, which read them
        in the stream already): such a block is not searched again."""
        self._clear = clear

    @staticmethod
    def beyond_places(path: str, head: bytes) -> bool:
        """True when the file at ``path`` starting with ``head`` can give a finding
        that is not at a place of :mod:`marks`: by its name (credential files,
        ``.env`` lines), as UTF-16 text or as a binary (what ``__init__`` and
        ``_sniff`` read)."""
        return (files.is_candidate(path) or kinds.is_elf(head)
                or (".env" in path and is_env_file(path.rpartition("/")[2]))
                or kinds.utf16(head) is not None)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._head is not None and len(self._head) < files.MAX_SIZE:
            self._head += chunk[:files.MAX_SIZE - len(self._head)]
        if not self._started:
            # The first bytes say what the file is: gathered up to kinds.SNIFF bytes.
            self._first += chunk
            if len(self._first) < kinds.SNIFF:
                return
            chunk, self._first = self._first, b""
            self._sniff(chunk)
        self._take(chunk)

    def _sniff(self, head: bytes) -> None:
        self._started = True
        if kinds.is_elf(head):
            self._binary = True
        elif not self._binary and (codec := kinds.utf16(head)) is not None:
            self._codec = codec
            self._decoder = codecs.getincrementaldecoder(codec)("replace")

    def _take(self, chunk: bytes) -> None:
        if self._decoder is not None:
            chunk = self._decoder.decode(chunk).lstrip("\ufeff").encode("utf-8", "replace")
            if not chunk:
                return
        self._pending.append(chunk)
        self._pending_len += len(chunk)
        if self._pending_len >= BLOCK:
            self._scan(final=False)

    def finish(self) -> list[SecretHit]:
        if not self._started:
            first, self._first = self._first, b""
            self._sniff(first)
            if first:
                self._take(first)
        if self._decoder is not None:
            rest = self._decoder.decode(b"", final=True).encode("utf-8", "replace")
            if rest:
                self._pending.append(rest)
        self._scan(final=True)
        hits: list[SecretHit] = []
        if self._head is not None:
            head = bytes(self._head)
            if self._decoder is not None:
                head = head.decode(self._codec, "replace").lstrip("\ufeff").encode()
            hits = files.scan(self.path, head, content_rules=False)
            self._head = None
        lines = {h.line for h in hits if h.line is not None}
        # One finding per line; a token's own format says more than the URL around it.
        content_hits: list[SecretHit] = []
        for h in sorted(self._hits, key=lambda h: h.kind == URL_KIND):
            if h.line is None or h.line not in lines:
                content_hits.append(h)
                if h.line is not None:
                    lines.add(h.line)
        hits += sorted(content_hits, key=lambda h: h.line or 0)
        if self._gcp:
            hits = [SecretHit(GCP_KIND, h.where, h.severity, h.line, h.fingerprint, h.remedy)
                    if h.kind.startswith("private key") else h for h in hits]
        baked = files.baked_key(self.path) if self.path.startswith("/etc/ss") else None
        if baked is not None:  # an SSH host key, the snakeoil TLS key: shared by every container
            hits = [SecretHit(baked[0], h.where, "error", h.line, h.fingerprint, baked[1])
                    if h.kind.startswith(("private key", "private SSH key")) else h
                    for h in hits]
        # A name rule's finding without a line, when the content scan found the same
        # kind at a line, says nothing more.
        located = {h.kind for h in hits if h.line is not None}
        hits = [h for h in hits if h.line is not None or h.kind not in located]
        if self._binary:  # the same string twice in a binary (two sections): once
            hits = list({(h.kind, h.fingerprint): h for h in reversed(hits)}.values())[::-1]
        self._hits = []
        return _capped(hits)

    # -- internals ---------------------------------------------------------------------
    def _scan(self, *, final: bool) -> None:
        if not self._pending and not final:
            return
        buf = self._tail + b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        base = self._base
        limit = len(buf) if final else max(0, len(buf) - OVERLAP)
        start = max(0, self._next - base)
        # A match reported here starts in [start, limit) and lies in buf: so do its
        # anchor and a known value (raw bytes only: not text decoded from UTF-16).
        if self._errors < MAX_HITS and not (
                self._clear is not None and self._decoder is None
                and self._clear(base + start - LOOKBACK, base + len(buf))):
            found: list[Found] = []
            scanning = (_SCANNING_BINARY if self._binary else
                        _SCANNING if self._third_party else _SCANNING_APP)
            places = prefilter.candidates(buf, self._binary)
            if places is not None:  # the same regexes, only where they can match
                self._scan_places(buf, places, scanning, start, limit, found)
            else:
                self._scan_regexes(buf, scanning, start, limit, found)
            for value in self._known:
                i = buf.find(value, start, limit + len(value) - 1)
                if i >= 0:
                    found.append((i, KNOWN_KIND, fingerprint(value), "error", REMEDY_KNOWN))
            found.sort()
            line_pos, line_no = 0, self._lines
            warnings = len(self._hits) - self._errors
            for pos, kind, fp, severity, remedy in found:
                if severity == "error":
                    if self._errors >= MAX_HITS:
                        break
                elif warnings >= MAX_HITS:
                    continue
                else:
                    warnings += 1
                if self._binary:  # no lines in a binary: where is "its strings"
                    self._hits.append(SecretHit(kind, "in the binary's strings", severity,
                                                None, fp, remedy))
                    self._errors += severity == "error"
                    continue
                line_no += buf.count(b"\n", line_pos, pos)
                line_pos = pos
                self._add(kind, line_no + 1, fp, severity, remedy)
        if self._env:
            self._env_lines(buf, base, limit, final)
        # Keep the unscanned overlap and LOOKBACK bytes before it for the next block;
        # count the lines that leave memory (not needed after the last block).
        self._next = base + limit
        if final:
            self._tail = b""
            return
        keep_from = max(0, limit - LOOKBACK)
        if not self._binary:
            self._lines += buf.count(b"\n", 0, keep_from)
        self._tail = buf[keep_from:]
        self._base = base + keep_from

    def _scan_regexes(self, buf: bytes, scanning: tuple[re.Pattern[bytes], ...], start: int,
                      limit: int, found: list[Found]) -> None:
        for regex in scanning:
            for m in regex.finditer(buf, start):
                if m.start() >= limit:
                    break
                hit = self._judge(buf, m)
                if hit is not None:
                    found.append(hit)
        for anchor, regex in () if self._binary else _PROBING:
            find, match = buf.find, regex.match
            i = find(anchor, start, limit)
            while i >= 0:
                pm = match(buf, i)
                if pm is not None:
                    hit = self._judge(buf, pm)
                    if hit is not None:
                        found.append(hit)
                i = find(anchor, i + 1, limit)

    def _scan_places(self, buf: bytes, places: dict[bytes, list[int]],
                     scanning: tuple[re.Pattern[bytes], ...], start: int, limit: int,
                     found: list[Found]) -> None:
        """:meth:`_scan_regexes` at the prefilter's candidates: a scanning regex as
        ``finditer`` reads (matches do not overlap), a probing one at every place."""
        for regex in scanning:
            end = start
            for i in places.get(_ANCHOR_OF[regex], ()):
                if i < end:
                    continue
                if i >= limit:
                    break
                m = regex.match(buf, i)
                if m is not None:
                    end = m.end()
                    hit = self._judge(buf, m)
                    if hit is not None:
                        found.append(hit)
        for anchor, regex in () if self._binary else _PROBING:
            for i in places.get(anchor, ()):
                if i < start:
                    continue
                if i >= limit:
                    break
                pm = regex.match(buf, i)
                if pm is not None:
                    hit = self._judge(buf, pm)
                    if hit is not None:
                        found.append(hit)

    def _add(self, kind: str, line: int, fp: str, severity: str, remedy: str,
             where: str = "") -> None:
        self._hits.append(SecretHit(kind, where or f"line {line}", severity, line, fp, remedy))
        if severity == "error":
            self._errors += 1

    def _env_lines(self, buf: bytes, base: int, limit: int, final: bool) -> None:
        """``KEY=value`` lines of a .env file with a secret-looking key (whole file)."""
        start = max(0, self._env_line_start - base)
        end = limit if final else buf.rfind(b"\n", start, limit) + 1
        if end <= start:
            return
        line_no = self._lines + buf.count(b"\n", 0, start)
        for raw in buf[start:end].split(b"\n"):
            line_no += 1
            if self._errors >= MAX_HITS:
                break
            text = raw.decode("utf-8", "replace").strip()
            if not text or text.startswith("#") or "=" not in text:
                continue
            key, _, value = text.partition("=")
            key = key.strip().removeprefix("export ").strip()
            value = value.split(" #", 1)[0].strip().strip("'\"").strip()
            if (secret_env_key(key) and value
                    and not formats.looks_placeholder(value.encode())
                    and not value.startswith(("$", "<", "{{"))
                    and not any(h.line == line_no for h in self._hits)):
                self._add("secret in .env file", line_no, "", "error", "",
                          f"line {line_no}, key {key}")
        self._env_line_start = base + end


def _capped(hits: list[SecretHit]) -> list[SecretHit]:
    """At most :data:`MAX_HITS` errors, then warnings up to MAX_HITS findings in all, in
    the order of the file."""
    if len(hits) <= MAX_HITS:
        return hits
    errors = [h for h in hits if h.severity == "error"][:MAX_HITS]
    rest = [h for h in hits if h.severity != "error"][:max(0, MAX_HITS - len(errors))]
    keep = {id(h) for h in errors + rest}
    return [h for h in hits if id(h) in keep]


def scan_bytes(path: str, data: bytes) -> list[SecretHit]:
    """Token formats in one in-memory value or file."""
    s = ContentScanner(path)
    s.feed(data)
    return s.finish()
