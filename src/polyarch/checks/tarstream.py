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
from polyarch.checks.tarformat import (
    BLOCK,
    HEADER_ONLY,
    MAX_SPECIAL,
    ZERO,
    Cursor,
    Entry,
    check_sparse,
    cstr,
    decimal,
    logical_content,
    numeric,
    old_gnu_map,
    parse_pax,
    pax_sparse,
    truncated,
)

__all__ = ["Cursor", "Entry", "entries", "list_entries", "logical_content"]

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
                raise truncated()
            return  # a stream without the two zero blocks at its end: Go stops too
        pos = t.pos
        header = t.buf[pos:pos + BLOCK]
        t.pos = pos + BLOCK
        if header == ZERO:
            if t.pos + BLOCK > len(t.buf) and not t.fill(BLOCK):
                if t.pos < len(t.buf):
                    raise truncated()
                return
            if t.buf[t.pos:t.pos + BLOCK] != ZERO:
                raise LayerFormatError("not a tar stream (a zero block, then a header)")
            return
        magic = header[257:263]
        if magic[:5] != b"ustar":  # the checksum is checked where the magic is missing
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
                long_name = cstr(body)
            else:
                long_link = cstr(body)
            continue
        nul = header.find(b"\0", 0, 100)
        name = header[:nul if nul >= 0 else 100]
        if magic == b"ustar\0":
            if header[345]:
                prefix = cstr(header[345:476] if header[508:512] == b"tar\0"
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
                size = decimal(v)
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
            size, raw = old_gnu_map(t, header)
            frags = check_sparse(raw, size)
        elif pax is not None:
            found = pax_sparse(t, pax, name, size, physical)
            if found is not None:
                if typ in HEADER_ONLY:
                    raise LayerFormatError("not a tar stream (a sparse map on a "
                                           "header-only entry)")
                name, size, raw, physical = found
                frags = check_sparse(raw, size)
        if frags is not None and sum(n for _o, n in frags) != physical:
            raise LayerFormatError("bad sparse file (its map does not match its data)")
        pax, long_name, long_link = None, b"", b""
        end = t.base + t.pos + physical
        try:
            mode = numeric(header[100:108])
        except LayerFormatError:
            mode = 0  # Go refuses it; the permission bits only tell scripts apart here
        yield typ, name, link, size, frags, mode
        padded = end + (-physical % BLOCK)
        if padded - t.base <= len(t.buf):  # within the buffer: the common case
            t.pos = padded - t.base
        elif not t.skip_to(end):
            raise truncated()
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
        prefix = cstr(header[345:500])
        if prefix and prefix.isascii():
            return prefix + b"/" + name
    return name


def list_entries(chunks: Iterable[bytes]) -> Iterator[tuple[str, str, int, str, str]]:
    """(name, type flag, size, link name, SHA-256 of the content) of each entry of a
    layer blob (compressed or not), in order: what Go's ``archive/tar`` lists. Reads
    every content, holes of sparse files included: for tests and diagnostics."""
    _kind, tar = decompress(Counter(chunks))
    t = Cursor(tar)
    for typ, name, link, size, frags, _mode in entries(t):
        h = hashlib.sha256()
        if typ not in HEADER_ONLY:
            for piece in logical_content(t, size, frags):
                h.update(piece)
        yield (name.decode("utf-8", "surrogateescape"), chr(typ), size,
               link.decode("utf-8", "surrogateescape"), h.hexdigest())
    for _ in tar:  # the rest of the stream (a truncated compressed tail is an error)
        pass
