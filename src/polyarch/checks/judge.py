"""Judge one platform's final filesystem: binaries (with platform tags) and secrets.

A binary is judged against the image's platform unless BOTH hold: its path names a
platform in a layout whose loader picks the file by that tag
(:mod:`polyarch.checks.tagged`), and nothing reaches it another way (ENTRYPOINT, CMD,
PATH, a symlink, a ``#!`` line: :mod:`polyarch.checks.reach`). Then it is judged
against the platform its path names: tagged for this one, it is the file the loader
takes, so a wrong machine is an error; tagged for another, it is inert here (a note),
a warning when its content does not match its own tag, and an error when the loader
needs this platform's own entry next to it and there is none. A binary in a test
data directory of a package tree is a note when its machine is wrong, unless reached.
``--allow`` globs turn a warning or error about a path into a note.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from polyarch.checks.elf import ElfHeader, fits, judge, variant_note
from polyarch.checks.filesystem import Filesystem, FinalFile
from polyarch.checks.reach import Launch, Reach
from polyarch.checks.report import Finding, PlatformResult
from polyarch.checks.tagged import ARCH_WORDS, Tag, tag_of, test_data_of
from polyarch.platforms import Platform

#: Operating systems whose binaries are ELF files (a tag of another one naming an ELF
#: file is itself a packaging mistake).
_ELF_OSES = frozenset({"linux", "android", "freebsd", "openbsd", "netbsd", "sunos"})
#: Inert binaries named in the summary note (all of them are in ``--json``).
_EXAMPLES = 3
_WHEEL_ARCH = re.compile(r"^(?:many|musl)?linux(?:_\d+_\d+|\d+)?_([a-z0-9_]+)$")
#: What fails when a layout's own-platform entry is missing.
_MISSING = {
    "npm-platform-package": "the package cannot load its native part on {plat} (npm"
                            " installed another platform's optional dependency: run"
                            " npm ci on {plat}, or npm install --os=linux --cpu={cpu})",
    "python-extension": "the module cannot be imported on {plat} (a wheel for another"
                        " platform was installed: pip install on {plat}, or pip download"
                        " --platform for it)",
    "go-tool": "the go command on {plat} looks for its tools in pkg/tool/linux_{cpu}/",
}
_NODE_CPU = {"amd64": "x64", "386": "ia32"}


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
             allow: Sequence[str], config: dict[str, Any] | None = None) -> None:
    """Judge every ELF file of ``fs`` on ``plat``; ``config`` (the image config) says
    what runs (ENTRYPOINT, CMD, PATH)."""
    res.ran.add("binaries")
    if plat is None:
        res.findings.append(Finding(
            "binaries", "warning", f"{res.platform} is not a platform polyarch knows:"
                                   " binaries not checked"))
        return
    note = variant_note(plat)
    if note:
        res.findings.append(Finding("binaries", "info", note))
    reach = Reach(fs, Launch.of(config))
    own_slots: set[str] = set()
    foreign: dict[str, tuple[FinalFile, ElfHeader, Tag]] = {}
    test_data: list[str] = []
    for f in fs.files.values():
        elf = f.elf
        if elf is None:
            continue
        res.files_checked += 1
        tag = tag_of(f.path) or (_wheel_tag(f.path, fs) if ".libs/" in f.path else None)
        why = reach.why(f.path)
        own = tag is not None and _own(tag, plat, fs.libcs)
        if tag is not None and tag.slot is not None and own:
            own_slots.add(tag.slot)
        if tag is not None and why is None and not own:
            res.inert.append(f.path)
            if tag.slot is not None:
                foreign.setdefault(tag.slot, (f, elf, tag))
            problem = _content_note(f, elf, tag)
            if problem:
                _add(res, allow, Finding(
                    "binaries", "warning", f"{problem}: inert on {plat}, but a packaging"
                                           " mistake upstream", f.path, f.layer,
                    "tag-mismatch"))
            continue
        if tag is None and f.path.endswith(".so"):
            own_slots.add(_python_slot(f.path))
        verdict = judge(elf, plat)
        if verdict is None:
            continue
        if why is None and tag is None and test_data_of(f.path) is not None:
            test_data.append(f.path)
            continue
        msg = verdict.message
        if why is not None:
            msg += f" (reached: {why}" + (f"; its path names {tag.text}, but that does not"
                                          f" keep it from running" if tag else "") + ")"
        elif tag is not None:
            msg += f" (tagged {tag.text}: the file the runtime loads on {plat})"
        _add(res, allow, Finding("binaries", verdict.severity, msg, f.path, f.layer,
                                 "wrong-machine"))
    # Missing entries grouped: a Python package's extension modules are one finding
    # (about the package directory), any other slot one finding about its first file.
    missing: dict[str, list[tuple[FinalFile, ElfHeader, Tag]]] = {}
    for slot, (f, elf, tag) in foreign.items():
        if slot not in own_slots:
            missing.setdefault(_package_of(f.path) if tag.rule == "python-extension"
                               else f.path, []).append((f, elf, tag))
    for where, group in missing.items():
        f, elf, tag = group[0]
        cpu = plat.architecture
        what = _MISSING.get(tag.rule, "").format(
            plat=plat, cpu=_NODE_CPU.get(cpu, cpu) if tag.rule.startswith("npm") else cpu)
        if len(group) > 1:
            head = (f"{len(group)} extension modules here are built for {tag.text} only"
                    f" ({elf.describe()}: {f.path.rsplit('/', 1)[-1]}, ...), and their"
                    f" {plat} builds are missing")
        else:
            head = (f"only {tag.text} is here ({elf.describe()}), and the {plat} entry its"
                    f" loader takes is missing")
        _add(res, allow, Finding("binaries", "error", f"{head}: {what}", where, f.layer,
                                 "missing-own-platform"))
    if res.inert:
        n = len(res.inert)
        shown = ", ".join(res.inert[:_EXAMPLES]) + (", ..." if n > _EXAMPLES else "")
        what = f"{n} binaries" if n != 1 else "1 binary"
        res.findings.append(Finding(
            "binaries", "info", f"{what} tagged for other platforms by path, inert on"
                                f" {plat}: {shown}", kind="inert"))
    if test_data:
        n = len(test_data)
        shown = ", ".join(test_data[:_EXAMPLES]) + (", ..." if n > _EXAMPLES else "")
        what = f"{n} binaries" if n != 1 else "1 binary"
        res.findings.append(Finding(
            "binaries", "info", f"{what} of another machine in test data directories"
                                f" (read by tests, never run on {plat}): {shown}",
            kind="test-data"))
        res.test_data.extend(test_data)


def _package_of(path: str) -> str:
    """The top-level Python package directory ``path`` belongs to (``.../site-packages/
    numpy``), else its directory."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):  # a top-level module: the file itself
        if part in ("site-packages", "dist-packages"):
            return "/".join(parts[:i + 2])
    return posixpath.dirname(path)


def _python_slot(path: str) -> str:
    """The slot an untagged extension module (``NAME.abi3.so``, ``NAME.so``) fills."""
    d, base = posixpath.split(path.lower())
    return f"{d}/{base.split('.', 1)[0]}.*"


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
