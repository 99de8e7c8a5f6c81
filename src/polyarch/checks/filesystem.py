"""Apply layer scans in order: the final filesystem's interesting files, and the
credentials that a later layer removed but that still ship in a lower layer's blob.

OCI whiteouts: ``.wh.NAME`` deletes ``NAME`` (and everything below it), and
``.wh..wh..opq`` hides everything below its directory from lower layers. A later
layer's entry at the same path replaces a file; a later non-directory entry at one of
its parent directories removes it too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace

from polyarch.checks.elf import ElfHeader
from polyarch.checks.layers import LayerScan, path_hash
from polyarch.checks.secrets import SecretHit
from polyarch.checks.tagged import libc_of_loader

#: Symbolic links followed in one path walk (Linux's MAXSYMLINKS).
MAX_LINKS = 40


@dataclass(frozen=True)
class FinalFile:
    path: str
    layer_index: int
    layer: str
    elf: ElfHeader | None
    secrets: tuple[SecretHit, ...] = ()
    #: A symbolic link's target, as written.
    link: str | None = None
    #: An executable script's ``#!`` line (without ``#!``).
    script: str | None = None


@dataclass(frozen=True)
class Shipped:
    """Credentials in a layer blob that the final filesystem no longer shows."""

    path: str
    #: The layer whose blob holds the file.
    layer: str
    secrets: tuple[SecretHit, ...]
    #: The later layer that deleted (``deleted``) or overwrote (``replaced``) it.
    removed_by: str
    how: str


@dataclass
class Filesystem:
    files: dict[str, FinalFile] = field(default_factory=dict)
    shipped: list[Shipped] = field(default_factory=list)
    #: ``glibc`` and/or ``musl``: the C libraries whose loader the image holds (an ELF
    #: file of a loader's name, or a symbolic link of that name leading to an ELF file).
    libcs: frozenset[str] = frozenset()
    #: Installed wheels' platform tags by ``*.dist-info`` directory.
    wheels: dict[str, list[str]] = field(default_factory=dict)


def resolve(files: dict[str, FinalFile], path: str) -> str | None:
    """``path`` with every symbolic link on the way followed, as the kernel's path walk
    does: absolute and relative targets, links in any directory of the way, chains
    (``None``: a loop or more than :data:`MAX_LINKS` links)."""
    todo = [c for c in reversed(path.split("/")) if c]
    cur = "/"
    links = 0
    while todo:
        comp = todo.pop()
        if comp == ".":
            continue
        if comp == "..":
            cur = posixpath.dirname(cur)
            continue
        nxt = cur.rstrip("/") + "/" + comp
        f = files.get(nxt)
        if f is not None and f.link is not None:
            links += 1
            if links > MAX_LINKS:
                return None
            if f.link.startswith("/"):
                cur = "/"
            todo.extend(c for c in reversed(f.link.split("/")) if c)
            continue
        cur = nxt
    return cur


def _libcs(files: dict[str, FinalFile]) -> frozenset[str]:
    """The C libraries whose loader ``files`` holds. A loader named by a symbolic link
    (Debian's ``/lib/ld-musl-<arch>.so.1`` -> ``<triple>/libc.so``, its
    ``/lib64/ld-linux-x86-64.so.2``) counts when the link leads to an ELF file, judged
    by that file's name when it names a C library and by the link's otherwise; a
    dangling link is no loader."""
    out: set[str] = set()
    for p, f in files.items():
        libc = libc_of_loader(p[p.rfind("/") + 1:])
        if libc is None:
            continue
        if f.link is not None:
            real = resolve(files, p)
            target = files.get(real) if real is not None else None
            if target is None or target.elf is None or real is None:
                continue
            libc = libc_of_loader(real[real.rfind("/") + 1:]) or libc
        elif f.elf is None:
            continue
        out.add(libc)
    return frozenset(out)


#: Path hashes already computed (the platforms of an image share most paths), cleared
#: when it holds :data:`_HASHES_MAX` of them.
_hashes: dict[str, int] = {}
_HASHES_MAX = 200_000


def _hash(p: str) -> int:
    v = _hashes.get(p)
    if v is None:
        if len(_hashes) >= _HASHES_MAX:
            _hashes.clear()
        v = _hashes[p] = path_hash(p)
    return v


def _below_cut(p: str, cut: set[str]) -> bool:
    """Whether a directory above ``p`` (``/`` aside) is in ``cut``."""
    d = p[:p.rfind("/")]  # paths are normalised: this is the parent, or "" for "/"
    while d:
        if d in cut:
            return True
        d = d[:d.rfind("/")]
    return False


class _Seen:
    """Hashes of every path merged so far and of every directory above one: what a
    later layer's entries (kept as path hashes) are intersected with. A path removed
    since stays: it only makes an intersection non-empty, and the files are then
    looked at one by one."""

    def __init__(self) -> None:
        self.files: set[int] = set()
        self.dirs: dict[str, int] = {}
        self.dir_hashes: set[int] = set()

    def add(self, p: str) -> None:
        self.files.add(_hash(p))
        d = p[:p.rfind("/")]  # as in _below_cut
        while d and d not in self.dirs:
            h = self.dirs[d] = _hash(d)
            self.dir_hashes.add(h)
            d = d[:d.rfind("/")]

    def replaced(self, scan: LayerScan) -> tuple[set[int], set[str]]:
        """The hashes of merged paths that ``scan`` has an entry at (a file, link or
        directory), and the directories above merged paths that it replaces with a
        non-directory entry."""
        lookups = 2 * len(self.files) + len(self.dir_hashes)
        if len(scan.others) + len(scan.dirs) > LOOKUP_RATIO * lookups:
            # Few paths merged, a large layer (a node_modules tree over a small base):
            # each merged hash is looked up in the layer's sorted arrays.
            at = {h for h in self.files if scan.has_other(h) or scan.has_dir(h)}
            cut = {h for h in self.dir_hashes if scan.has_other(h)}
        else:
            others = set(scan.others)
            at = self.files & others
            at.update(self.files.intersection(scan.dirs))
            cut = self.dir_hashes & others
        return at, ({d for d, h in self.dirs.items() if h in cut} if cut else set())


#: A binary search in a layer's sorted hashes costs about ten times what adding one of
#: them to a set does (660 and 70 ns): the cheaper way is taken per layer.
LOOKUP_RATIO = 10


def merge(scans: list[LayerScan]) -> Filesystem:
    """The interesting files of the final filesystem, each with the layer it came from.

    What a layer replaces is found by intersecting its entries' path hashes with those
    of the paths merged so far (:class:`_Seen`); only a layer that deletes or replaces
    something is compared file by file."""
    final: dict[str, FinalFile] = {}
    shipped: list[Shipped] = []
    wheels: dict[str, list[str]] = {}
    seen = _Seen()

    for i, scan in enumerate(scans):
        if final:
            gone = set(scan.whiteouts)
            pre = tuple([w + "/" for w in scan.whiteouts]
                        + ["/" if o == "/" else o + "/" for o in scan.opaque])
            at, cut = seen.replaced(scan)
            if gone or pre or at or cut:
                for p in list(final):
                    if p in gone or (pre and p.startswith(pre)):
                        how = "deleted"
                    elif (at and _hash(p) in at) or (cut and _below_cut(p, cut)):
                        how = "replaced"
                    else:
                        continue
                    f = final.pop(p)
                    if f.secrets:
                        shipped.append(Shipped(p, f.layer, f.secrets, scan.digest, how))
        for p, eh in scan.elf.items():
            final[p] = FinalFile(p, i, scan.digest, eh)
        for p, hits in scan.secrets.items():
            final[p] = FinalFile(p, i, scan.digest, scan.elf.get(p), tuple(hits))
        for p, line in scan.scripts.items():
            had = final.get(p)
            if had is not None and had.layer_index == i:  # a script holding a credential
                final[p] = replace(had, script=line)
            else:
                final[p] = FinalFile(p, i, scan.digest, None, script=line)
        for p, target in scan.symlinks.items():
            final[p] = FinalFile(p, i, scan.digest, None, link=target)
        for p, target in scan.links.items():
            t = final.get(target)
            if t is not None:
                final[p] = FinalFile(p, i, scan.digest, t.elf, t.secrets, t.link, t.script)
        for d, tags in scan.wheels.items():
            wheels[d] = tags
        if i + 1 < len(scans):  # what the next layers may replace
            for p in (*scan.elf, *scan.secrets, *scan.scripts, *scan.symlinks, *scan.links):
                seen.add(p)
    return Filesystem(dict(sorted(final.items())), shipped, _libcs(final), wheels)
