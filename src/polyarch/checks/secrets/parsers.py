"""Parsers of credential files: each reads one tool's file the way the tool reads it
and says which credentials it holds (a line, a key, a host), never their values.

:func:`files.scan` picks the parser a file's name selects. The rules for values
(:func:`real_value`: not a placeholder) and for secret-looking key names
(:func:`secret_env_key`) are shared with the readers of image metadata.
"""

from __future__ import annotations

import json
import re
from typing import Any

from polyarch.checks.secrets.hits import SecretHit

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


def _lines(text: str) -> list[tuple[int, str]]:
    return [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]


def real_value(value: str) -> bool:
    v = value.strip().strip("'\"").strip()
    return bool(v) and not _PLACEHOLDER.match(v)


def npmrc(text: str) -> list[SecretHit]:
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


def docker_config(text: str, *, legacy: bool) -> list[SecretHit]:
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


def git_credentials(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        m = _URL_CREDS.match(line)
        if m and real_value(m.group(1)):
            hits.append(SecretHit("git credentials", f"line {no}", line=no))
    return hits


def netrc(text: str) -> list[SecretHit]:
    tokens = text.split()
    for i, tok in enumerate(tokens[:-1]):
        if tok == "password" and real_value(tokens[i + 1]):
            return [SecretHit("netrc password")]
    return []


def ini_password(text: str, kind: str, keys: set[str]) -> list[SecretHit]:
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


def service_account(text: str) -> list[SecretHit]:
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


def kubeconfig(text: str) -> list[SecretHit]:
    hits = []
    for no, line in _lines(text):
        key, _, value = line.partition(":")
        if key.strip() in {"token", "client-key-data", "password"} and real_value(value):
            hits.append(SecretHit("Kubernetes credentials (kubeconfig)",
                                  f"line {no}, {key.strip()}", line=no))
    return hits


def other_tools(path: str, name: str, text: str) -> list[SecretHit]:
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
                 for h in docker_config(text, legacy=False)]
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


def env_file(text: str) -> list[SecretHit]:
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

