"""File-name rules: credential files recognised by their name and read by a parser.

A file is looked at only when its name says it may hold credentials
(:func:`is_candidate`); its content (at most :data:`MAX_SIZE` bytes) is then read by the
parser for that kind (:mod:`parsers`). Findings carry a path, a kind and where in the
file (a line number or a key name): never the value.
"""

from __future__ import annotations

import posixpath
import re

from polyarch.checks.secrets import parsers
from polyarch.checks.secrets.hits import SecretHit

#: Largest file the detectors read.
MAX_SIZE = 1 << 20

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
        hits += parsers.npmrc(text)
    if name in {"config.json", ".dockercfg"}:
        hits += parsers.docker_config(text, legacy=name == ".dockercfg")
    if name == ".git-credentials":
        hits += parsers.git_credentials(text)
    if name in {".netrc", "_netrc"}:
        hits += parsers.netrc(text)
    if name == ".pypirc":
        hits += parsers.ini_password(text, "PyPI credentials (.pypirc)", {"password"})
    for suffix, kind in _CLOUD_FILES.items():
        if lower.endswith("/" + suffix):
            if suffix == ".aws/credentials":
                hits += parsers.ini_password(text, kind, {"aws_secret_access_key",
                                                          "aws_session_token"})
            else:
                hits.append(SecretHit(kind))
    if name.endswith(".json") and name not in {"config.json"}:
        hits += parsers.service_account(text)
    if is_kubeconfig(path):
        hits += parsers.kubeconfig(text)
    hits += parsers.other_tools(path, name, text)
    if is_env_file(name) and content_rules:
        hits += parsers.env_file(text)
    if content_rules:
        hits += _private_keys(path, content)
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
