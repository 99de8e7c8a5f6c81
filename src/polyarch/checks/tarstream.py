"""Tar entries exactly as Go's ``archive/tar`` reads them (what containerd and BuildKit
extract layers with), straight out of decompressed buffers.

:func:`entries` yields one tuple per entry a Go ``tar.Reader`` returns from ``Next()``
(global PAX headers aside: engines ignore them): its type flag, name, link name,
size, and for a sparse file the data fragments. What Go does, and this follows:

* the name is the header's, with the POSIX ``prefix`` field (155 bytes in ustar, 131 in
  star, whose header ends in ``tar\\0``; none in GNU headers unless their time fields
  do not parse, which is how pre-1.8 Go wrote them), replaced by a PAX ``path``
  record, replaced by a GNU long name (``L``); the link name likewise (``linkpath``,
  ``K``); PAX records with empty values keep the header's value;
* the size is the header's (octal, or base-256 when its first bit is set), replaced
  by a PAX ``size`` record; hard links, symlinks, devices, directories and FIFOs have
  no data whatever their size says; an old-style ``\\0`` type with a name ending in
  ``/`` is a directory;
* sparse files: old GNU (type ``S``, the map in the header and extension blocks),
  PAX 0.0 (repeated ``GNU.sparse.offset``/``numbytes`` records), 0.1
  (``GNU.sparse.map``) and 1.0 (the map at the start of the data); their size is the
  logical size (``GNU.sparse.size``/``realsize``), their name ``GNU.sparse.name``;
* a stream that ends inside a header or a file's data, a zero block followed by a
  header, PAX records that do not parse, a PAX or long-name body or a sparse map over
  1 MiB (Go reads sparse maps of any size), or a sparse map that does not fit its data
  is an error (:class:`LayerFormatError`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from polyarch.checks.stream import Counter, LayerFormatError, decompress

__all__ = ["Cursor", "Entry", "entries", "list_entries", "logical_content"]

BLOCK = 512
ZERO = b"\0" * BLOCK
_USTAR = b"ustar"
#: Types whose entries have no data, whatever their size field says (Go's
#: ``isHeaderOnlyType``): hard link, symlink, char and block device, directory, FIFO.
HEADER_ONLY = frozenset(b"123456")
#: Largest PAX or GNU long-name body (Go's ``maxSpecialFileSize``).
MAX_SPECIAL = 1 << 20

#: Most fragments in a sparse map (Go reads any number; real maps hold a few, and a
#: map stays in memory): the same 1 MiB bound as PAX records, 21 fragments a block.
_MAX_FRAGMENTS = 21 * (MAX_SPECIAL // BLOCK)

#: (type flag, name, link name, size, sparse data fragments or ``None``).
Entry = tuple[int, bytes, bytes, int, "list[tuple[int, int]] | None"]


def _truncated() -> LayerFormatError:
    return LayerFormatError("tar stream is truncated (it ends inside an entry): no engine"
                            " can apply this layer")


class Cursor:
    """The decompressed stream: ``buf[pos:]`` is what comes next, ``base`` the stream
    offset of ``buf[0]``."""

    __slots__ = ("it", "buf", "pos", "base")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.it = chunks
        self.buf = b""
        self.pos = 0
        self.base = 0

    def fill(self, n: int) -> bool:
        """Make at least ``n`` bytes available at ``pos``; False at the end."""
        parts = [self.buf[self.pos:]]
        have = len(parts[0])
        self.base += self.pos
        while have < n:
            chunk = next(self.it, None)
            if chunk is None:
                self.buf, self.pos = b"".join(parts), 0
                return False
            parts.append(chunk)
            have += len(chunk)
        self.buf, self.pos = b"".join(parts), 0
        return True

    def skip_to(self, end: int) -> bool:
        """Move to stream offset ``end``; False when the stream ends before it."""
        over = end - self.base - len(self.buf)
        if over <= 0:
            self.pos = end - self.base
            return True
        self.base += len(self.buf)
        self.buf, self.pos = b"", 0
        while over > 0:
            chunk = next(self.it, None)
            if chunk is None:
                return False
            if len(chunk) > over:
                self.buf, self.pos = chunk, over
                return True
            self.base += len(chunk)
            over -= len(chunk)
        return True

    def read(self, n: int) -> bytes:
        """Exactly the next ``n`` bytes (an error when the stream ends first)."""
        if self.pos + n > len(self.buf) and not self.fill(n):
            raise _truncated()
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def chunks(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, piece by piece (without copying whole chunks)."""
        left = size
        while left > 0:
            if self.pos >= len(self.buf) and not self.fill(1):
                raise _truncated()
            piece = self.buf[self.pos:self.pos + left]
            self.pos += len(piece)
            left -= len(piece)
            yield piece


# -- numbers and strings, as Go parses them ------------------------------------------------

