"""Streaming content scanner: known token formats in a file of any size.

:class:`ContentScanner` is fed a file's bytes in chunks of any size and keeps at most
one block plus a fixed overlap in memory. One combined bytes regex
(:func:`formats.combined_regex`) finds every format; a match is reported once, with its
line number and a masked fingerprint, never its value.
"""

from __future__ import annotations

import posixpath
import re

from polyarch.checks.secrets import files, formats
from polyarch.checks.secrets.files import is_env_file, secret_env_key
from polyarch.checks.secrets.hits import SecretHit, fingerprint

_BY_ANCHOR = formats.anchored_regexes()
#: Regexes that scan a block themselves (anchor common in text).
_SCANNING = tuple(rx for a, rx in _BY_ANCHOR.items() if a.decode() in formats.FREQUENT_ANCHORS)
#: Rare anchors: found with bytes.find (memchr), matched only there.
_PROBING = tuple((a, rx) for a, rx in _BY_ANCHOR.items()
                 if a.decode() not in formats.FREQUENT_ANCHORS)
#: Bytes gathered before a scan (small chunks are joined first).
BLOCK = 256 << 10
#: Longest match any format can have (bounded quantifiers) plus look-behind: a match that
#: starts in the last OVERLAP bytes of a block is left for the next block.
OVERLAP = 8192
#: Context kept before the unscanned overlap: look-behinds of the formats and the
#: backwards read of a URL from its ``@``.
LOOKBACK = 512
#: More findings of one file add nothing.
MAX_HITS = 20


# Magic numbers of formats that cannot hold a readable token: compiled code, images,
# fonts, compressed data. Archives (zip, jar, wheel) are compressed: their raw bytes
# show nothing either, and their members are not opened.
_SKIP_MAGIC = (
    b"\x7fELF",  # ELF executables and libraries
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a",  # images
    b"\x00\x00\x01\x00",  # .ico
    b"wOFF", b"wOF2", b"\x00\x01\x00\x00\x00", b"OTTO",  # fonts
    b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00", b"BZh", b"\x04\x22\x4d\x18",  # gzip zstd xz bzip2 lz4
    b"PK\x03\x04", b"PK\x05\x06",  # zip (jar, wheel, apk, docx)
    b"\x00asm",  # WebAssembly
    b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",  # Java classes / Mach-O
    b"MZ",  # Windows executables
    b"%PDF-",
)


def skip_by_magic(head: bytes) -> bool:
    """True for a file whose first bytes name a binary format that holds no readable
    token (ELF, images, fonts, compressed data, zip archives): callers skip the content
    scan for it. Text, JSON, SQLite databases, keystores and unknown formats are read."""
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return True
    return head.startswith(_SKIP_MAGIC)


def vendored(path: str) -> bool:
    """Inside a third-party package tree or a test/example directory."""
    return bool(files.VENDORED.search(path))


