"""Judge one platform's final filesystem: binaries (with platform tags) and secrets.

A binary whose path names a platform (:mod:`polyarch.checks.tagged`) is judged against
that platform: tagged for this one, it is the file the runtime loads, so a wrong
machine is an error; tagged for another, it is inert here (a note), and a warning when
its content does not match its own tag. Untagged binaries must fit the image's
platform. ``--allow`` globs turn a warning or error about a path into a note.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Sequence

from polyarch.checks.elf import ElfHeader, fits, judge, variant_note
from polyarch.checks.filesystem import Filesystem, FinalFile
from polyarch.checks.report import Finding, PlatformResult
from polyarch.checks.tagged import ARCH_WORDS, Tag, tag_of
from polyarch.platforms import Platform

#: Operating systems whose binaries are ELF files (a tag of another one naming an ELF
#: file is itself a packaging mistake).
_ELF_OSES = frozenset({"linux", "android", "freebsd", "openbsd", "netbsd", "sunos"})
#: Inert binaries named in the summary note (all of them are in ``--json``).
_EXAMPLES = 3
_WHEEL_ARCH = re.compile(r"^(?:many|musl)?linux(?:_\d+_\d+|\d+)?_([a-z0-9_]+)$")


def allowed(path: str, allow: Sequence[str]) -> str | None:
    for glob in allow:
        g = glob if glob.startswith("/") else "/" + glob
        if fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(path, g.rstrip("/") + "/*"):
            return glob
    return None


def _wheel_tag(path: str, fs: Filesystem) -> Tag | None:
    """The tag of a file in a wheel's ``NAME.libs/`` directory, from the ``Tag:`` lines
    of the ``NAME-VERSION.dist-info/WHEEL`` next to it."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if not part.endswith(".libs"):
            continue
        site = "/".join(parts[:i])
        name = part[:-5].lower().replace("-", "_")
        for d, tags in fs.wheels.items():
            if posixpath.dirname(d) != site:
                continue
            dist = posixpath.basename(d).split("-", 1)[0].lower().replace("-", "_")
            if dist != name:
                continue
            for t in tags:
                m = _WHEEL_ARCH.match(t.rsplit("-", 1)[-1])
                if m and m.group(1) in ARCH_WORDS:
                    libc = "musl" if t.rsplit("-", 1)[-1].startswith("musl") else "glibc"
                    return Tag("linux", ARCH_WORDS[m.group(1)], libc,
                               t.rsplit("-", 1)[-1], "wheel-libs")
    return None


def _own(tag: Tag, plat: Platform, libcs: frozenset[str]) -> bool:
    """Whether the runtime on ``plat`` would load a binary carrying ``tag``."""
    if tag.os != "linux" or tag.architecture != plat.architecture:
        return False
    # A musl build on a glibc-only image (or the reverse) is not what gets loaded; an
    # image whose C library is unknown (static, scratch) gets the strict reading.
    return tag.libc is None or not libcs or tag.libc in libcs


def _content_note(f: FinalFile, elf: ElfHeader, tag: Tag) -> str | None:
    """What is wrong with a binary whose content does not match its own tag."""
    if tag.os not in _ELF_OSES:
        return f"{elf.describe()} under a {tag.os} tag ({tag.text})"
    if tag.architecture is None:
        return None
    ok = fits(elf, Platform("linux", tag.architecture))
    if ok is False:
        return f"tagged {tag.text} ({tag.os}/{tag.architecture}) but is {elf.describe()}"
    return None


def binaries(res: PlatformResult, fs: Filesystem, plat: Platform | None,
             allow: Sequence[str]) -> None:
    res.ran.add("binaries")
    if plat is None:
        res.findings.append(Finding(
            "binaries", "warning", f"{res.platform} is not a platform polyarch knows:"
                                   " binaries not checked"))
        return
    note = variant_note(plat)
    if note:
        res.findings.append(Finding("binaries", "info", note))
    for f in fs.files.values():
        elf = f.elf
        if elf is None:
            continue
        res.files_checked += 1
        tag = tag_of(f.path) or (_wheel_tag(f.path, fs) if ".libs/" in f.path else None)
        if tag is not None and not _own(tag, plat, fs.libcs):
            res.inert.append(f.path)
            problem = _content_note(f, elf, tag)
            if problem:
                _add(res, allow, Finding(
                    "binaries", "warning", f"{problem}: inert on {plat}, but a packaging"
                                           " mistake upstream", f.path, f.layer,
                    "tag-mismatch"))
            continue
        verdict = judge(elf, plat)
        if verdict is None:
            continue
        msg = verdict.message
        if tag is not None:
            msg += f" (tagged {tag.text}: the file the runtime loads on {plat})"
        _add(res, allow, Finding("binaries", verdict.severity, msg, f.path, f.layer,
                                 "wrong-machine"))
    if res.inert:
        n = len(res.inert)
        shown = ", ".join(res.inert[:_EXAMPLES]) + (", ..." if n > _EXAMPLES else "")
        what = f"{n} binaries" if n != 1 else "1 binary"
        res.findings.append(Finding(
            "binaries", "info", f"{what} tagged for other platforms by path, inert on"
                                f" {plat}: {shown}", kind="inert"))


def _add(res: PlatformResult, allow: Sequence[str], f: Finding) -> None:
    glob = allowed(f.path, allow) if f.path else None
    if glob and f.severity != "info":
        f = Finding(f.check, "info", f"{f.message} (allowed by {glob})", f.path, f.layer, f.kind)
    res.findings.append(f)


def secrets(res: PlatformResult, fs: Filesystem, allow: Sequence[str]) -> None:
    res.ran.add("secrets")
    for f in fs.files.values():
        for hit in f.secrets:
            _add(res, allow, Finding("secrets", hit.severity, hit.describe(), f.path, f.layer,
                                     "credential"))
    for s in fs.shipped:
        verb = "deleted" if s.how == "deleted" else "overwritten"
        for hit in s.secrets:
            _add(res, allow, Finding(
                "secrets", hit.severity,
                f"deleted-but-shipped: {hit.describe()}: {verb} by layer {s.removed_by[7:19]}"
                f" but still in this layer's blob, which anyone who can pull the image can"
                f" read", s.path, s.layer, "deleted-but-shipped"))
