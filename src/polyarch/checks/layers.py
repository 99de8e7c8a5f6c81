"""Walk one layer's tar stream and keep what verification needs, nothing more.

The walker reads tar headers straight out of the decompressed buffers: no object per
entry, the payload of a file skipped by moving an offset, and only three kinds of
files looked into: ELF files (the 64-byte header), files a content scanner asks for
(credentials) and wheels' ``*.dist-info/WHEEL`` (platform tags). What it keeps is a
:class:`LayerScan`: the ELF headers and credential findings by path, hard links, OCI
whiteouts, and a 64-bit hash of every other path (enough to tell whether this layer
replaces a file of a lower one). A scan depends only on the layer's bytes, so it is
cached by layer digest (:mod:`polyarch.checks.cache`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import posixpath
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from polyarch.checks import secrets
from polyarch.checks.elf import HEAD, MAGIC, ElfHeader, read_elf_header
from polyarch.checks.secrets import marks as stream_marks
from polyarch.checks.stream import Counter, LayerFormatError, decompress
from polyarch.checks.tarformat import Cursor, logical_content
from polyarch.checks.tarstream import entries as tar_entries

__all__ = ["LayerFormatError", "LayerScan", "ContentSink", "path_hash", "scan_layer"]

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
#: Entries whose content is a file's: '0' (and old tars' NUL, which the reader turns
#: into '0' or '5'), '7' (contiguous) and 'S' (old GNU sparse). Engines extract only
#: '0'; the other two are read as files all the same, so that nothing hides in them.
_CONTENT = (0x30, 0x37, 0x53)
_LARGEST_WHEEL_FILE = 64 << 10
#: Bytes of a script the kernel reads for its ``#!`` line (BINPRM_BUF_SIZE, Linux 5.1+).
_SHEBANG = 256


class ContentSink(Protocol):
    """Receives the content of one file, then says what it found."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> list[secrets.SecretHit]: ...


#: ``hook(path, head)`` -> a sink for the file's content, or ``None`` to skip it.
ContentHook = Callable[[str, bytes], "ContentSink | None"]


def content_scanner(path: str, head: bytes) -> ContentSink | None:
    """The default content hook: every regular file but those whose first bytes name a
    format that holds no readable token goes through :class:`secrets.ContentScanner`
    (token formats anywhere, and the credential-file rules for files named like one).
    ELF files are read for the strings a build embeds; a file named like a credential
    file is read whatever its first bytes."""
    if secrets.is_elf(head):
        return secrets.ContentScanner(path, binary=True)
    if secrets.skip_by_magic(head) and not secrets.is_candidate(path):
        return None
    return secrets.ContentScanner(path)


def path_hash(path: str | bytes) -> int:
    """A stable 64-bit hash of a normalised path (without its leading ``/``)."""
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path
    return int.from_bytes(hashlib.blake2b(raw.lstrip(b"/"), digest_size=8).digest(), "little")


def normalise(name: str) -> str:
    """A tar member name as an absolute path (``./usr/bin/`` -> ``/usr/bin``)."""
    p = posixpath.normpath("/" + name.lstrip("/"))
    return "/" if p in {"/", "//", "/."} else p.rstrip("/")


def _sorted(acc: bytearray) -> array[int]:
    a = array("Q")
    a.frombytes(bytes(acc))
    return array("Q", sorted(a))  # duplicates (a path given twice) do no harm