class ContentScanner:
    """Scans one file's content for known token formats, streamed.

    ``feed`` takes chunks of any size; ``finish`` returns the findings. Memory stays at
    most one block (:data:`BLOCK`, or one chunk when a chunk is larger) plus
    :data:`OVERLAP`. Findings in ``.env`` files include secret-looking ``KEY=value``
    lines anywhere in the file, not only in its first megabyte.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._tail = b""  # the last OVERLAP bytes already scanned (context for the next block)
        self._base = 0  # absolute offset of _tail[0]
        self._next = 0  # absolute offset from which matches are still to be reported
        self._lines = 0  # newlines before _base
        self._hits: list[SecretHit] = []
        self._gcp = False
        self._env = is_env_file(posixpath.basename(path))
        self._env_line_start = 0  # absolute offset of the first line not yet read (.env)
        self._vendored = vendored(path)
        # A file the name rules read (.npmrc, .netrc, kubeconfig, ...): its first
        # MAX_SIZE bytes go to the parser for that kind too.
        self._head: bytearray | None = bytearray() if files.is_candidate(path) else None
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._head is not None and len(self._head) < files.MAX_SIZE:
            self._head += chunk[:files.MAX_SIZE - len(self._head)]
        self._pending.append(chunk)
        self._pending_len += len(chunk)
        if self._pending_len >= BLOCK:
            self._scan(final=False)

    def finish(self) -> list[SecretHit]:
        self._scan(final=True)
        hits: list[SecretHit] = []
        if self._head is not None:
            hits = files.scan(self.path, bytes(self._head), content_rules=False)
            self._head = None
        lines = {h.line for h in hits if h.line is not None}
        for h in self._hits:  # one finding per line
            if h.line is None or h.line not in lines:
                hits.append(h)
                if h.line is not None:
                    lines.add(h.line)
        if self._gcp:
            hits = [SecretHit("Google Cloud service account key", h.where, h.severity, h.line,
                              h.fingerprint, h.remedy) if h.kind.startswith("private key")
                    else h for h in hits]
        self._hits = []
        return hits[:MAX_HITS]

    # -- internals ---------------------------------------------------------------------
    def _scan(self, *, final: bool) -> None:
        if not self._pending and not final:
            return
        buf = self._tail + b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        base = self._base
        limit = len(buf) if final else max(0, len(buf) - OVERLAP)
        start = max(0, self._next - base)
        if len(self._hits) < MAX_HITS:
            found: list[tuple[int, str, str, str, str]] = []
            for regex in _SCANNING:
                for m in regex.finditer(buf, start):
                    if m.start() >= limit or len(found) >= MAX_HITS:
                        break
                    hit = self._judge(buf, m)
                    if hit is not None:
                        found.append(hit)
            for anchor, regex in _PROBING:
                find, match = buf.find, regex.match
                i = find(anchor, start, limit)
                while i >= 0 and len(found) < MAX_HITS:
                    pm = match(buf, i)
                    if pm is not None:
                        hit = self._judge(buf, pm)
                        if hit is not None:
                            found.append(hit)
                    i = find(anchor, i + 1, limit)
            found.sort()
            line_pos, line_no = 0, self._lines
            for pos, kind, fp, severity, remedy in found:
                if len(self._hits) >= MAX_HITS:
                    break
                line_no += buf.count(b"\n", line_pos, pos)
                line_pos = pos
                self._add(kind, line_no + 1, fp, severity, remedy)
        if self._env:
            self._env_lines(buf, base, limit, final)
        # Keep the unscanned overlap and LOOKBACK bytes before it for the next block;
        # count the lines that leave memory (not needed after the last block).
        self._next = base + limit
        if final:
            self._tail = b""
            return
        keep_from = max(0, limit - LOOKBACK)
        self._lines += buf.count(b"\n", 0, keep_from)
        self._tail = buf[keep_from:]
        self._base = base + keep_from

    def _judge(self, buf: bytes, m: re.Match[bytes]) -> tuple[int, str, str, str, str] | None:
        name = m.lastgroup
        if name == "url":
            return self._url(buf, m.start())
        if name is None:
            return None
        fmt = formats.FORMAT_BY_NAME.get(name)
        if fmt is None:  # a group inside a format (npmrc_value, pem_label)
            name = next((g for g in formats.FORMAT_BY_NAME if m.group(g) is not None), "")
            fmt = formats.FORMAT_BY_NAME.get(name)
            if fmt is None:
                return None
        begin = m.start() - fmt.lead
        token = buf[begin:m.end()]
        if name == "npmrc":
            if not formats.looks_random(m.group("npmrc_value") or b""):
                return None
        elif name not in ("pem", "pem_b64") and formats.looks_placeholder(token):
            return None
        if name not in ("npmrc", "pem", "pem_b64") and begin > 0 and buf[begin - 1:begin].isalnum():
            return None  # inside a longer word (TODAYINASIA...)
        kind = fmt.kind
        if name == "pem":
            if not self._gcp and formats.GCP_MARKER.search(buf):
                self._gcp = True  # a key file's marker comes before its key
            label = (m.group("pem_label") or b"").decode().strip()
            kind = f"private key ({label or 'PKCS#8'})" if label != "OPENSSH" else "private SSH key"
            fp = f"-----BEGIN {label + ' ' if label else ''}PRIVATE KEY-----"
        elif name == "pem_b64":
            fp = "LS0tLS1CRUdJTi…(base64 PEM)"
        elif fmt.public:
            fp = fingerprint(token, fmt.public)
        else:
            fp = ""
        severity = "warning" if self._vendored else fmt.severity
        return begin, kind, fp, severity, fmt.remedy

    def _url(self, buf: bytes, at: int) -> tuple[int, str, str, str, str] | None:
        i = buf.rfind(b"://", max(0, at - (LOOKBACK - 64)), at)
        if i < 0:
            return None
        m = formats.URL_CREDENTIALS.search(buf, max(0, i - 32), at + 1)
        if m is None:
            return None
        user, password = m.group("user"), m.group("password")
        if formats.placeholder_password(user, password):
            return None
        scheme = m.group(0).split(b"://", 1)[0].decode("ascii", "replace")
        fp = f"{scheme}://{'…' if user else ''}:…({len(password)} chars)@"
        severity = "warning" if self._vendored else "error"
        return m.start(), "password in a URL", fp, severity, ""

    def _add(self, kind: str, line: int, fp: str, severity: str, remedy: str) -> None:
        self._hits.append(SecretHit(kind, f"line {line}", severity, line, fp, remedy))

    def _env_lines(self, buf: bytes, base: int, limit: int, final: bool) -> None:
        """``KEY=value`` lines of a .env file with a secret-looking key (whole file)."""
        start = max(0, self._env_line_start - base)
        end = limit if final else buf.rfind(b"\n", start, limit) + 1
        if end <= start:
            return
        line_no = self._lines + buf.count(b"\n", 0, start)
        for raw in buf[start:end].split(b"\n"):
            line_no += 1
            if len(self._hits) >= MAX_HITS:
                break
            text = raw.decode("utf-8", "replace").strip()
            if not text or text.startswith("#") or "=" not in text:
                continue
            key, _, value = text.partition("=")
            key = key.strip().removeprefix("export ").strip()
            value = value.split(" #", 1)[0].strip().strip("'\"").strip()
            if (secret_env_key(key) and value
                    and not formats.looks_placeholder(value.encode())
                    and not value.startswith(("$", "<", "{{"))
                    and not any(h.line == line_no for h in self._hits)):
                self._add("secret in .env file", line_no, "", "error", "")
                self._hits[-1] = SecretHit("secret in .env file", f"line {line_no}, key {key}",
                                           "error", line_no)
        self._env_line_start = base + end


def scan_bytes(path: str, data: bytes) -> list[SecretHit]:
    """Token formats in one in-memory value or file."""
    s = ContentScanner(path)
    s.feed(data)
    return s.finish()
