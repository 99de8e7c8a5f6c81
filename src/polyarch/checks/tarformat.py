"""The pieces of the tar format as Go's ``archive/tar`` reads them: a cursor over the
decompressed stream, numeric header fields, PAX records and sparse maps. The walk over
the entries is :mod:`polyarch.checks.tarstream`."""

from __future__ import annotations

from collections.abc import Iterator

from polyarch.checks.stream import LayerFormatError

BLOCK = 512
ZERO = b"\0" * BLOCK
#: Types whose entries have no data, whatever their size field says (Go's
#: ``isHeaderOnlyType``): hard link, symlink, char and block device, directory, FIFO.
HEADER_ONLY = frozenset(b"123456")
#: Largest PAX or GNU long-name body (Go's ``maxSpecialFileSize``).
MAX_SPECIAL = 1 << 20

#: Most fragments in a sparse map (Go reads any number; real maps hold a few, and a
#: map stays in memory): the same 1 MiB bound as PAX records, 21 fragments a block.
_MAX_FRAGMENTS = 21 * (MAX_SPECIAL // BLOCK)

#: (type flag, name, link name, size, sparse data fragments or ``None``).
#: (type flag, name, link name, size, sparse map or None, permission bits)
Entry = tuple[int, bytes, bytes, int, "list[tuple[int, int]] | None", int]


def truncated() -> LayerFormatError:
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
            raise truncated()
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def chunks(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, piece by piece (without copying whole chunks)."""
        left = size
        while left > 0:
            if self.pos >= len(self.buf) and not self.fill(1):
                raise truncated()
            piece = self.buf[self.pos:self.pos + left]
            self.pos += len(piece)
            left -= len(piece)
            yield piece


# -- numbers and strings, as Go parses them ------------------------------------------------

def cstr(f: bytes) -> bytes:
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
    text = cstr(f.strip(b" \0"))
    if not text:
        return 0
    if not _OCTAL.issuperset(text) or len(text) > 21 or int(text, 8) >> 64:
        raise LayerFormatError("not a tar stream (bad number in a header)")
    return int(text, 8)


def decimal(v: bytes) -> int:
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

def check_sparse(frags: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
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


def old_gnu_map(t: Cursor, header: bytes) -> tuple[int, list[tuple[int, int]]]:
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


def pax_sparse(t: Cursor, pax: dict[bytes, bytes], name: bytes, size: int, physical: int
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
        size = decimal(text)
    frags: list[tuple[int, int]] = []
    if v1:
        # Decimal numbers, one a line, in whole blocks at the start of the data.
        blocks: list[bytes] = []
        lines = 0
        want = 1
        while lines < want or not blocks:
            if physical < BLOCK:
                raise truncated()
            if len(blocks) * BLOCK >= MAX_SPECIAL:
                raise LayerFormatError(f"sparse map larger than {MAX_SPECIAL} bytes")
            block = t.read(BLOCK)
            physical -= BLOCK
            blocks.append(block)
            lines += block.count(b"\n")
            if want == 1 and lines >= 1:
                count = decimal(b"".join(blocks).split(b"\n", 1)[0])
                if count < 0:
                    raise LayerFormatError("bad sparse file (bad map)")
                want = 1 + 2 * count
        tokens = b"".join(blocks).split(b"\n")[:want]
        nums = [decimal(x) for x in tokens[1:]]
        frags = list(zip(nums[0::2], nums[1::2], strict=True))
    else:
        text = pax.get(b"GNU.sparse.numblocks", b"")
        count = decimal(text) if text else -1
        parts = pax.get(_SPARSE_MAP, b"").split(b",")
        if parts == [b""]:
            parts = []
        if count < 0 or len(parts) != 2 * count:
            raise LayerFormatError("bad sparse file (bad map)")
        nums = [decimal(x) for x in parts]
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


