"""What a match of the content scanner's regexes is: a finding or nothing.

:class:`MatchJudge` is the part of :class:`~polyarch.checks.secrets.content.ContentScanner`
that reads one match in its block: placeholders and matches inside a longer word are
nothing, a binary is read for fewer kinds (see :mod:`content`), a password in a URL
only outside documentation files and image references. A finding is
:data:`Found`: its offset, kind, masked fingerprint, severity and remedy, never the
value.
"""

from __future__ import annotations

import re

from polyarch.checks.secrets import formats, kinds
from polyarch.checks.secrets.hits import fingerprint

#: ``(offset in the block, kind, fingerprint, severity, remedy)``.
Found = tuple[int, str, str, str, str]
#: Context a match's judgement reads before it: the look-behinds of the formats and the
#: backwards read of a URL from its ``@`` (the scanner keeps this much before a block).
LOOKBACK = 512
#: Kinds not reported from a binary (warnings of their own, test data of libraries).
_NOT_IN_BINARIES = frozenset({"jwt", "npmrc"})
#: Shared libraries carry their self-test keys (GnuTLS's FIPS tests in libgnutls.so.30,
#: in nearly every Debian image): keys in a library are not findings, in an
#: executable they are (``//go:embed server.key``).
_SHARED_LIBRARY = re.compile(r"\.so(?:\.[0-9.]+)?$")
_LIBRARY_TEST_DATA = frozenset({"pem", "pem_b64"})
_HOST = re.compile(rb"[A-Za-z0-9.-]{1,253}")
URL_KIND = "password in a URL"
#: Schemes of image references, whose ``name:tag@digest`` looks like ``user:pass@host``.
_IMAGE_SCHEMES = (b"oci-layout", b"docker-image", b"docker", b"oci", b"oci-archive",
                  b"containers-storage", b"docker-archive", b"docker-daemon")
_DIGEST_AFTER = re.compile(rb"sha(?:256|384|512):[0-9a-f]{32,128}")


class MatchJudge:
    """Judges the matches found in one file. The scanner sets the file's facts it
    reads: its ``path``, whether it is read as a binary, whether it lies in a tree of
    third-party packages (its findings are warnings), and the two it learns while
    reading (a Google Cloud key file's marker seen; a documentation file)."""

    path: str
    _binary: bool
    _vendored: bool
    _gcp: bool
    _doc: bool | None

    def _judge(self, buf: bytes, m: re.Match[bytes]) -> Found | None:
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
        if self._binary and (name in _NOT_IN_BINARIES or fmt.severity != "error" or (
                name in _LIBRARY_TEST_DATA and _SHARED_LIBRARY.search(self.path))):
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

    def _url(self, buf: bytes, at: int) -> Found | None:
        """``scheme://user:password@host`` whose ``@`` is at ``at``."""
        if self._doc is None:
            self._doc = bool(kinds.DOC_FILE.search(self.path))
        if self._doc:
            return None
        i = buf.rfind(b"://", max(0, at - (LOOKBACK - 64)), at)
        if i < 0:
            return None
        m = formats.URL_CREDENTIALS.search(buf, max(0, i - 32), at + 1)
        if m is None:
            return None
        user, password = m.group("user"), m.group("password")
        scheme_b = m.group(0).split(b"://", 1)[0].lower()
        if scheme_b.endswith(_IMAGE_SCHEMES) or _DIGEST_AFTER.match(buf, at + 1):
            # An image reference (oci-layout://NAME:TAG@sha256:..., as BuildKit's
            # provenance records a named context), not a login.
            return None
        host = _HOST.match(buf, at + 1)
        if formats.placeholder_password(user, password, host.group(0) if host else b""):
            return None
        scheme = m.group(0).split(b"://", 1)[0].decode("ascii", "replace")
        fp = f"{scheme}://{'…' if user else ''}:…({len(password)} chars)@"
        severity = "warning" if self._vendored else "error"
        return m.start(), URL_KIND, fp, severity, ""
