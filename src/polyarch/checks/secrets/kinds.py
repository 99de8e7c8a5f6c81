"""What a file is, from its first bytes and its path: formats that hold no readable
token, ELF, UTF-16 text; installed package trees, install records, documentation."""

from __future__ import annotations

import codecs
import re

from polyarch.checks.secrets import files

#: Bytes read before deciding what a file is (ELF, UTF-16, text).
SNIFF = 32
_UTF16_BOMS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}


# Magic numbers of formats that cannot hold a readable token: compiled code, images,
# fonts, compressed data. Archives (zip, jar, wheel) are compressed: their raw bytes
# show nothing either, and their members are not opened.
_SKIP_MAGIC = (
    b"\x7fELF",  # ELF executables and libraries
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a",  # images
    b"\x00\x00\x01\x00",  # .ico
    b"wOFF", b"wOF2", b"\x00\x01\x00\x00\x00", b"OTTO",  # fonts
    b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18",  # gzip zstd xz lz4
    b"PK\x03\x04", b"PK\x05\x06",  # zip (jar, wheel, apk, docx)
    b"\x00asm",  # WebAssembly
    b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",  # Java classes / Mach-O
    b"MZ",  # Windows executables
    b"%PDF-",
)


def is_elf(head: bytes) -> bool:
    return head.startswith(b"\x7fELF")


def utf16(head: bytes) -> str | None:
    """The UTF-16 codec of text starting with ``head`` (a byte-order mark, or ASCII
    with a zero byte after or before every character), else None."""
    for bom, codec in _UTF16_BOMS.items():
        if head.startswith(bom):
            return codec
    pairs = head[:32]
    if len(pairs) >= 8 and not len(pairs) % 2:
        even, odd = pairs[0::2], pairs[1::2]
        if not odd.strip(b"\0") and even.isascii() and not even.count(0):
            return "utf-16-le"
        if not even.strip(b"\0") and odd.isascii() and not odd.count(0):
            return "utf-16-be"
    return None


def skip_by_magic(head: bytes) -> bool:
    """True for a file whose first bytes name a binary format that holds no readable
    token (ELF, images, fonts, compressed data, zip archives): callers skip the content
    scan for it. Text, JSON, SQLite databases, keystores and unknown formats are read."""
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return True
    if head.startswith(b"BZh") and head[3:4] in b"123456789" and head[3:4]:  # bzip2
        return True
    return head.startswith(_SKIP_MAGIC)


# Trees of installed third-party packages and toolchains: content_wanted's narrower
# selection (benchmarks/secrets_speed.py's "scan" mode). Verification reads every file;
# findings inside package trees are warnings (vendored).
_PACKAGE_TREES = re.compile(
    r"/(?:node_modules|site-packages|dist-packages|bower_components)/"
    r"|^/usr/(?:share/(?:doc|man|info|locale|i18n|zoneinfo)|local/go|lib/go-[^/]+)/"
)


# Files a package manager writes when it installs: they record where a package came
# from, with the credentials of the URL it was fetched from when there were any
# (npm's "_resolved", pip's direct_url.json, a git dependency's .git/config).
_INSTALL_RECORDS = frozenset({
    "package.json", ".package-lock.json", "package-lock.json", "yarn.lock", ".yarnrc",
    ".yarnrc.yml", "direct_url.json", "pip.conf",
})


def _install_record(path: str) -> bool:
    return path.rpartition("/")[2] in _INSTALL_RECORDS or "/.git/" in path


def content_wanted(path: str) -> bool:
    """Whether a file's content should be scanned: not the code and data inside an
    installed package tree (node_modules, site-packages, ..., Go toolchains,
    /usr/share/doc); files with credential names there are scanned, and so are the
    install records (package.json, direct_url.json, .git/config, lockfiles)."""
    return (not _PACKAGE_TREES.search(path) or files.is_candidate(path)
            or _install_record(path))


def vendored(path: str) -> bool:
    """Inside a third-party package tree or a test/example directory (findings there are
    warnings), except install records, which hold real URLs."""
    return bool(files.VENDORED.search(path)) and not _install_record(path)


#: Documentation, tests and licences: a URL password there is an example (dotenv's
#: README, socks-proxy-agent's README, zod's tests, Debian's copyright files).
DOC_FILE = re.compile(
    r"(?i)/(?:readme|changelog|changes|history|news|licen[cs]e|copying|copyright|notice"
    r"|authors|contributing|security)(?:[._-][^/]*)?$"
    r"|\.(?:md|markdown|mdx|rst|adoc|txt\.gz|d\.[cm]?ts)$|\.(?:test|spec)\.[cm]?[jt]sx?$|_test\.go$"
    r"|/(?:docs?|man|info|__tests__|tests?|testdata|test-data|fixtures?|specs?|examples?"
    r"|samples?)/")