@dataclass
class LayerScan:
    digest: str
    #: ELF executables and shared objects, by path.
    elf: dict[str, ElfHeader] = field(default_factory=dict)
    #: Credentials found, by path (the file's kind and where in it: never a value).
    secrets: dict[str, list[secrets.SecretHit]] = field(default_factory=dict)
    #: Hard links whose target is not an ELF or credential file of this layer: they
    #: may name one of a lower layer.
    links: dict[str, str] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    #: Platform tags of installed wheels: ``*.dist-info`` directory -> its ``Tag:`` lines.
    wheels: dict[str, list[str]] = field(default_factory=dict)
    #: Symbolic links: path -> target as written (what reaches a binary from PATH).
    symlinks: dict[str, str] = field(default_factory=dict)
    #: Executable scripts: path -> their ``#!`` line (the interpreter that runs them).
    scripts: dict[str, str] = field(default_factory=dict)
    #: Sorted :func:`path_hash` values of directory and of other entries.
    dirs: array[int] = field(default_factory=lambda: array("Q"))
    others: array[int] = field(default_factory=lambda: array("Q"))
    entries: int = 0
    compressed_bytes: int = 0
    tar_bytes: int = 0
    compression: str = "none"

    def has_dir(self, h: int) -> bool:
        return _member(self.dirs, h)

    def has_other(self, h: int) -> bool:
        return _member(self.others, h)

    # -- cache form --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "elf": [[p, h.elf_class, int(h.little_endian), h.type, h.machine]
                    for p, h in self.elf.items()],
            "secrets": [[p, [dataclasses.asdict(s) for s in hits]]
                        for p, hits in self.secrets.items()],
            "links": self.links,
            "whiteouts": self.whiteouts,
            "opaque": self.opaque,
            "wheels": self.wheels,
            "symlinks": self.symlinks,
            "scripts": self.scripts,
            "dirs": base64.b64encode(self.dirs.tobytes()).decode(),
            "others": base64.b64encode(self.others.tobytes()).decode(),
            "entries": self.entries,
            "compressed_bytes": self.compressed_bytes,
            "tar_bytes": self.tar_bytes,
            "compression": self.compression,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LayerScan:
        dirs, others = array("Q"), array("Q")
        dirs.frombytes(base64.b64decode(doc["dirs"]))
        others.frombytes(base64.b64decode(doc["others"]))
        return cls(
            digest=str(doc["digest"]),
            elf={str(p): ElfHeader(int(c), bool(le), int(t), int(m))
                 for p, c, le, t, m in doc["elf"]},
            secrets={str(p): [secrets.SecretHit(**h) for h in hits] for p, hits in doc["secrets"]},
            links={str(k): str(v) for k, v in doc["links"].items()},
            whiteouts=[str(w) for w in doc["whiteouts"]],
            opaque=[str(o) for o in doc["opaque"]],
            wheels={str(k): [str(t) for t in v] for k, v in doc["wheels"].items()},
            symlinks={str(k): str(v) for k, v in doc["symlinks"].items()},
            scripts={str(k): str(v) for k, v in doc["scripts"].items()},
            dirs=dirs, others=others, entries=int(doc["entries"]),
            compressed_bytes=int(doc["compressed_bytes"]), tar_bytes=int(doc["tar_bytes"]),
            compression=str(doc["compression"]),
        )


def _member(a: array[int], h: int) -> bool:
    i = bisect_left(a, h)  # in C, over the array itself (no list copy)
    return i < len(a) and a[i] == h


def _clean(raw: bytes) -> bytes:
    """A member name without leading ``./`` and ``/`` or a trailing ``/``; ``..`` and
    ``.`` components resolved (rare, so the common case costs three checks)."""
    while raw[:2] == b"./":
        raw = raw[2:]
    raw = raw.strip(b"/")
    if b"//" in raw or b"/." in raw or raw[:1] == b".":
        p = posixpath.normpath(b"/" + raw).lstrip(b"/")
        raw = b"" if p == b"." else p
    return raw


def scan_layer(digest: str, chunks: Iterable[bytes], hook: ContentHook | None = None
               ) -> LayerScan:
    """Stream one layer blob and record what the checks need. Reads the blob to its
    end (so that a source checking digests gets to check it). ``hook`` chooses the
    files whose content is scanned (default: :func:`content_scanner`)."""
    counter = Counter(chunks)
    scan = LayerScan(digest)
    scan.compression, tar = decompress(counter)
    # With the default scanner, the places where its regexes can match are found in
    # one pass over the stream; files without one are not scanned on their own.
    marks = stream_marks.marks(tar, secrets.known_values()) if hook is None else None
    tar_count = Counter(tar if marks is None else iter(marks))
    try:
        _walk(Cursor(tar_count), scan, hook or content_scanner, marks)
        # What follows the end of the archive is still decompressed (engines read it
        # to check the diff ID): a compressed stream cut or corrupt there is an error.
        for _ in tar_count:
            pass
    finally:
        for _ in counter:  # read to the end so that the digest gets checked
            pass
    scan.compressed_bytes = counter.count
    scan.tar_bytes = tar_count.count
    return scan


