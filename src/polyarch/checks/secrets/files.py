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
    # Go: test files, and the toolchain's and modules' sources (a golang image's
    # crypto/tls/example_test.go holds test keys)
    r"|_test\.go$|^/usr/local/go/src/|^/usr/lib/go-[^/]+/src/|/go/pkg/mod/"
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
                    "credentials", ".dockercfg", "config", "auth.json", ".pgpass",
                    "settings.xml", "settings-security.xml", "credentials.toml", ".vault-token",
                    "credentials.tfrc.json", ".terraformrc", "terraform.rc"}) | _KEY_NAMES

#: Keys every container of an image shares when they are generated at build time (a
#: package's postinst does it): (path regex, kind, remedy).
BAKED_KEYS = (
    (re.compile(r"^/etc/ssh/ssh_host_[a-z0-9]+_key$"), "SSH host key baked into the image",
     "every container of this image has the same host key (one leaked container lets anyone"
     " impersonate all of them): delete it in the image (RUN rm -f /etc/ssh/ssh_host_*) and"
     " generate the keys when the container starts (ssh-keygen -A before sshd); to accept"
     " it: --allow '/etc/ssh/ssh_host_*'"),
    (re.compile(r"^/etc/ssl/private/ssl-cert-snakeoil\.key$"),
     "TLS key baked into the image (ssl-cert-snakeoil)",
     "every container of this image has the same TLS key: delete it in the image (RUN rm -f"
     " /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem) and"
     " generate it when the container starts (make-ssl-cert generate-default-snakeoil"
     " --force-overwrite); to accept it: --allow '/etc/ssl/private/ssl-cert-snakeoil.key'"),
)


def baked_key(path: str) -> tuple[str, str] | None:
    """(kind, remedy) of a key a package generates at install time, for its path."""
    for rx, kind, remedy in BAKED_KEYS:
        if rx.match(path):
            return kind, remedy
    return None
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
        or is_kubeconfig(path)
    )


# The name the Google Cloud console gives a downloaded service-account key:
# <project id>-<12 hex digits of the key id>.json (project-123abc-0123456789ab.json).
_GCP_DOWNLOAD = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]-[0-9a-f]{12}\.json$")


def _is_cloud_json_name(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in ("service-account", "service_account", "serviceaccount",
                                "credentials", "gcp", "key")) or bool(_GCP_DOWNLOAD.match(n))


def is_kubeconfig(path: str) -> bool:
    """~/.kube/config, kubeadm's /etc/kubernetes/*.conf, files named kubeconfig*."""
    if "kube" not in path:
        return False
    name = path.rpartition("/")[2].lower()
    return ((name == "config" and "/.kube/" in path.lower())
            or (name.endswith(".conf") and "/etc/kubernetes/" in "/" + path.lstrip("/"))
            or name.startswith("kubeconfig") or name.endswith(".kubeconfig"))


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
    if is_kubeconfig(path):
        hits += _kubeconfig(text)
    hits += _other_tools(path, name, text)
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


def _other_tools(path: str, name: str, text: str) -> list[SecretHit]:
    """Credential files of podman/skopeo, Composer, PostgreSQL, Maven, Cargo, Vault,
    Terraform and RubyGems, each read the way its tool reads it."""
    if name == "auth.json":
        return _auth_json(text)
    if name == ".pgpass":
        return _pgpass(text)
    if name in {"settings.xml", "settings-security.xml"}:
        return _maven(text)
    if name == "credentials.toml" or (name == "credentials" and "cargo/" in path):
        return _toml_tokens(text, "Cargo registry token", {"token"})
    if name == ".vault-token":
        return [SecretHit("HashiCorp Vault token (.vault-token)")] if real_value(text) else []
    if name == "credentials.tfrc.json":
        return _terraform_json(text)
    if name in {".terraformrc", "terraform.rc"}:
        return _toml_tokens(text, "Terraform credentials", {"token"})
    if name == "credentials" and "gem/" in path:
        return _gem(text)
    return []


def _auth_json(text: str) -> list[SecretHit]:
    """containers-auth.json (podman, skopeo, buildah: ``auths``) or Composer's
    auth.json (``http-basic``, ``github-oauth``, ``gitlab-token``, ``bearer``...)."""
    doc = _json_object(text)
    if doc is None:
        return []
    hits = []
    if isinstance(doc.get("auths"), dict):
        hits += [SecretHit("container registry credentials (auth.json)", h.where)
                 for h in _docker_config(text, legacy=False)]
    for section in ("http-basic", "github-oauth", "gitlab-token", "gitlab-oauth",
                    "bitbucket-oauth", "bearer", "forgejo-token"):
        entries = doc.get(section)
        if not isinstance(entries, dict):
            continue
        for host, entry in entries.items():
            values = ([entry] if isinstance(entry, str) else
                      [v for k, v in entry.items() if k != "username" and isinstance(v, str)]
                      if isinstance(entry, dict) else [])
            if any(real_value(v) for v in values):
                hits.append(SecretHit("Composer credentials (auth.json)", f"{section} {host!s}"))
    return hits


def _pgpass(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        if not line or line.startswith("#"):
            continue
        fields = re.split(r"(?<!\\):", line, maxsplit=4)
        if len(fields) == 5 and real_value(fields[4]) and fields[4] != "*":
            hits.append(SecretHit("PostgreSQL password file (.pgpass)", f"line {no}", line=no))
    return hits


_XML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_XML_SECRET = re.compile(r"<(password|passphrase|master)>\s*([^<]*?)\s*</\1>")


def _maven(text: str) -> list[SecretHit]:
    """``<password>`` of a Maven settings.xml server (the commented-out examples of the
    default settings.xml are not read)."""
    body = _XML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    hits = []
    for m in _XML_SECRET.finditer(body):
        if real_value(m.group(2)):
            no = body.count("\n", 0, m.start()) + 1
            hits.append(SecretHit("Maven credentials (settings.xml)", f"line {no}, <{m.group(1)}>",
                                  line=no))
    return hits


def _toml_tokens(text: str, kind: str, keys: set[str]) -> list[SecretHit]:
    """``token = "..."`` lines (Cargo's credentials.toml, Terraform's CLI config)."""
    hits = []
    for no, line in _lines(text):
        key, sep, value = line.partition("=")
        if sep and key.strip().strip('"') in keys and real_value(value):
            hits.append(SecretHit(kind, f"line {no}, {key.strip()}", line=no))
    return hits


def _gem(text: str) -> list[SecretHit]:
    """~/.gem/credentials (YAML): ``:rubygems_api_key: rubygems_...`` and one key per
    gem host."""
    hits = []
    for no, line in _lines(text):
        key, sep, value = line.lstrip(":").partition(":")
        if sep and key.strip() and not line.startswith(("#", "---")) and real_value(value):
            hits.append(SecretHit("RubyGems credentials", f"line {no}", line=no))
    return hits


def _terraform_json(text: str) -> list[SecretHit]:
    doc = _json_object(text)
    creds = doc.get("credentials") if doc else None
    if not isinstance(creds, dict):
        return []
    return [SecretHit("Terraform credentials (credentials.tfrc.json)", f"host {host!s}")
            for host, entry in creds.items()
            if isinstance(entry, dict) and isinstance(entry.get("token"), str)
            and real_value(entry["token"])]


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
