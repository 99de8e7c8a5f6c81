"""Platform tags in paths: the table of conventions that name a platform in a file's path.

Packages that ship prebuilt binaries for every platform inside one package put each
binary under a path that names its platform, and load the one matching the host at run
time (``prebuilds/linux-arm64/keytar.node``, ``@esbuild/linux-x64/bin/esbuild``,
``_cffi_backend.cpython-312-aarch64-linux-gnu.so``). :func:`tag_of` reads that platform
from a path; verify judges such a binary against the platform its path names, not the
image's (docs/verify.md).

The conventions are data: :data:`OS_WORDS`, :data:`ARCH_WORDS`, :data:`LIBC_WORDS` and
:data:`RULES` (each rule with real paths it matches, from the packages named). Nothing
here imports polyarch modules.
"""

from __future__ import annotations

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
_L, _R = r"(?<![a-z0-9])", r"(?![a-z0-9])"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    #: Real paths this rule reads a platform from (package or project they come from).
    examples: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule(
        "os-arch",
        # <os>[-<libc>]-<arch>[-<libc>] in a directory or file name: node-gyp-build,
        # prebuildify, bare and keytar prebuilds/, bin/<os>-<arch>/, node-pre-gyp
        # lib/binding/napi-v6-linux-glibc-x64/, per-platform npm packages (@esbuild/,
        # @img/sharp-, @rollup/rollup-, @swc/core-, lightningcss-, @parcel/watcher-),
        # napi-rs file names (swc.linux-arm64-gnu.node), Go's pkg/tool/linux_amd64/.
        re.compile(rf"{_L}(?P<os>{_OS})[-_](?:(?P<libc1>{_LIBC})[-_])?(?P<arch>{_ARCH})"
                   rf"(?:[-_.](?P<libc>{_LIBC}))?{_R}"),
        ("@github/keytar@7.10.6: prebuilds/linuxmusl-arm64/keytar.node",
         "bare-fs@4.8.5: prebuilds/android-arm64/bare-fs.bare",
         "tree-sitter-bash@0.25.1: prebuilds/linux-x64/tree-sitter-bash.node",
         "@img/sharp-linux-arm64@0.35.5: node_modules/@img/sharp-linux-arm64/lib/"
         "sharp-linux-arm64-0.35.5.node",
         "@esbuild/linux-arm64@0.28.2: node_modules/@esbuild/linux-arm64/bin/esbuild",
         "@rollup/rollup-linux-x64-musl@4.68.8: rollup.linux-x64-musl.node",
         "@swc/core-linux-arm64-gnu@1.16.22: swc.linux-arm64-gnu.node",
         "lightningcss-linux-arm64-gnu@1.33.0: lightningcss.linux-arm64-gnu.node",
         "@parcel/watcher-linux-arm64-glibc@2.6.0: node_modules/@parcel/"
         "watcher-linux-arm64-glibc/watcher.node",
         "go: /usr/local/go/pkg/tool/linux_arm64/compile"),
    ),
    Rule(
        "triple",
        # GNU/Rust target triples <arch>-[<vendor>-]<os>[-<libc>]: Python extension
        # modules (*.cpython-312-aarch64-linux-gnu.so), Debian multiarch directories
        # (/usr/lib/aarch64-linux-gnu/), cross toolchains, Rust target/ and rustlib/.
        re.compile(rf"{_L}(?P<arch>{_ARCH})-(?:(?:unknown|pc|apple|none)-)?(?P<os>{_OS})"
                   rf"(?:-(?P<libc>{_LIBC}))?{_R}"),
        ("numpy@2.1.3: numpy/_core/_multiarray_umath.cpython-312-aarch64-linux-gnu.so",
         "cffi@2.0.0 (musllinux wheel): _cffi_backend.cpython-312-x86_64-linux-musl.so",
         "debian: /usr/lib/aarch64-linux-gnu/libc.so.6",
         "rustup: lib/rustlib/x86_64-unknown-linux-musl/lib/self-contained/crt1.o"),
    ),
    Rule(
        "jdk-lib-arch",
        # JDK 8 and other Java/Go layouts: jre/lib/<arch>/ (lib/amd64/server/libjvm.so).
        re.compile(r"(?:^|/)lib/(?P<arch>amd64|aarch64|arm64|arm|i386|ppc64le|s390x"
                   r"|riscv64)/"),
        ("openjdk-8: /usr/lib/jvm/java-8-openjdk-arm64/jre/lib/aarch64/server/libjvm.so",),
    ),
)


@dataclass(frozen=True)
class Tag:
    """The platform a path names."""

    os: str
    #: OCI architecture, or ``None`` for one polyarch has no ELF facts about.
    architecture: str | None
    #: ``glibc``, ``musl`` or ``None`` (the path does not say).
    libc: str | None
    #: The words as written in the path (``linuxmusl-arm``), for messages.
    text: str
    rule: str

    def __str__(self) -> str:
        return self.text


def tag_of(path: str) -> Tag | None:
    """The platform named by ``path`` (the deepest tag in it), or ``None``."""
    low = path.lower()
    best: tuple[int, Tag] | None = None
    for rule in RULES:
        for m in rule.pattern.finditer(low):
            if best is not None and m.start() <= best[0]:
                continue
            groups = m.groupdict()
            os_, implied = OS_WORDS.get(groups.get("os") or "linux", ("linux", None))
            libc = implied
            for key in ("libc1", "libc"):
                word = groups.get(key)
                if word and LIBC_WORDS.get(word):
                    libc = LIBC_WORDS[word]
            tag = Tag(os_, ARCH_WORDS.get(groups["arch"]), libc, path[m.start():m.end()],
                      rule.name)
            best = (m.start(), tag)
    return best[1] if best else None


def libc_of_loader(basename: str) -> str | None:
    """The libc a dynamic loader or libc file belongs to, from its name."""
    if basename.startswith("ld-musl-"):
        return "musl"
    if basename.startswith(("ld-linux", "libc.so.6")) or basename == "ld64.so.2" \
            or basename.startswith("ld64.so.1"):
        return "glibc"
    return None
