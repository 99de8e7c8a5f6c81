"""Tar layers crafted block by block, in every format Go's ``archive/tar`` reads: what
Python's ``tarfile`` writes (GNU, PAX, ustar) and what it cannot (the star prefix, old
GNU and PAX 0.0/0.1/1.0 sparse files, header-only entries with a size, odd numbers and
types), plus broken ones. Each case is the test's own construction from the formats'
documentation (GNU tar manual, POSIX pax, Go's archive/tar reader)."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
from collections.abc import Callable

EM_X86_64 = 62

ELF = (b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 2, EM_X86_64, 1)
       + b"\0" * 40 + b"x86-64 program")


def header(name: bytes, *, typ: bytes = b"0", size: int = 0, link: bytes = b"",
           magic: bytes = b"ustar\x0000", size_field: bytes | None = None,
           at: dict[int, bytes] | None = None) -> bytes:
    """One 512-byte header with a valid checksum; ``at`` writes raw bytes at offsets."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"14000000000\0"
    h[156:157] = typ
    h[157:157 + len(link)] = link
    h[257:265] = magic
    for off, raw in (at or {}).items():
        h[off:off + len(raw)] = raw
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def data(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % 512)


def pax(records: list[tuple[bytes, bytes]], *, typ: bytes = b"x") -> bytes:
    body = b""
    for k, v in records:
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n).encode()) + len(rec) != n:
            n += 1
        body += str(n).encode() + rec
    return header(b"PaxHeaders/x", typ=typ, size=len(body)) + data(body)


END = b"\0" * 1024
GNU = b"ustar  \0"