def _walk(t: Cursor, scan: LayerScan, hook: ContentHook,  # noqa: C901 - one hot loop
          marks: stream_marks.StreamMarks | None = None) -> None:
    blake = hashlib.blake2b
    dirs, others = bytearray(), bytearray()
    elf, found, links = scan.elf, scan.secrets, scan.links
    symlinks, scripts = scan.symlinks, scan.scripts
    entries = 0
    for typ, raw, link, size, frags, mode in tar_entries(t):
        raw = _clean(raw)
        if not raw:
            continue
        entries += 1
        slash = raw.rfind(b"/")
        if raw[slash + 1:slash + 5] == b".wh.":
            parent = "/" + raw[:slash].decode("utf-8", "surrogateescape") if slash > 0 else "/"
            base = raw[slash + 1:].decode("utf-8", "surrogateescape")
            if base == OPAQUE:
                scan.opaque.append(parent)
            else:
                scan.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT):]))
            continue
        if typ == 0x35:  # '5': directory
            dirs += blake(raw, digest_size=8).digest()
            continue
        others += blake(raw, digest_size=8).digest()
        if typ in _CONTENT and size:
            path = "/" + raw.decode("utf-8", "surrogateescape")
            links.pop(path, None)
            symlinks.pop(path, None)
            scripts.pop(path, None)
            n = size if size < HEAD else HEAD
            if frags is not None:  # sparse: the head of its logical content
                head = _sparse_head(t, frags, n)
            else:
                if t.pos + n > len(t.buf):
                    t.fill(n)  # the start of the file lies in the next chunk
                head = t.buf[t.pos:t.pos + n]
            if head.startswith(MAGIC):
                h = read_elf_header(head)
                if h is not None and h.runnable:
                    elf[path] = h
                    found.pop(path, None)
                    sink = hook(path, head)  # strings a build embedded
                    if sink is not None:
                        if marks is not None and frags is None:
                            _use_marks(sink, marks, t.base + t.pos)
                        for piece in t.chunks(
                                size if frags is None else sum(n for _o, n in frags)):
                            sink.feed(piece)
                        hits = sink.finish()
                        if hits:
                            found[path] = hits
                    continue
            elf.pop(path, None)
            if head.startswith(b"#!") and mode & 0o111:
                m = size if size < _SHEBANG else _SHEBANG
                if frags is not None:
                    first = _sparse_head(t, frags, m)
                else:
                    if t.pos + m > len(t.buf):
                        t.fill(m)
                    first = t.buf[t.pos:t.pos + m]
                line = first.split(b"\n", 1)[0][2:].strip()
                scripts[path] = line.decode("utf-8", "surrogateescape")
            if raw.endswith(b".dist-info/WHEEL") and size <= _LARGEST_WHEEL_FILE:
                found.pop(path, None)  # wheel metadata: platform tags, never credentials
                body = b"".join(logical_content(t, size, frags))
                scan.wheels[posixpath.dirname(path)] = [
                    ln.split(":", 1)[1].strip() for ln in body.decode("utf-8", "replace")
                    .splitlines() if ln.startswith("Tag:")]
                continue
            if (marks is not None and frags is None
                    and marks.clear(t.base + t.pos, t.base + t.pos + size)
                    and not secrets.ContentScanner.beyond_places(path, head)):
                found.pop(path, None)  # no place in it where a finding can be
                continue
            sink = hook(path, head)
            if sink is not None:
                if marks is not None and frags is None:
                    _use_marks(sink, marks, t.base + t.pos)
                # A sparse file's data fragments, without its holes (zeros hold no
                # credential; a hole may be terabytes long).
                for piece in t.chunks(size if frags is None else sum(n for _o, n in frags)):
                    sink.feed(piece)
                hits = sink.finish()
                if hits:
                    found[path] = hits
                else:
                    found.pop(path, None)
                continue
            found.pop(path, None)
            continue
        path = "/" + raw.decode("utf-8", "surrogateescape")
        elf.pop(path, None)
        found.pop(path, None)
        links.pop(path, None)
        symlinks.pop(path, None)
        scripts.pop(path, None)
        if typ == 0x32:
            symlinks[path] = link.decode("utf-8", "surrogateescape")
        if typ == 0x31:
            target = "/" + _clean(link).decode("utf-8", "surrogateescape")
            if target in scripts:
                scripts[path] = scripts[target]
            if target in elf:
                elf[path] = elf[target]
            elif target in found:
                found[path] = list(found[target])
            else:
                links[path] = target
            if secrets.is_candidate(path) and not secrets.is_candidate(target):
                # The name rules of the link's name: its content was read under the
                # target's name, which those rules do not cover.
                found.setdefault(path, []).append(secrets.SecretHit(
                    "hard link named like a credential file", f"links to {target}",
                    "warning"))
    scan.entries = entries
    scan.dirs = _sorted(dirs)
    scan.others = _sorted(others)


def _use_marks(sink: ContentSink, marks: stream_marks.StreamMarks, at: int) -> None:
    """Let a content scanner skip the blocks of its file (at stream offset ``at``) that
    the marks know hold no place."""
    if isinstance(sink, secrets.ContentScanner):
        sink.use_marks(lambda a, b: marks.clear(at + max(0, a), at + b))


def _sparse_head(t: Cursor, frags: list[tuple[int, int]], n: int) -> bytes:
    """The first ``n`` bytes of a sparse file's logical content (zeros in its holes),
    peeked at without moving the cursor."""
    head = bytearray(n)
    phys = 0  # where the fragment's data starts, from the cursor
    for off, length in frags:
        if off >= n:
            break
        take = min(length, n - off)
        if t.pos + phys + take > len(t.buf):
            t.fill(phys + take)
        piece = t.buf[t.pos + phys:t.pos + phys + take]
        head[off:off + len(piece)] = piece
        phys += length
    return bytes(head)
