"""File-name rules: credential files recognised by their name and read by a parser.

A file is looked at only when its name says it may hold credentials
(:func:`is_candidate`); its content (at most :data:`MAX_SIZE` bytes) is then read by the
detector for that kind. Findings carry a path, a kind and where in the file (a line
number or a key name): never the value.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from polyarch.checks.secrets.hits import SecretHit

#: Largest file the detectors read.
MAX_SIZE = 1 << 20

_SECRET_KEY = re.compile(
    r"(?i)(secret|token|passw(or)?d|passwd|pwd|api[_-]?key|apikey|private[_-]?key|access[_-]?key"
    r"|credential|auth|client[_-]?secret|signing[_-]?key|encryption[_-]?key|dsn)"
)
_NOT_SECRET_KEY = re.compile(r"(?i)(_file|_path|_url|_uri|_host|_user(name)?|_id|_type|_mode)$")
_PLACEHOLDER = re.compile(
    r"(?i)^(|changeme|change[_-]?me|example|placeholder|dummy|null|none|nil|false|true|x+|\*+"
    r"|your[_-].*|<.*>|\$\{.*\}|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*\}\}|%\(.*\)s|todo|tbd|secret"
    r"|password|\.\.\.)$"
)
_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((?:RSA|DSA|EC|OPENSSH|ENCRYPTED|ED25519)? ?PRIVATE KEY)-----"
)
#: Trees of third-party packages and test data: keys and tokens there are test vectors
#: and documentation far more often than leaks, so they are warnings there.
VENDORED = re.compile(
    r"/(?:node_modules|site-packages|dist-packages|bower_components|__tests__|tests?|testdata"
    r"|test-data|fixtures?|spec|specs|examples?|samples?|doc|docs)/|^/usr/share/doc/"
)
_ENV_TEMPLATE = re.compile(r"(?i)\.(example|sample|template|dist|defaults?|tmpl|tpl)$")

_CLOUD_FILES = {
    ".aws/credentials": "AWS credentials file",
    ".config/gcloud/application_default_credentials.json": "Google Cloud credentials",
    ".config/gcloud/credentials.db": "Google Cloud credentials",
    ".config/gcloud/access_tokens.db": "Google Cloud credentials",
    ".azure/accesstokens.json": "Azure CLI tokens",
    ".azure/msal_token_cache.json": "Azure CLI tokens",
    ".azure/msal_token_cache.bin": "Azure CLI tokens",
}
_KEY_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}


def _base(path: str) -> str:
    return posixpath.basename(path)


def is_env_file(name: str) -> bool:
    if _ENV_TEMPLATE.search(name):
        return False
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


_NAMES = frozenset({".npmrc", ".git-credentials", ".netrc", "_netrc", ".pypirc", "config.json",
                    "credentials", ".dockercfg", "config"}) | _KEY_NAMES
_CLOUD_BASENAMES = frozenset(s.rsplit("/", 1)[-1] for s in _CLOUD_FILES)


def is_candidate(path: str) -> bool:
    """Whether the file at ``path`` is read by a detector (decided from the name only)."""
    name = path.rsplit("/", 1)[-1]
    if name in _NAMES:
        return True
    lname = name.lower()
    return (
        lname in _CLOUD_BASENAMES
        or lname.endswith((".pem", ".key"))
        or (".env" in lname and is_env_file(name))
        or (lname.endswith(".json") and _is_cloud_json_name(lname))
        or "/.ssh/" in "/" + path
    )


def _is_cloud_json_name(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in ("service-account", "service_account", "serviceaccount",
                                "credentials", "gcp", "key"))


def scan(path: str, content: bytes, *, content_rules: bool = True) -> list[SecretHit]:
    """Credentials found in one candidate file by the parser its name selects.

    ``content_rules=False`` leaves out what the content scanner finds in any file
    (private-key blocks, ``.env`` lines), for callers that run both."""
    name = _base(path)
    lower = path.lower()
    hits: list[SecretHit] = []
    text = content.decode("utf-8", errors="replace")
    if name == ".npmrc":
        hits += _npmrc(text)
    if name in {"config.json", ".dockercfg"}:
        hits += _docker_config(text, legacy=name == ".dockercfg")
    if name == ".git-credentials":
        hits += _git_credentials(text)
    if name in {".netrc", "_netrc"}:
        hits += _netrc(text)
    if name == ".pypirc":
        hits += _ini_password(text, "PyPI credentials (.pypirc)", {"password"})
    for suffix, kind in _CLOUD_FILES.items():
        if lower.endswith("/" + suffix):
            if suffix == ".aws/credentials":
                hits += _ini_password(text, kind, {"aws_secret_access_key",
                                                   "aws_session_token"})
            else:
                hits.append(SecretHit(kind))
    if name.endswith(".json") and name not in {"config.json"}:
        hits += _service_account(text)
    if name == "config" and "/.kube/" in lower:
        hits += _kubeconfig(text)
    if is_env_file(name) and content_rules:
        hits += _env(text)
    if content_rules:
        hits += _private_keys(path, content)
    return hits


def _lines(text: str) -> list[tuple[int, str]]:
    return [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]


def real_value(value: str) -> bool:
    v = value.strip().strip("'\"").strip()
    return bool(v) and not _PLACEHOLDER.match(v)


def _npmrc(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        if line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        last = key.rsplit(":", 1)[-1]
        if last in {"_authToken", "_auth", "_password"} and real_value(value):
            hits.append(SecretHit("npm auth token", f"line {no}, {last}", line=no))
    return hits


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _docker_config(text: str, *, legacy: bool) -> list[SecretHit]:
    doc = _json_object(text)
    if doc is None:
        return []
    auths = doc if legacy else doc.get("auths")
    if not isinstance(auths, dict):
        return []
    hits = []
    for server, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        if any(isinstance(entry.get(k), str) and entry.get(k)
               for k in ("auth", "password", "identitytoken", "registrytoken")):
            hits.append(SecretHit("docker registry credentials", f"auths entry {server!s}"))
    return hits


_URL_CREDS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s]+)@", re.I)


def _git_credentials(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        m = _URL_CREDS.match(line)
        if m and real_value(m.group(1)):
            hits.append(SecretHit("git credentials", f"line {no}", line=no))
    return hits


def _netrc(text: str) -> list[SecretHit]:
    tokens = text.split()
    for i, tok in enumerate(tokens[:-1]):
        if tok == "password" and real_value(tokens[i + 1]):
            return [SecretHit("netrc password")]
    return []


def _ini_password(text: str, kind: str, keys: set[str]) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        if line.startswith(("#", ";")):
            continue
        for sep in ("=", ":"):
            if sep in line:
                key, _, value = line.partition(sep)
                if key.strip().lower() in keys and real_value(value):
                    hits.append(SecretHit(kind, f"line {no}, {key.strip()}", line=no))
                break
    return hits


def _service_account(text: str) -> list[SecretHit]:
    if '"private_key"' not in text and '"refresh_token"' not in text:
        return []
    doc = _json_object(text)
    if doc is None:
        return []
    if doc.get("type") == "service_account" and doc.get("private_key"):
        return [SecretHit("Google Cloud service account key")]
    if doc.get("type") == "authorized_user" and doc.get("refresh_token"):
        return [SecretHit("Google Cloud user credentials")]
    return []


def _kubeconfig(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        key, _, value = line.partition(":")
        if key.strip() in {"token", "client-key-data", "password"} and real_value(value):
            hits.append(SecretHit("Kubernetes credentials (kubeconfig)",
                                  f"line {no}, {key.strip()}", line=no))
    return hits


def secret_env_key(key: str) -> bool:
    """Whether an environment variable name looks like it holds a secret."""
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.search(key)


def _env(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[7:].strip()
        if secret_env_key(key) and real_value(value.split(" #", 1)[0]):
            hits.append(SecretHit("secret in .env file", f"line {no}, key {key}", line=no))
    return hits


def env_hits(env: list[str]) -> list[SecretHit]:
    """Secret-looking ``KEY=value`` entries of an image config's ``Env``."""
    hits = []
    for item in env:
        key, sep, value = item.partition("=")
        if sep and secret_env_key(key) and real_value(value):
            hits.append(SecretHit("secret in image environment (ENV)", f"key {key}"))
    return hits


def _private_keys(path: str, content: bytes) -> list[SecretHit]:
    m = _PRIVATE_KEY.search(content)
    if not m:
        return []
    label = m.group(1).decode()
    name = _base(path)
    ssh = label == "OPENSSH PRIVATE KEY" or name in _KEY_NAMES or "/.ssh/" in path.lower()
    # Keys ship in test suites and examples of many packages: there a warning, elsewhere
    # (/etc/ssl/private, /app) an error.
    severity = "warning" if VENDORED.search(path) else "error"
    if ssh:
        return [SecretHit("private SSH key", label, severity=severity)]
    return [SecretHit("private key (PEM)", label, severity=severity)]