def with_tarfile(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, content in members:
            info.size = len(content) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.linkname, i.mtime, i.mode = kind, link, 1_700_000_000, 0o755
    return i


def tarfile_members(long: str, long_links: bool = True) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Long names (and, but in ustar, long link names) and every kind of entry."""
    target = f"usr/lib/{long}/tool" if long_links else "usr/bin/short"
    return [(info("usr", tarfile.DIRTYPE), b""),
            (info(f"usr/lib/{long}/tool"), ELF),
            (info("usr/bin/short"), ELF),
            (info("usr/bin/hard", tarfile.LNKTYPE, target), b""),
            (info(f"usr/lib/{long}/sym", tarfile.SYMTYPE,
                  "/" + "t" * (150 if long_links else 50)), b""),
            (info("dev/fifo", tarfile.FIFOTYPE), b""),
            (info("dev/null", tarfile.CHRTYPE), b""),
            (info("etc/caf\u00e9.conf"), "name = caf\u00e9\n".encode()),
            (info("etc/.wh.removed"), b""),
            (info("var/.wh..wh..opq"), b"")]


def gnu_sparse_old() -> bytes:
    """Type S: two fragments in the header, two more in an extension block."""
    frags = [(0, 100), (4096, 50), (9000, 30), (20000, 10)]
    content = [ELF + b"a" * (100 - len(ELF)), b"b" * 50, b"c" * 30, b"d" * 10]
    at = {482: b"\x01", 483: b"%011o\0" % 30000}
    for i, (off, n) in enumerate(frags[:2]):
        at[386 + 24 * i] = b"%011o\0%011o\0" % (off, n)
    ext = bytearray(512)
    for i, (off, n) in enumerate(frags[2:]):
        ext[24 * i:24 * i + 24] = b"%011o\0%011o\0" % (off, n)
    phys = b"".join(content)
    # A second sparse file whose data starts after a hole: its head is zeros.
    at2 = {386: b"%011o\0%011o\0" % (8192, len(ELF)), 483: b"%011o\0" % 10000}
    return (header(b"sparse/old", typ=b"S", size=len(phys), magic=GNU, at=at) + bytes(ext)
            + data(phys)
            + header(b"sparse/hole-first", typ=b"S", size=len(ELF), magic=GNU, at=at2)
            + data(ELF) + END)


def pax_sparse(version: str) -> bytes:
    content = [ELF + b"a" * (100 - len(ELF)), b"b" * 50]
    frags = [(0, 100), (8192, 50)]
    phys = b"".join(content)
    if version == "0.0":
        recs = [(b"GNU.sparse.size", b"10000"), (b"GNU.sparse.numblocks", b"2")]
        for off, n in frags:
            recs += [(b"GNU.sparse.offset", str(off).encode()),
                     (b"GNU.sparse.numbytes", str(n).encode())]
        return pax(recs) + header(b"sparse/v00", size=len(phys)) + data(phys) + END
    if version == "0.1":
        recs = [(b"GNU.sparse.size", b"10000"), (b"GNU.sparse.numblocks", b"2"),
                (b"GNU.sparse.name", b"sparse/v01-real-name"),
                (b"GNU.sparse.map", b"0,100,8192,50")]
        return (pax(recs) + header(b"./GNUSparseFile.1/v01", size=len(phys)) + data(phys)
                + END)
    mapping = data(b"2\n0\n100\n8192\n50\n")
    recs = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
            (b"GNU.sparse.name", b"sparse/v10-real-name"), (b"GNU.sparse.realsize", b"10000")]
    return (pax(recs) + header(b"./GNUSparseFile.0/v10", size=len(mapping) + len(phys))
            + mapping + data(phys) + END)


def star_prefix() -> bytes:
    """star: the prefix is 131 bytes (here all used, no NUL), then atime and ctime, and
    the header ends in ``tar\\0``."""
    prefix = b"opt/" + b"p" * 127
    at = {345: prefix, 476: b"14000000000\0", 488: b"14000000000\0", 508: b"tar\0"}
    return header(b"star-file", size=len(ELF), at=at) + data(ELF) + END


def header_only_sizes() -> bytes:
    """Directories, links, devices and FIFOs have no data, whatever their size says."""
    hidden = header(b"hidden/x86", size=len(ELF)) + data(ELF)
    return (header(b"dir", typ=b"5", size=len(hidden)) + hidden
            + header(b"sym", typ=b"2", link=b"dir", size=512) + header(b"after", size=5)
            + data(b"hello")
            + header(b"hard", typ=b"1", link=b"after", size=1024)
            + header(b"fifo", typ=b"6", size=512) + header(b"chr", typ=b"3", size=512)
            + header(b"blk", typ=b"4", size=512) + END)


def odd_headers() -> bytes:
    return (
        # Old tars' NUL type: a directory when the name ends in '/'.
        header(b"olddir/", typ=b"\0", size=len(ELF)) + header(b"oldfile", typ=b"\0", size=3)
        + data(b"abc")
        # A global PAX header names nothing that follows (Go returns it; engines skip it).
        + pax([(b"path", b"global-evil")], typ=b"g") + header(b"real-name", size=2) + data(b"ok")
        # PAX: an empty value keeps the header's; size, linkpath, then a long name wins.
        + pax([(b"path", b"")]) + header(b"kept-name", size=1) + data(b"k")
        + pax([(b"size", str(len(ELF)).encode())]) + header(b"pax-size", size=0) + data(ELF)
        + pax([(b"linkpath", b"pax-size")]) + header(b"pax-link", typ=b"1", link=b"zzz")
        + pax([(b"path", b"from-pax")]) + header(b"././@LongLink", typ=b"L", size=10)
        + data(b"from-long\0") + header(b"short", size=3) + data(b"abc")
        + header(b"././@LongLink", typ=b"K", size=9) + data(b"pax-size\0")
        + header(b"long-link", typ=b"1", link=b"nope")
        # Numbers: leading NULs, base-256, spaces, and a V7 header with no magic.
        + header(b"octal", size_field=b"\0\0\0" + b"%08o" % len(ELF) + b"\0") + data(ELF)
        + header(b"base256", size_field=b"\x80" + len(ELF).to_bytes(11, "big")) + data(ELF)
        + header(b"spaced", size_field=b"  %o " % len(ELF) + b" " * 6) + data(ELF)
        + header(b"v7-file", size=3, magic=b"\0" * 8) + data(b"v7!")
        + header(b"contig", typ=b"7", size=len(ELF)) + data(ELF)
        + header(b"a" * 100, size=1, magic=GNU) + data(b"g")
        # GNU headers carry times where ustar has its prefix: no prefix here.
        + header(b"gnu-times", size=1, magic=GNU, at={345: b"14000000000\0"}) + data(b"t")
        + END)


def more_headers() -> bytes:
    # A map over two blocks (a number padded with 600 zeros crosses the first).
    mapping = data(b"3\n" + b"0" * 600 + b"".join(b"%d\n%d\n" % (i * 4096, n) for i, n
                                                   in enumerate([len(ELF), 10, 10])))
    return (
        # A PAX size over a directory: still no data.
        pax([(b"size", b"1024")]) + header(b"paxdir", typ=b"5")
        # An old-style NUL type named a directory by its PAX path.
        + pax([(b"path", b"pax-named-dir/")]) + header(b"x", typ=b"\0", size=0)
        + pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
               (b"GNU.sparse.name", b"sparse/two-block-map"),
               (b"GNU.sparse.realsize", b"9000")])
        + header(b"GNUSparseFile.0/m", size=len(mapping) + len(ELF) + 20) + mapping
        + data(ELF + b"b" * 20)
        # A sparse file of a PAX version Go does not know: a plain file.
        + pax([(b"GNU.sparse.major", b"2"), (b"GNU.sparse.minor", b"0"),
               (b"GNU.sparse.name", b"ignored")]) + header(b"v2-plain", size=3) + data(b"abc")
        + END)


def gzipped(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


GOOD: dict[str, Callable[[], bytes]] = {
    "gnu": lambda: with_tarfile(tarfile.GNU_FORMAT, tarfile_members("g" * 120)),
    "pax": lambda: with_tarfile(tarfile.PAX_FORMAT, tarfile_members("p" * 120)),
    "ustar-prefix": lambda: with_tarfile(tarfile.USTAR_FORMAT,
                                         tarfile_members("u" * 120, long_links=False)),
    "star-prefix": star_prefix,
    "gnu-sparse-old": gnu_sparse_old,
    "pax-sparse-0.0": lambda: pax_sparse("0.0"),
    "pax-sparse-0.1": lambda: pax_sparse("0.1"),
    "pax-sparse-1.0": lambda: pax_sparse("1.0"),
    "header-only-sizes": header_only_sizes,
    "odd-headers": odd_headers,
    "gzip": lambda: gzipped(odd_headers()),
    "more-headers": more_headers,
    "gzip-two-members": lambda: gzipped(odd_headers()[:4096]) + gzipped(odd_headers()[4096:]),
    "no-end-blocks": lambda: header(b"f", size=3) + data(b"abc"),
    "padding-cut": lambda: header(b"f", size=3) + b"abc" + b"\0" * 10,
}

BAD: dict[str, Callable[[], bytes]] = {
    "cut-in-data": lambda: header(b"first", size=2) + data(b"ok")
    + header(b"big", size=5000) + b"x" * 1000,
    "cut-in-header": lambda: header(b"first", size=2) + data(b"ok") + header(b"next")[:300],
    "zero-block-then-header": lambda: header(b"a", size=1) + data(b"a") + b"\0" * 512
    + header(b"b", size=1) + data(b"b") + END,
    "bad-pax-record": lambda: header(b"x", typ=b"x", size=12) + data(b"99 path=abc\n")
    + header(b"f") + END,
    "pax-over-1mib": lambda: pax([(b"comment", b"c" * (1 << 20))]) + header(b"f") + END,
    "sparse-map-beyond-data": lambda: pax(
        [(b"GNU.sparse.size", b"300"), (b"GNU.sparse.numblocks", b"1"),
         (b"GNU.sparse.map", b"0,200")]) + header(b"s", size=100) + data(b"s" * 100) + END,
    "sparse-data-beyond-map": lambda: pax(
        [(b"GNU.sparse.size", b"300"), (b"GNU.sparse.numblocks", b"1"),
         (b"GNU.sparse.map", b"0,50")]) + header(b"s", size=100) + data(b"s" * 100) + END,
    "sparse-overlap": lambda: pax(
        [(b"GNU.sparse.size", b"300"), (b"GNU.sparse.numblocks", b"2"),
         (b"GNU.sparse.map", b"0,50,20,50")]) + header(b"s", size=100) + data(b"s" * 100) + END,
    "bad-octal": lambda: header(b"f", size_field=b"12 34\0      ") + END,
    "bad-checksum-v7": lambda: header(b"f", magic=b"\0" * 8)[:148] + b"0000000\0"
    + header(b"f", magic=b"\0" * 8)[156:] + END,
    "negative-size": lambda: header(b"f", size_field=b"\xff" * 12) + END,
    "old-sparse-not-gnu": lambda: header(b"s", typ=b"S", size=0) + END,
    "gzip-trailing-garbage": lambda: gzipped(header(b"f", size=1) + data(b"f") + END)
    + b"\0" * 64,
    "truncated-gzip": lambda: gzipped(header(b"f", size=4000) + data(os.urandom(4000))
                                      + END)[:-30],
}


