"""Known token formats: the data table the content scanner is built from.

Each format is anchored on one byte of its fixed part (``_``, ``-``, ``K``, ``J``), and
the rest of the fixed part is checked with a look-behind; a format whose prefix is
rare as a whole (``hvs.``) is anchored on all of it. One regex per anchor starts with
it as a literal: Python's regex engine scans for a literal at 2 to 3 GB/s, for a
character class at under 400 MB/s. URL credentials are found at their ``@``
(:data:`URL_SCAN`) and read backwards. The formats follow the public rule sets of gitleaks
(``config/gitleaks.toml``), detect-secrets (``detect_secrets/plugins``) and trufflehog
(``pkg/detectors``), and the issuers' own documentation of their token prefixes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes


@dataclass(frozen=True)
class TokenFormat:
    #: Regex group name (unique).
    name: str
    #: What a finding calls it.
    kind: str
    #: The byte the combined regex stops at.
    anchor: str
    #: Fixed-width regex of the token's bytes up to and including the anchor.
    behind: str
    #: Number of token bytes before the anchor (the width of ``behind`` minus one).
    lead: int
    #: Regex of the rest of the token, after the anchor.
    body: str
    #: How many leading characters of the token the fingerprint shows: only the format's
    #: public prefix (``ghp_``), never random material.
    public: int
    severity: str = "error"
    #: What to do instead; shown with the finding.
    remedy: str = ""
    #: The bytes that can come right before the anchor (the end of ``behind``): one
    #: class per anchor is checked first, which rejects most anchor bytes of ordinary
    #: text before any alternative is tried.
    before: str = ""


_B62 = "[A-Za-z0-9]"
_END = "(?![A-Za-z0-9_])"

_ROTATE = "revoke it and remove it from the image (build secrets: --secret, RUN --mount=type=secret)"

_PEM_LABELS = ("", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", "PGP ", "ED25519 ", "SSH2 ",
               "SSH2 ENCRYPTED ")


def _b64_prefixes() -> str:
    """Base64 of ``-----BEGIN <label>PRIVATE KEY`` as it starts a base64 value
    (kubeconfig ``client-key-data``, Kubernetes secrets), cut at a 3-byte boundary so that
    it does not depend on what follows."""
    alts = []
    for label in _PEM_LABELS:
        raw = f"-----BEGIN {label}PRIVATE KEY".encode()
        raw = raw[: len(raw) // 3 * 3]
        alts.append(base64.b64encode(raw).decode())
    # All start with "LS0tLS1CRUdJ" (-----BEGI); the anchor is that J.
    common = "LS0tLS1CRUdJ"
    assert all(a.startswith(common) for a in alts)
    return "(?:" + "|".join(sorted({re.escape(a[len(common):]) for a in alts}, key=len,
                                   reverse=True)) + ")"


FORMATS: tuple[TokenFormat, ...] = (
    # GitHub: ghp_ (classic PAT), gho_ (OAuth), ghu_ (user-to-server), ghs_ (server-to-
    # server), ghr_ (refresh): 36 base62 characters; fine-grained PATs github_pat_.
    TokenFormat("github", "GitHub token", "_", "gh[pousr]_", 3, f"{_B62}{{36}}{_END}", 4,
                before="pousr"),
    TokenFormat("github_pat", "GitHub fine-grained token", "_", "github_", 6,
                f"pat_{_B62}{{22}}_{_B62}{{59}}{_END}", 11, before="b"),
    # npm automation/publish tokens.
    TokenFormat("npm", "npm access token", "_", "npm_", 3, f"{_B62}{{36}}{_END}", 4,
                before="m"),
    # Stripe live secret and restricted keys (test keys are not secrets).
    TokenFormat("stripe", "Stripe live key", "_", "[sr]k_", 2,
                f"live_{_B62}{{20,247}}{_END}", 8, before="k"),
    # AWS secret access key, only with its name next to it (40 base64 characters alone
    # are too common to mean anything).
    TokenFormat("aws_secret", "AWS secret access key", "_", "[Aa][Ww][Ss]_", 3,
                "(?:(?:[Ss][Ee][Cc][Rr][Ee][Tt]_(?:[Aa][Cc][Cc][Ee][Ss][Ss]_)?[Kk][Ee][Yy])"
                "[\"']?\\s{0,4}(?:=|:|=>)\\s{0,4}[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
                "|[Ss][Ee][Ss][Ss][Ii][Oo][Nn]_[Tt][Oo][Kk][Ee][Nn]"
                "[\"']?\\s{0,4}(?:=|:|=>)\\s{0,4}[\"']?[A-Za-z0-9/+=]{100,2000})", 0,
                before="sS"),
    # An .npmrc auth line, whatever the file is called (a hard link, a copy, a heredoc).
    TokenFormat("npmrc", "npm auth token (.npmrc line)", "_", ":_", 1,
                "(?:authToken|auth|password)\\s{0,4}=\\s{0,4}[\"']?"
                "(?P<npmrc_value>[^\\s\"'$<{}][^\\s\"']{7,1000})", 0, before=":"),
    # GitLab personal/project/group access tokens.
    TokenFormat("gitlab", "GitLab access token", "-", "glpat-", 5,
                "[A-Za-z0-9_-]{20,64}(?![A-Za-z0-9_-])", 6, before="t"),
    # Slack bot/user/app/refresh tokens.
    TokenFormat("slack", "Slack token", "-", "xox[baprs]-", 4,
                "[0-9]{6,15}-[A-Za-z0-9-]{8,250}", 5, before="baprs"),
    # PyPI API tokens: a macaroon whose first bytes encode "pypi.org".
    TokenFormat("pypi", "PyPI API token", "-", "pypi-", 4,
                "AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}", 5, before="i"),
    # AWS access key ids: AKIA (long-term), ASIA (temporary).
    # AWS access key ids (AKIA, long-term). Temporary ids (ASIA) are useless without
    # their secret key and session token, which aws_secret finds by their names.
    TokenFormat("aws_key", "AWS access key id", "K", "AK", 1, f"IA[A-Z2-7]{{16}}{_END}", 4,
                before="A"),
    # Azure storage / service bus / event hub connection strings.
    TokenFormat("azure", "Azure storage or service key", "K", "AccountK", 7,
                "ey\\s{0,2}=\\s{0,2}[A-Za-z0-9+/]{40,100}={0,2}", 0, before="t"),
    TokenFormat("azure_sas", "Azure shared access key", "K", "SharedAccessK", 12,
                "ey\\s{0,2}=\\s{0,2}[A-Za-z0-9+/]{40,100}={0,2}", 0, before="s"),
    # Private keys (PEM), with a body: a header alone (in code that parses keys) is not one.
    TokenFormat("pem", "private key", "-", "-----", 4,
                "BEGIN (?P<pem_label>(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP|ED25519|SSH2(?: ENCRYPTED)?) )?"
                "PRIVATE KEY(?: BLOCK)?-----"
                "(?:\\s|\\\\[rn]){1,8}(?:[A-Za-z-]{2,30}: [^\\r\\n\\\\]{1,200}(?:\\s|\\\\[rn]){1,8})*"
                "[A-Za-z0-9+/=]{40}", 0, before="-"),
    # The same, base64-encoded (kubeconfig client-key-data, Kubernetes Secret manifests).
    TokenFormat("pem_b64", "private key (base64 PEM)", "J", "LS0tLS1CRUdJ", 11,
                _b64_prefixes(), 0, before="d"),
    # JSON Web Tokens: three base64url parts, the first two JSON objects.
    # HashiCorp Vault service tokens (Vault 1.10+): "hvs." and 90 to 120 characters
    # (gitleaks' vault-service-token rule). Found by its four-byte prefix.
    TokenFormat("vault", "HashiCorp Vault token", "hvs.", "", 0,
                "[A-Za-z0-9_-]{90,120}(?![A-Za-z0-9_-])", 4),
    TokenFormat("jwt", "JSON Web Token", "J", "eyJ", 2,
                "[A-Za-z0-9_-]{8,2000}\\.eyJ[A-Za-z0-9_-]{8,4000}\\.[A-Za-z0-9_-]{8,1000}"
                "(?![A-Za-z0-9_-])", 3, severity="warning", before="y"),
)

#: The one format handled outside the regex's look-behinds: ``scheme://user:pass@host``
#: is found at its ``@`` and read backwards. The byte before the ``@`` must be one a
#: password can end with (not the space of a JSDoc "@param", the quote or slash of an
#: npm "@scope/name", nor ``*`` or ``=``): the regex engine rejects the others itself.
URL_SCAN = re.compile(rb"@(?<=[^\s/?#@'\"`<>{}()\[\]\\,;|*=]@)(?P<url>)")

#: ``scheme://user:password@``, ending at the ``@`` (searched with ``endpos`` there).
URL_CREDENTIALS = re.compile(
    rb"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,30}://"
    rb"(?P<user>[^\s/?#@:'\"`<>{}()\[\]\\,;|]{0,128})"
    rb":(?P<password>[^\s/?#@'\"`<>{}()\[\]\\,;|]{1,256})@\Z"
)

#: A Google Cloud service-account key file is recognised by this marker plus a key.
GCP_MARKER = re.compile(rb'"type"\s{0,4}:\s{0,4}"service_account"')

# Where a secret-looking value is a documented example, a placeholder or a test vector.
PLACEHOLDER_WORDS = (
    b"EXAMPLE", b"example", b"xxxxxxxx", b"XXXXXXXX", b"00000000", b"11111111", b"********",
    b"aaaaaaaa", b"AAAAAAAA", b"abcdefgh", b"ABCDEFGH", b"12345678", b"dummy", b"DUMMY",
    b"placeholder", b"PLACEHOLDER", b"redacted", b"REDACTED", b"FAKE", b"fake", b"changeme",
    b"your_", b"YOUR_", b"your-", b"<", b">", b"${", b"{{", b"...",
)


def anchored_regexes() -> dict[bytes, re.Pattern[bytes]]:
    """One bytes regex per anchor, each starting with that anchor as a literal. A
    one-byte anchor is checked against the bytes that may come before it (a class
    the regex engine tests before any alternative); a longer anchor is the format's
    whole fixed prefix."""
    by_anchor: dict[str, list[str]] = {}
    before: dict[str, set[str]] = {}
    for f in FORMATS:
        behind = f"(?<={f.behind})" if f.lead else ""
        by_anchor.setdefault(f.anchor, []).append(f"{behind}(?P<{f.name}>{f.body})")
        before.setdefault(f.anchor, set()).update(f.before)
    out = {}
    for a, parts in by_anchor.items():
        a_re = re.escape(a)
        if len(a) > 1:
            out[a.encode()] = re.compile((a_re + "(?:" + "|".join(parts) + ")").encode())
            continue
        gate = "".join(sorted(re.escape(c) for c in before[a]))
        out[a.encode()] = re.compile(
            (a_re + f"(?<=[{gate}]{a_re})(?:" + "|".join(parts) + ")").encode())
    return out


FORMAT_BY_NAME = {f.name: f for f in FORMATS}

#: Longest look-behind any format needs (bytes before the anchor).
MAX_LEAD = max(f.lead for f in FORMATS)
assert MAX_LEAD < 64


_WEAK_PASSWORDS = frozenset({
    b"password", b"passwd", b"pass", b"pwd", b"secret", b"changeme", b"pw", b"p", b"x", b"xxx",
    b"token", b"mypassword", b"mysecretpassword", b"yourpassword", b"your-password",
    b"your_password", b"pass123", b"password123", b"123456", b"test", b"foo", b"bar", b"baz",
    b"guest", b"anonymous", b"none", b"null", b"admin", b"root", b"user", b"username",
    b"example", b"hunter2", b"passw0rd", b"s3cr3t", b"*", b"***", b"****", b"*****", b"p@ss",
    b"p4ss", b"p4ssw0rd", b"foobared", b"secret123", b"pa55word", b"pa55w0rd",
    b"******", b"dummy", b"qwerty", b"letmein", b"sekret", b"supersecret", b"apikey",
    b"api_key", b"key", b"pat", b"oauth2", b"x-oauth-basic", b"redacted", b"masked",
})


# Passwords documentation uses: "somepassword", "authpassword", "mypass", "secret123".
_DOC_PASSWORD = re.compile(
    rb"^(?:some|my|your|auth|user|db|admin|super|the|a|app|strong|secure|dummy|fake|test"
    rb"|example|sample|good|bad|redis|mongo|pg|mysql|root|new|old|foo|bar)?[-_.]?"
    rb"(?:pass(?:word|wd)?|pwd|pw|secret|token|key)s?[-_.]?(?:\d{1,4})?$")

#: Keys published on purpose: the Azure storage emulator's well-known account key, the
#: AWS documentation's example keys, the jwt.io example token.
PUBLIC_VALUES = frozenset({
    b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    b"AKIAIOSFODNN7EXAMPLE",
    b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
    b"aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
})


# Names reserved for documentation (RFC 2606, RFC 6761).
_DOC_HOSTS = (b"example.com", b"example.org", b"example.net", b".example", b".test",
              b".invalid", b".localhost")
_DOC_WORDS = re.compile(rb"^(?:(?:foo|bar|baz|qux|quux|test|pass|secret|user|example|auth|pwd)"
                        rb"[-_.@:+]?)+$")


# Users documentation writes: "your-name", "my_user", "anonymous", CVS's "anoncvs".
_DOC_USERS = re.compile(rb"^(?:your|my|some)(?:[-_.]|$)|^(?:anonymous|anoncvs|johndoe|jdoe"
                        rb"|john|jane|guest|demo)$|example")
# Parts of a password that say "put yours here": runs a keyboard makes, ellipses (the
# dotenv README's "key_1234…"), CVS's ":pserver:" method.
_DOC_PARTS = (b"12345", b"abcdef", b"xxx", b"...", "\u2026".encode(), b"pserver:")
#: Hosts whose URL credentials are public by design: a Sentry DSN's key only lets a
#: client send events, and every browser that loads the page gets it.
PUBLIC_HOSTS = (b"sentry.io", b".sentry.io")


def placeholder_password(user: bytes, password: bytes, host: bytes = b"") -> bool:
    """A URL password that is documentation, not a secret: a documentation host
    (example.com, *.test), a host whose keys are public (a Sentry DSN), a user or a
    password made of placeholder words, or a password too short to be one anyone
    uses."""
    h = host.lower().rstrip(b".")
    if h and (h in _DOC_HOSTS or h.endswith(_DOC_HOSTS) or h == b"example"
              or h == PUBLIC_HOSTS[0] or h.endswith(PUBLIC_HOSTS[1])):
        return True
    u = unquote_to_bytes(user).lower()
    if _DOC_USERS.search(u):
        return True
    p = unquote_to_bytes(password).lower()
    if any(part in p for part in _DOC_PARTS):
        return True
    if len(p) < 5 or p in _WEAK_PASSWORDS or p == user.lower() or _DOC_WORDS.match(p):
        return True
    if _DOC_PASSWORD.match(p):
        return True
    if p.startswith((b"$", b"%", b"<", b"{", b"[", b"*")) or p.endswith((b">", b"}")):
        return True
    return looks_placeholder(password) or len(set(p)) <= 2


def looks_random(value: bytes) -> bool:
    """A credential value rather than a word: long enough, varied enough (``MYTOKEN1``
    in documentation is not a token)."""
    return len(value) >= 12 and len(set(value)) >= 8 and not looks_placeholder(value)


def looks_placeholder(token: bytes) -> bool:
    """Example keys (AKIAIOSFODNN7EXAMPLE), runs of one character, template markers."""
    if any(w in token for w in PLACEHOLDER_WORDS) or any(v in token for v in PUBLIC_VALUES):
        return True
    body = token[-16:]
    return len(set(body)) <= 3
