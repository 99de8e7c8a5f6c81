"""Merging layer scans against a model that applies the same rules to paths.

A layer scan keeps its directory and other entries only as path hashes; :func:`merge`
finds what a layer replaces by intersecting them with the hashes of what was merged
before. The model here keeps every entry's path and compares them path by path, the
rules written once more in the plainest form: a whiteout deletes its path and all
below it, an opaque directory hides what lower layers have below it, an entry at a
file's own path replaces it, and a non-directory entry at a directory above a file
replaces that file.
"""

from __future__ import annotations

import posixpath
from array import array
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyarch.checks import filesystem
from polyarch.checks.elf import ElfHeader
from polyarch.checks.filesystem import merge
from polyarch.checks.layers import LayerScan, path_hash
from polyarch.checks.secrets import SecretHit

#: A small tree, so that layers often touch the same paths and their parents.
#: Siblings that share a prefix with a path (/ab beside /a) catch a rule that compares
#: strings instead of path components.
PATHS = ("/a", "/a/b", "/a/b/c", "/a/b/d", "/a/e", "/f", "/f/g", "/f/g/h", "/i", "/a/b/c/j",
         "/ab", "/a/bc", "/ab/c", "/f/gh")
ELF = ElfHeader(2, True, 2, 62)


@dataclass
class Layer:
    elf: list[str]
    secret: list[str]
    plain: list[str]  # other non-directory entries (regular files that are not kept)
    symlinks: list[str]
    dirs: list[str]
    whiteouts: list[str]
    opaque: list[str]
    scripts: list[str] = field(default_factory=list)
    #: Hard links: path -> the path they link to (kept when that one is).
    links: dict[str, str] = field(default_factory=dict)

    def scan(self, digest: str) -> LayerScan:
        others = sorted({path_hash(p) for p in self.elf + self.secret + self.plain
                         + self.symlinks + self.scripts + list(self.links)})
        return LayerScan(
            digest=digest,
            elf={p: ELF for p in self.elf},
            secrets={p: [SecretHit("token", "line 1")] for p in self.secret},
            symlinks={p: "/elsewhere" for p in self.symlinks},
            scripts={p: "/bin/sh" for p in self.scripts},
            links=dict(self.links),
            whiteouts=list(self.whiteouts), opaque=list(self.opaque),
            dirs=array("Q", sorted({path_hash(p) for p in self.dirs})),
            others=array("Q", others))


def _above(p: str) -> list[str]:
    out = []
    d = posixpath.dirname(p)
    while d not in ("/", ""):
        out.append(d)
        d = posixpath.dirname(d)
    return out


def model(layers: list[Layer]) -> tuple[dict[str, str], list[tuple[str, str, str, str]]]:
    """Final kept files (path -> layer) and shipped secrets (path, layer, by, how)."""
    final: dict[str, tuple[str, bool]] = {}  # path -> (layer, holds a secret)
    shipped = []
    for i, lay in enumerate(layers):
        digest = f"sha256:{i}"
        non_dirs = set(lay.elf + lay.secret + lay.plain + lay.symlinks + lay.scripts
                       + list(lay.links))
        for p in list(final):
            under = [w for w in lay.whiteouts + lay.opaque if p.startswith(w.rstrip("/") + "/")]
            if p in lay.whiteouts or under or "/" in lay.opaque:
                how = "deleted"
            elif p in non_dirs or p in lay.dirs or any(d in non_dirs for d in _above(p)):
                how = "replaced"
            else:
                continue
            layer, secret = final.pop(p)
            if secret:
                shipped.append((p, layer, digest, how))
        # This layer's own files, in the order merge() takes them: ELF files, files
        # with credentials, scripts (one of this layer keeps its credentials), links.
        mine: dict[str, bool] = {}
        for p in lay.elf:
            mine[p] = False
        for p in lay.secret:
            mine[p] = True
        for p in lay.scripts:
            mine[p] = mine.get(p, False)
        for p in lay.symlinks:
            mine[p] = False
        final.update({p: (digest, secret) for p, secret in mine.items()})
        for p, target in lay.links.items():  # a hard link: a copy of what it names
            if target in final:
                final[p] = (digest, final[target][1])
    return {p: d for p, (d, _s) in sorted(final.items())}, shipped


paths = st.lists(st.sampled_from(PATHS), max_size=4, unique=True)
layers = st.lists(st.builds(Layer, elf=paths, secret=paths, plain=paths, symlinks=paths,
                            dirs=paths, whiteouts=paths,
                            opaque=st.lists(st.sampled_from(("/", *PATHS)), max_size=1),
                            scripts=paths,
                            links=st.dictionaries(st.sampled_from(PATHS),
                                                  st.sampled_from(PATHS), max_size=2)),
                  min_size=1, max_size=5)


def _check(stack: list[Layer]) -> None:
    fs = merge([lay.scan(f"sha256:{i}") for i, lay in enumerate(stack)])
    want_final, want_shipped = model(stack)
    assert {p: f.layer for p, f in fs.files.items()} == want_final
    assert sorted((s.path, s.layer, s.removed_by, s.how) for s in fs.shipped) \
        == sorted(want_shipped)


@settings(max_examples=400, deadline=None)
@given(layers)
def test_merge_agrees_with_the_rules_applied_to_paths(stack: list[Layer]) -> None:
    # Both ways of finding what a layer replaces: binary searches in its sorted hashes
    # (ratio 0) and set intersections (a ratio no layer reaches).
    for ratio in (0, 10**9):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(filesystem, "LOOKUP_RATIO", ratio)
            _check(stack)


@settings(max_examples=100, deadline=None)
@given(layers)
def test_merge_agrees_while_its_hash_memo_is_emptied(stack: list[Layer]) -> None:
    # The memo of path hashes is cleared when full (here after every few paths).
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filesystem, "_HASHES_MAX", 3)
        _check(stack)


def test_a_symlink_over_a_directory_removes_the_files_below_it() -> None:
    # usrmerge done late: /lib/x86_64-linux-gnu/libc.so.6 shipped first, then /lib
    # becomes a link to usr/lib; the file is gone from the final filesystem.
    lower = Layer(elf=["/a/b/c"], secret=["/a/b/d"], plain=[], symlinks=[], dirs=["/a", "/a/b"],
                  whiteouts=[], opaque=[])
    upper = Layer(elf=["/f"], secret=[], plain=[], symlinks=["/a"], dirs=[], whiteouts=[],
                  opaque=[])
    fs = merge([lower.scan("sha256:0"), upper.scan("sha256:1")])
    assert sorted(fs.files) == ["/a", "/f"]
    assert [(s.path, s.how) for s in fs.shipped] == [("/a/b/d", "replaced")]