def _cstr(f: bytes) -> bytes:
    nul = f.find(b"\0")
    return f if nul < 0 else f[:nul]


_OCTAL = frozenset(b"01234567")


def numeric(f: bytes) -> int:
    """A numeric header field: base-256 when its first bit is set, else octal padded
    with spaces and NULs (Go's ``parseNumeric``)."""
    if f[-1:] == b"\0" and f[:-1].isdigit():  # the usual form: zero-padded, then NUL
        try:
            return int(f[:-1], 8)
        except ValueError:
            pass  # an 8 or a 9: the checks below say so
    if f and f[0] & 0x80:
        inv = 0xFF if f[0] & 0x40 else 0
        x = 0
        for i, c in enumerate(f):
            c ^= inv
            if i == 0:
                c &= 0x7F
            if x >> 56:
                raise LayerFormatError("not a tar stream (number overflow in a header)")
            x = x << 8 | c
        if x >> 63:
            raise LayerFormatError("not a tar stream (number overflow in a header)")
        return ~x if inv else x
    text = _cstr(f.strip(b" \0"))
    if not text:
        return 0
    if not _OCTAL.issuperset(text) or len(text) > 21 or int(text, 8) >> 64:
        raise LayerFormatError("not a tar stream (bad number in a header)")
    return int(text, 8)


def _decimal(v: bytes) -> int:
    """Go's ``strconv.ParseInt(v, 10, 64)``: an optional sign, then digits."""
    body = v[1:] if v[:1] in (b"+", b"-") else v
    if not body or not body.isdigit() or not body.isascii():
        raise LayerFormatError("bad number in a pax header")
    n = int(v)
    if not -(1 << 63) <= n < (1 << 63):
        raise LayerFormatError("bad number in a pax header")
    return n


_SPARSE_OFFSET = b"GNU.sparse.offset"
_SPARSE_NUMBYTES = b"GNU.sparse.numbytes"
_SPARSE_MAP = b"GNU.sparse.map"


def parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX records (Go's ``parsePAX``): ``LEN key=value\\n`` each, PAX 0.0 sparse
    offset/numbytes pairs gathered into ``GNU.sparse.map``."""
    out: dict[bytes, bytes] = {}
    sparse: list[bytes] = []
    pos, n = 0, len(data)
    while pos < n:
        sp = data.find(b" ", pos)
        if sp < 0:
            raise LayerFormatError("bad pax header (record without a length)")
        digits = data[pos:sp]
        if not digits.isdigit() or not digits.isascii():
            raise LayerFormatError("bad pax header (bad record length)")
        length = int(digits)
        if length < 5 or length > n - pos or length <= len(digits) + 1:
            raise LayerFormatError("bad pax header (bad record length)")
        end = pos + length
        if data[end - 1] != 0x0A:
            raise LayerFormatError("bad pax header (record without its newline)")
        key, eq, value = data[sp + 1:end - 1].partition(b"=")
        if not eq or not key:
            raise LayerFormatError("bad pax header (record without a key)")
        if key in (b"path", b"linkpath", b"uname", b"gname"):
            if b"\0" in value:
                raise LayerFormatError("bad pax header (NUL in a path)")
        elif b"\0" in key:
            raise LayerFormatError("bad pax header (NUL in a key)")
        if key in (_SPARSE_OFFSET, _SPARSE_NUMBYTES):
            want = _SPARSE_OFFSET if len(sparse) % 2 == 0 else _SPARSE_NUMBYTES
            if key != want or b"," in value:
                raise LayerFormatError("bad pax header (sparse map out of order)")
            sparse.append(value)
        else:
            out[key] = value
        pos = end
    if sparse:
        out[_SPARSE_MAP] = b",".join(sparse)
    return out


# -- sparse files -----------------------------------------------------------------------

def _check_sparse(frags: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Go's ``validateSparseEntries``; returns the non-empty data fragments."""
    if size < 0:
        raise LayerFormatError("bad sparse file (negative size)")
    pre_end = 0
    for off, length in frags:
        if off < 0 or length < 0 or off > (1 << 63) - 1 - length or off + length > size \
                or pre_end > off:
            raise LayerFormatError("bad sparse file (its map does not fit its size)")
        pre_end = off + length
    return [(o, n) for o, n in frags if n]


def _old_gnu_map(t: Cursor, header: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Logical size and map of an old GNU sparse header (type ``S``), with the
    extension blocks that follow it."""
    size = numeric(header[483:495])
    frags: list[tuple[int, int]] = []
    block, base, count, ext = header, 386, 4, header[482]
    while True:
        for i in range(count):
            at = base + 24 * i
            if block[at] == 0:
                break
            frags.append((numeric(block[at:at + 12]), numeric(block[at + 12:at + 24])))
        if not ext:
            return size, frags
        if len(frags) > _MAX_FRAGMENTS:
            raise LayerFormatError(f"sparse map of more than {_MAX_FRAGMENTS} fragments")
        block = t.read(BLOCK)
        base, count, ext = 0, 21, block[504]


def _pax_sparse(t: Cursor, pax: dict[bytes, bytes], name: bytes, size: int, physical: int
                ) -> tuple[bytes, int, list[tuple[int, int]], int] | None:
    """(name, logical size, map, physical data left) of a PAX sparse file, or ``None``
    when the records do not make one (Go's ``readGNUSparsePAXHeaders``)."""
    major, minor = pax.get(b"GNU.sparse.major", b""), pax.get(b"GNU.sparse.minor", b"")
    if major == b"0" and minor in (b"0", b"1"):
        v1 = False
    elif major == b"1" and minor == b"0":
        v1 = True
    elif major or minor:
        return None  # a version Go does not know: a plain file
    elif pax.get(_SPARSE_MAP):
        v1 = False
    else:
        return None
    name = pax.get(b"GNU.sparse.name") or name
    text = pax.get(b"GNU.sparse.size") or pax.get(b"GNU.sparse.realsize")
    if text:
        size = _decimal(text)
    frags: list[tuple[int, int]] = []
    if v1:
        # Decimal numbers, one a line, in whole blocks at the start of the data.
        blocks: list[bytes] = []
        lines = 0
        want = 1
        while lines < want or not blocks:
            if physical < BLOCK:
                raise _truncated()
            if len(blocks) * BLOCK >= MAX_SPECIAL:
                raise LayerFormatError(f"sparse map larger than {MAX_SPECIAL} bytes")
            block = t.read(BLOCK)
            physical -= BLOCK
            blocks.append(block)
            lines += block.count(b"\n")
            if want == 1 and lines >= 1:
                count = _decimal(b"".join(blocks).split(b"\n", 1)[0])
                if count < 0:
                    raise LayerFormatError("bad sparse file (bad map)")
                want = 1 + 2 * count
        tokens = b"".join(blocks).split(b"\n")[:want]
        nums = [_decimal(x) for x in tokens[1:]]
        frags = list(zip(nums[0::2], nums[1::2], strict=True))
    else:
        text = pax.get(b"GNU.sparse.numblocks", b"")
        count = _decimal(text) if text else -1
        parts = pax.get(_SPARSE_MAP, b"").split(b",")
        if parts == [b""]:
            parts = []
        if count < 0 or len(parts) != 2 * count:
            raise LayerFormatError("bad sparse file (bad map)")
        nums = [_decimal(x) for x in parts]
        frags = list(zip(nums[0::2], nums[1::2], strict=True))
    return name, size, frags, physical


def logical_content(t: Cursor, size: int, frags: list[tuple[int, int]] | None
                    ) -> Iterator[bytes]:
    """The content of the entry the cursor is at: its data, or for a sparse file its
    data fragments with zeros in the holes."""
    if frags is None:
        yield from t.chunks(size)
        return
    at = 0
    for off, length in frags:
        while at < off:
            n = min(off - at, 1 << 20)
            yield bytes(n)
            at += n
        yield from t.chunks(length)
        at += length
    while at < size:
        n = min(size - at, 1 << 20)
        yield bytes(n)
        at += n


# -- entries ----------------------------------------------------------------------------

def _special(t: Cursor, size: int) -> bytes:
    if size > MAX_SPECIAL:
        raise LayerFormatError(f"tar metadata entry larger than {MAX_SPECIAL} bytes")
    return t.read(size)


def entries(t: Cursor) -> Iterator[Entry]:  # noqa: C901 - one pass over the headers
    """Each entry Go's ``tar.Reader.Next()`` returns (global PAX headers aside). When
    an entry is yielded the cursor is at its data (for a sparse 1.0 file: after the
    map); the consumer reads what it wants of it, the next step skips the rest."""
    pax: dict[bytes, bytes] | None = None
    long_name = long_link = b""
    while True:
        if t.pos + BLOCK > len(t.buf) and not t.fill(BLOCK):
            if t.pos < len(t.buf):
                raise _truncated()
            return  # a stream without the two zero blocks at its end: Go stops too
        pos = t.pos
        header = t.buf[pos:pos + BLOCK]
        t.pos = pos + BLOCK
        if header == ZERO:
            if t.pos + BLOCK > len(t.buf) and not t.fill(BLOCK):
                if t.pos < len(t.buf):
                    raise _truncated()
                return
            if t.buf[t.pos:t.pos + BLOCK] != ZERO:
                raise LayerFormatError("not a tar stream (a zero block, then a header)")
            return
        magic = header[257:263]
        if magic[:5] != _USTAR:  # the checksum is checked where the magic is missing
            _checksum(header)
        typ = header[156]
        size = numeric(header[124:136])
        if size < 0:
            raise LayerFormatError("not a tar stream (negative size)")
        if typ in (0x78, 0x67, 0x4C, 0x4B):  # x g L K: metadata for the next entry
            body = _special(t, size)
            if not t.skip_to(t.base + t.pos + (-size % BLOCK)):
                return
            if typ == 0x78:
                pax = parse_pax(body)
            elif typ == 0x67:
                parse_pax(body)  # checked as Go does, then ignored (as engines do)
                pax, long_name, long_link = None, b"", b""
            elif typ == 0x4C:
                long_name = _cstr(body)
            else:
                long_link = _cstr(body)
            continue
        nul = header.find(b"\0", 0, 100)
        name = header[:nul if nul >= 0 else 100]
        if magic == b"ustar\0":
            if header[345]:
                prefix = _cstr(header[345:476] if header[508:512] == b"tar\0"
                               else header[345:500])
                name = prefix + b"/" + name
        elif magic == b"ustar " and header[263:265] == b" \0" and (header[345] or header[357]):
            name = _gnu_prefix(header, name)
        nul = header.find(b"\0", 157, 257)
        link = header[157:nul if nul >= 0 else 257]
        if pax is not None:
            v = pax.get(b"path")
            if v:
                name = v
            v = pax.get(b"linkpath")
            if v:
                link = v
            v = pax.get(b"size")
            if v:
                size = _decimal(v)
                if size < 0:
                    raise LayerFormatError("not a tar stream (negative size)")
        if long_name:
            name = long_name
        if long_link:
            link = long_link
        if typ == 0:
            typ = 0x35 if name.endswith(b"/") else 0x30
        physical = 0 if typ in HEADER_ONLY else size
        frags: list[tuple[int, int]] | None = None
        if typ == 0x53:  # 'S': old GNU sparse
            if magic != b"ustar " or header[263:265] != b" \0":
                raise LayerFormatError("not a tar stream (a sparse header not in GNU format)")
            size, raw = _old_gnu_map(t, header)
            frags = _check_sparse(raw, size)
        elif pax is not None:
            found = _pax_sparse(t, pax, name, size, physical)
            if found is not None:
                if typ in HEADER_ONLY:
                    raise LayerFormatError("not a tar stream (a sparse map on a "
                                           "header-only entry)")
                name, size, raw, physical = found
                frags = _check_sparse(raw, size)
        if frags is not None and sum(n for _o, n in frags) != physical:
            raise LayerFormatError("bad sparse file (its map does not match its data)")
        pax, long_name, long_link = None, b"", b""
        end = t.base + t.pos + physical
        yield typ, name, link, size, frags
        padded = end + (-physical % BLOCK)
        if padded - t.base <= len(t.buf):  # within the buffer: the common case
            t.pos = padded - t.base
        elif not t.skip_to(end):
            raise _truncated()
        elif not t.skip_to(padded):
            return  # the padding of the last entry cut short: Go ends there too


def _checksum(header: bytes) -> None:
    """Go accepts the sum of the header's bytes, unsigned or signed (old tars), with
    the checksum field counted as spaces."""
    chksum = numeric(header[148:156])
    rest = header[:148] + header[156:]
    unsigned = sum(rest) + 256
    if chksum != unsigned and chksum != unsigned - 256 * sum(1 for b in rest if b & 0x80):
        raise LayerFormatError("not a tar stream (bad header checksum)")


def _gnu_prefix(header: bytes, name: bytes) -> bytes:
    """A GNU header's name: its time fields, unless they do not parse, where Go before
    1.8 wrote a ustar prefix; then that prefix if it is ASCII."""
    try:
        for f in (header[345:357], header[357:369]):
            if f[0]:
                numeric(f)
    except LayerFormatError:
        prefix = _cstr(header[345:500])
        if prefix and prefix.isascii():
            return prefix + b"/" + name
    return name


def list_entries(chunks: Iterable[bytes]) -> Iterator[tuple[str, str, int, str, str]]:
    """(name, type flag, size, link name, SHA-256 of the content) of each entry of a
    layer blob (compressed or not), in order: what Go's ``archive/tar`` lists. Reads
    every content, holes of sparse files included: for tests and diagnostics."""
    _kind, tar = decompress(Counter(chunks))
    t = Cursor(tar)
    for typ, name, link, size, frags in entries(t):
        h = hashlib.sha256()
        if typ not in HEADER_ONLY:
            for piece in logical_content(t, size, frags):
                h.update(piece)
        yield (name.decode("utf-8", "surrogateescape"), chr(typ), size,
               link.decode("utf-8", "surrogateescape"), h.hexdigest())
    for _ in tar:  # the rest of the stream (a truncated compressed tail is an error)
        pass
