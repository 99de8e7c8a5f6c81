"""Platform tags in paths, read only where a loader picks a file by that tag.

Packages that ship prebuilt binaries for every platform put each one under a path that
names its platform, and their loader takes the one matching the host at run time
(``prebuilds/linux-arm64/keytar.node``, ``@esbuild/linux-x64/bin/esbuild``,
``_cffi_backend.cpython-312-aarch64-linux-gnu.so``). Such a binary is judged against the
platform its path names, not the image's (docs/verify.md). A platform word anywhere
else says nothing: ``/opt/node-v20.11.0-linux-x64/bin/node`` is whatever runs when
``node`` is called, so it is judged as the image's.

:data:`LAYOUTS` is the table: each layout names the loader rule it mirrors and real
packages it reads; :func:`tag_of` reads the platform a path names in one of them;
:func:`test_data_of` recognises test data directories inside a package tree. Whether a
tagged binary is reached another way (PATH, ENTRYPOINT, a symlink, a ``#!`` line) is
:mod:`polyarch.checks.reach`'s question. Nothing here imports polyarch modules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: Operating-system words -> (os, libc implied by the word).
OS_WORDS: dict[str, tuple[str, str | None]] = {
    "linux": ("linux", None),
    "linuxmusl": ("linux", "musl"),  # keytar, sharp: prebuilds/linuxmusl-x64
    "android": ("android", None),  # bare: prebuilds/android-arm64
    "darwin": ("darwin", None),
    "macos": ("darwin", None),
    "apple": ("darwin", None),
    "ios": ("ios", None),
    "win32": ("windows", None),
    "windows": ("windows", None),
    "freebsd": ("freebsd", None),
    "openbsd": ("openbsd", None),
    "netbsd": ("netbsd", None),
    "sunos": ("sunos", None),
    "aix": ("aix", None),
}

#: Architecture words of Node (process.arch), Go (GOARCH), Rust/GNU triples, Python
#: platform tags, the JDK and Docker -> OCI architecture (``None``: one polyarch does
#: not build, so content cannot be compared).
ARCH_WORDS: dict[str, str | None] = {
    "x64": "amd64", "amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64",
    "arm64": "arm64", "aarch64": "arm64", "arm64v8": "arm64",
    "arm": "arm", "armv6": "arm", "armv6l": "arm", "armv7": "arm", "armv7l": "arm",
    "armhf": "arm", "arm32v7": "arm", "arm32v6": "arm",
    "ia32": "386", "x86": "386", "386": "386", "i386": "386", "i586": "386", "i686": "386",
    "ppc64": "ppc64le", "ppc64le": "ppc64le", "powerpc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64", "riscv64gc": "riscv64",
    "loong64": None, "loongarch64": None, "mips64el": None, "mipsel": None,
}

#: Libc / ABI words after the architecture -> libc (``None``: says nothing about it).
LIBC_WORDS: dict[str, str | None] = {
    "gnu": "glibc", "glibc": "glibc", "gnueabihf": "glibc", "gnueabi": "glibc",
    "gnux32": "glibc", "musl": "musl", "musleabihf": "musl", "musleabi": "musl",
    "msvc": None, "eabi": None, "android": None, "simulator": None,
}


def _alt(words: object) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))  # type: ignore[call-overload]


_OS = _alt(OS_WORDS)
_ARCH = _alt(ARCH_WORDS)
_LIBC = _alt(LIBC_WORDS)
#: ``<os>[-<libc>]-<arch>[-<libc>]`` as Node (process.platform-process.arch) and Go
#: (GOOS_GOARCH) spell a platform.
_OS_ARCH = (rf"(?P<os>{_OS})[-_](?:(?P<libc1>{_LIBC})[-_])?(?P<arch>{_ARCH})"
            rf"(?:[-_.](?P<libc>{_LIBC}))?")
#: GNU/Rust target triples ``<arch>-[<vendor>-]<os>[-<libc>]``.
_TRIPLE = (rf"(?P<arch>{_ARCH})-(?:(?:unknown|pc|apple|none)-)?(?P<os>{_OS})"
           rf"(?:-(?P<libc>{_LIBC}))?")
#: A package directory under node_modules (scoped or not).
_NM = r"/node_modules/"


@dataclass(frozen=True)
class Layout:
    name: str
    #: Matches a lower-cased absolute path; group ``tag`` is the text naming the platform,
    #: groups ``os``, ``arch``, ``libc``/``libc1`` its words, ``slot`` (optional) what the
    #: path is without its tag (for :attr:`needs_own`).
    pattern: re.Pattern[str]
    #: The loader rule this layout mirrors.
    loader: str
    #: Real packages and the paths this layout reads a platform from.
    examples: tuple[str, ...]
    #: The loader fails when the host's own entry is missing next to another platform's
    #: (the package cannot start on this platform): an error, not an inert file.
    needs_own: bool = False
    #: What the file name of every path it reads ends with, for a layout that reads the
    #: file name (its pattern ends with it); a layout of directories has none.
    suffix: str = ""


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "npm-prebuilds",
        re.compile(rf"{_NM}(?:[^/]+/)*?prebuilds/(?P<tag>{_OS_ARCH})(?:[-_][a-z0-9]+)*/"),
        "node-gyp-build (prebuildify) and bare's loader read prebuilds/<process.platform>-"
        "<process.arch>/ of the package (musl builds: linuxmusl- or *.musl.node), after"
        " the package's own build/Release/ when it was compiled at install time",
        ("@github/keytar@7.10.6: node_modules/@github/keytar/prebuilds/linuxmusl-arm64/"
         "keytar.node",
         "bare-fs@4.8.5: node_modules/bare-fs/prebuilds/android-arm64/bare-fs.bare",
         "tree-sitter-bash@0.25.1: node_modules/tree-sitter-bash/prebuilds/linux-x64/"
         "tree-sitter-bash.node"),
    ),
    Layout(
        "npm-platform-package",
        re.compile(rf"(?P<slot>{_NM}(?:@[^/]+/)?(?:[^/]*?-)?)(?P<tag>{_OS_ARCH})/"),
        "the package require()s <name>-${process.platform}-${process.arch}[-<libc>] (its"
        " optionalDependencies); npm installs only the one whose package.json os/cpu/libc"
        " match the machine running npm, so the image's own one must be there",
        ("@esbuild/linux-arm64@0.28.2: node_modules/@esbuild/linux-arm64/bin/esbuild",
         "@img/sharp-linux-arm64@0.35.5: node_modules/@img/sharp-linux-arm64/lib/"
         "sharp-linux-arm64-0.35.5.node",
         "@img/sharp-libvips-linux-x64@1.3.4: node_modules/@img/sharp-libvips-linux-x64/lib/"
         "libvips-cpp.so.8.18.7",
         "@rollup/rollup-linux-x64-musl@4.68.8: node_modules/@rollup/rollup-linux-x64-musl/"
         "rollup.linux-x64-musl.node",
         "@swc/core-linux-arm64-gnu@1.16.22: node_modules/@swc/core-linux-arm64-gnu/"
         "swc.linux-arm64-gnu.node",
         "@parcel/watcher-linux-arm64-glibc@2.6.0: node_modules/@parcel/"
         "watcher-linux-arm64-glibc/watcher.node"),
        needs_own=True,
    ),
    Layout(
        "napi-rs-file",
        re.compile(rf"/[^/]+\.(?P<tag>{_OS_ARCH})\.node$"),
        "napi-rs's generated index.js loads ./<name>.<platform>-<arch>[-<abi>].node, then"
        " the <name>-<platform>-<arch> package",
        ("lightningcss-linux-arm64-gnu@1.33.0: node_modules/lightningcss-linux-arm64-gnu/"
         "lightningcss.linux-arm64-gnu.node",),
        suffix=".node",
    ),
    Layout(
        "node-pre-gyp",
        re.compile(rf"{_NM}(?:[^/]+/)*?lib/binding/(?:[^/]+/)*?[^/]*?(?<![a-z0-9])"
                   rf"(?P<tag>{_OS_ARCH})(?![a-z0-9])[^/]*/"),
        "node-pre-gyp's find() resolves lib/binding/{node_abi|napi}-{platform}-[{libc}-]"
        "{arch}/ with the running node's process.platform and process.arch",
        ("sqlite3@5.1.7: node_modules/sqlite3/lib/binding/napi-v6-linux-glibc-x64/"
         "node_sqlite3.node",),
    ),
    Layout(
        "python-extension",
        re.compile(rf"/(?P<slot>[^/.]+)\.(?:cpython-\d+[a-z]*|pypy\d+-pp\d+)-"
                   rf"(?P<tag>{_TRIPLE})\.so$"),
        "importlib imports an extension module only under the interpreter's own"
        " importlib.machinery.EXTENSION_SUFFIXES (.cpython-312-aarch64-linux-gnu.so,"
        " .abi3.so, .so): another triple's file is never imported, so the module needs"
        " its own build next to it",
        ("numpy@2.1.3 (manylinux2014_aarch64 wheel): numpy/_core/"
         "_multiarray_umath.cpython-312-aarch64-linux-gnu.so",
         "cffi@2.0.0 (musllinux wheel): _cffi_backend.cpython-312-x86_64-linux-musl.so"),
        needs_own=True, suffix=".so",
    ),
    Layout(
        "go-tool",
        re.compile(rf"(?P<slot>/pkg/tool/)(?P<tag>{_OS_ARCH})/"),
        "the go command runs compile, link, asm... from $GOROOT/pkg/tool/$GOHOSTOS_"
        "$GOHOSTARCH/ and nowhere else",
        ("golang-1.19-go (Debian): /usr/lib/go-1.19/pkg/tool/linux_arm64/compile",),
        needs_own=True,
    ),
    Layout(
        "jdk-lib-arch",
        re.compile(r"/(?:jre|jdk|jvm/[^/]+)/(?:jre/)?lib/(?P<tag>(?P<arch>amd64|aarch64"
                   r"|arm64|arm|i386|ppc64le|s390x|riscv64))/"),
        "the JDK 8 launcher loads lib/<os.arch>/server/libjvm.so and the JDK's own"
        " libraries from lib/<os.arch>/",
        ("openjdk-8: /usr/lib/jvm/java-8-openjdk-arm64/jre/lib/aarch64/server/libjvm.so",),
    ),
    Layout(
        "rustlib",
        re.compile(rf"/lib/rustlib/(?P<tag>{_TRIPLE})/"),
        "rustc links from lib/rustlib/<target>/lib for the --target it compiles for; a"
        " target other than the host's is cross-compilation input, never run",
        ("rustup: lib/rustlib/x86_64-unknown-linux-musl/lib/self-contained/crt1.o",
         "libstd-rust-dev (Debian): /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib/"
         "libstd-<hash>.so"),
    ),
    Layout(
        "multiarch",
        re.compile(rf"^/(?:usr/)?(?:lib|libexec)/(?P<tag>{_TRIPLE})/"),
        "Debian multiarch: the dynamic loader searches only its own triple's directories"
        " (/etc/ld.so.conf.d/aarch64-linux-gnu.conf); another architecture's libraries"
        " there (dpkg --add-architecture) are loaded only by that architecture's programs",
        ("libc6 (Debian, arm64): /usr/lib/aarch64-linux-gnu/libc.so.6",
         "libssl3:amd64 on arm64: /usr/lib/x86_64-linux-gnu/libssl.so.3"),
    ),
    Layout(
        "cross-sysroot",
        re.compile(rf"^/usr/(?P<tag>{_TRIPLE})/lib(?:32|64)?/"),
        "a Debian cross toolchain's target sysroot (/usr/<triple>/lib), read by the cross"
        " linker and qemu-user -L, never by the host's loader (its bin/ holds the host's"
        " cross binutils: not a tag)",
        ("libc6-amd64-cross (Debian): /usr/x86_64-linux-gnu/lib/libc.so.6",),
    ),
)


@dataclass(frozen=True)
class Tag:
    """The platform a path names, in a layout whose loader picks by it."""

    os: str
    #: OCI architecture, or ``None`` for one polyarch has no ELF facts about.
    architecture: str | None
    #: ``glibc``, ``musl`` or ``None`` (the path does not say).
    libc: str | None
    #: The words as written in the path (``linuxmusl-arm``), for messages.
    text: str
    #: The :class:`Layout` (or ``wheel-libs``) it was read by.
    rule: str
    #: The path with its tag taken out: entries of one package for different platforms
    #: share it (``None``: the layout does not need its own platform's entry).
    slot: str | None = None

    def __str__(self) -> str:
        return self.text


#: Layouts whose match ends with ``/``: it lies in the path's directory, so it is read
#: once per directory (:func:`_in_dir`); the others read the file name too.
_DIR_LAYOUTS = tuple(i for i, lay in enumerate(LAYOUTS) if lay.pattern.pattern.endswith("/"))
_NAME_LAYOUTS = tuple(i for i in range(len(LAYOUTS)) if i not in _DIR_LAYOUTS)


@functools.lru_cache(maxsize=8192)
def _in_dir(directory: str) -> tuple[tuple[int, re.Match[str]], ...]:
    """Matches of the directory layouts in ``directory`` (ending with ``/``), as
    (index in :data:`LAYOUTS`, match)."""
    low = directory.lower()
    return tuple((i, m) for i in _DIR_LAYOUTS for m in LAYOUTS[i].pattern.finditer(low))


def tag_of(path: str) -> Tag | None:
    """The platform ``path`` names in a loader layout (the deepest tag), or ``None``."""
    low = path.lower()
    found = list(_in_dir(path[:path.rfind("/") + 1]))
    name_end = low[:-1] if low.endswith("\n") else low  # a pattern's $ allows one newline
    named = [(i, m) for i in _NAME_LAYOUTS if name_end.endswith(LAYOUTS[i].suffix)
             for m in LAYOUTS[i].pattern.finditer(low)]
    if named:
        found = sorted(found + named, key=lambda f: f[0])  # in table order, as below
    elif not found:
        return None
    best: tuple[int, Tag] | None = None
    slots: list[tuple[int, str | None, str]] = []  # (start, architecture, slot)
    for i, m in found:
        lay = LAYOUTS[i]
        start = m.start("tag")
        groups = m.groupdict()
        arch = ARCH_WORDS.get(groups["arch"])
        if lay.needs_own:
            slots.append((start, arch, _slot(lay.name, low, m)))
        if best is not None and start <= best[0]:
            continue
        os_, implied = OS_WORDS.get(groups.get("os") or "linux", ("linux", None))
        libc = implied
        for key in ("libc1", "libc"):
            word = groups.get(key)
            if word and LIBC_WORDS.get(word):
                libc = LIBC_WORDS[word]
        best = (start, Tag(os_, arch, libc, path[start:m.end("tag")], lay.name))
    if best is None:
        return None
    tag = best[1]
    # The slot of the deepest layout that needs its own platform's entry, when it names
    # the same platform (rollup.linux-x64-gnu.node inside @rollup/rollup-linux-x64-gnu/).
    for _start, arch, slot in sorted(slots, reverse=True):
        if arch == tag.architecture:
            return Tag(tag.os, tag.architecture, tag.libc, tag.text, tag.rule, slot)
    return tag


def _slot(name: str, low: str, m: re.Match[str]) -> str:
    """What a path is without its platform: entries of one package for different
    platforms share it."""
    if name == "npm-platform-package":
        # Any version of the family anywhere in the project: the part before the first
        # node_modules/ and the package name before its tag (pnpm and nested installs).
        return low[:low.find("/node_modules/")] + "|" + \
            m.group("slot").rsplit("/node_modules/", 1)[1]
    if name == "python-extension":
        return low[:m.start("slot")] + m.group("slot") + ".*"
    return low[:m.start("tag")]


def layout(name: str) -> Layout | None:
    return next((lay for lay in LAYOUTS if lay.name == name), None)


# -- test data -----------------------------------------------------------------------

#: Directories of files read by a package's or toolchain's own tests, never run by it.
_TEST_DIRS = r"(?:tests?|__tests__|specs?|fixtures?|test[-_]?data|test[-_]?fixtures)"
#: Where a package tree starts: a node_modules package, Python site-/dist-packages, the
#: Go module cache, Cargo's registry sources, Ruby gems.
_PACKAGE_TREE = (r"(?:/node_modules/(?:@[^/]+/)?[^/]+|/(?:site|dist)-packages/[^/]+"
                 r"|/pkg/mod/.+?@[^/]+|/\.cargo/registry/src/[^/]+/[^/]+|/gems/[^/]+)")
_TEST_DATA = re.compile(
    rf"^(?P<dir>.*?/testdata)/"  # Go: the go tool ignores directories named testdata
    rf"|^(?P<pkg>.*?{_PACKAGE_TREE}/(?:[^/]+/)*?{_TEST_DIRS})/")

#: (where, why, a real example): the rules :func:`test_data_of` applies.
TEST_DATA_RULES: tuple[tuple[str, str, str], ...] = (
    ("testdata/ anywhere",
     "go help packages: the go tool ignores directories named testdata; they hold the"
     " inputs of Go's own tests",
     "golang-1.19-src (Debian): /usr/share/go-1.19/src/debug/elf/testdata/"
     "go-relocation-test-gcc930-ranges-relocs.elf"),
    ("test/, tests/, __tests__/, spec/, fixtures/, test_data/ inside a package tree",
     "node_modules/<package>/, Python site-packages/ and dist-packages/, Go's pkg/mod/,"
     " Cargo's registry/src/, Ruby gems: files a package's test suite reads, which its"
     " code never loads",
     "numpy 1.26.4: /usr/local/lib/python3.11/site-packages/numpy/core/tests/data/"
     "umath-validation-set-exp.csv"),
)


def test_data_of(path: str) -> str | None:
    """The test data directory ``path`` lies in, or ``None``."""
    m = _TEST_DATA.match(path)
    if m is None:
        return None
    return m.group("dir") or m.group("pkg")


def libc_of_loader(basename: str) -> str | None:
    """The libc a dynamic loader or libc file belongs to, from its name."""
    if basename[:2] != "ld" and basename[:9] != "libc.so.6":
        return None
    if basename.startswith("ld-musl-"):
        return "musl"
    if basename.startswith(("ld-linux", "libc.so.6")) or basename == "ld64.so.2" \
            or basename.startswith("ld64.so.1"):
        return "glibc"
    return None
