"""Credentials from docker's ``config.json``: ``auths``, ``credHelpers``, ``credsStore``.

The file is looked up in ``$DOCKER_CONFIG`` (or the directory given), else ``~/.docker``.
Credential helpers follow docker's protocol: ``docker-credential-<name> get`` reads the
server URL on stdin and prints ``{"ServerURL", "Username", "Secret"}``; a ``Username``
of ``<token>`` means the secret is an identity (refresh) token.

Nothing here ever prints a secret; :class:`Credentials` hides them from ``repr``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyarch.errors import EnvironmentProblem, FatalError, RegistryError
from polyarch.refs import DOCKER_HUB
from polyarch.registry.media import load_json

#: The key docker uses for Docker Hub in config.json and with credential helpers.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    #: Where they came from ("config.json auths", "credential helper 'pass'"), for messages.
    source: str = ""

    @property
    def basic(self) -> tuple[str, str] | None:
        if self.username and self.password:
            return self.username, self.password
        return None


def config_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env)
    return Path.home() / ".docker"


def _normalise_key(key: str) -> str:
    k = key.strip()
    for scheme in ("https://", "http://"):
        if k.startswith(scheme):
            k = k[len(scheme):]
    k = k.split("/", 1)[0]
    return DOCKER_HUB if k in _HUB_ALIASES else k


def server_key(registry: str) -> str:
    """What docker passes to credential helpers for ``registry``."""
    return DOCKER_HUB_KEY if registry == DOCKER_HUB else registry


#: Largest config.json read (docker's own are a few KiB).
MAX_CONFIG = 4 * 1024 * 1024
_FIX = "fix the file (docker login rewrites it) or point DOCKER_CONFIG at another directory"


class HelperTimeout(EnvironmentProblem):
    """A credential helper did not answer in time (exit 3: the machine, not the registry)."""




class DockerConfig:
    """Reads credentials lazily; the file is read once per client."""

    def __init__(self, directory: Path | None = None, *,
                 helper_timeout: float | None = None) -> None:
        #: Seconds a credential helper may take; None: the deadline of every short
        #: command polyarch runs (POLYARCH_COMMAND_TIMEOUT, 60 s).
        self.helper_timeout = helper_timeout
        self.directory = config_dir(directory)
        self.path = self.directory / "config.json"
        self._doc: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._doc is None:
            try:
                with self.path.open("rb") as f:
                    raw = f.read(MAX_CONFIG + 1)
            except FileNotFoundError:
                self._doc = {}
                return self._doc
            except OSError as e:
                raise RegistryError(f"cannot read {self.path}: {e.strerror}") from e
            if len(raw) > MAX_CONFIG:
                raise RegistryError(f"{self.path} is larger than {MAX_CONFIG} bytes, too large"
                                    " for a docker config.json", hint=_FIX)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise RegistryError(f"{self.path} is not UTF-8 text (byte {e.start} is not"
                                    " valid UTF-8)", hint=_FIX) from None
            try:
                doc = load_json(text) if text.strip() else {}
            except ValueError as e:
                raise RegistryError(f"{self.path} is not valid JSON: {e}", hint=_FIX) from None
            self._doc = doc if isinstance(doc, dict) else {}
        return self._doc

    def credentials(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (a ``host[:port]`` as in an image reference)."""
        doc = self._load()
        host = _normalise_key(registry)
        helpers = doc.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if _normalise_key(key) == host and isinstance(helper, str) and helper:
                    return _from_helper(helper, registry, self.helper_timeout)
        store = doc.get("credsStore")
        if isinstance(store, str) and store:
            creds = _from_helper(store, registry, self.helper_timeout)
            if creds is not None:
                return creds
        auths = doc.get("auths") or {}
        if isinstance(auths, dict):
            for key, entry in auths.items():
                if _normalise_key(key) == host and isinstance(entry, dict):
                    creds = _from_entry(entry, str(self.path))
                    if creds is not None:
                        return creds
        return None


def _from_entry(entry: dict[str, Any], where: str) -> Credentials | None:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth + "=" * (-len(auth) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as e:
            raise RegistryError(
                f"{where}: an 'auth' entry is not valid base64 user:password"
            ) from e
        if ":" not in decoded:
            raise RegistryError(f"{where}: an 'auth' entry does not decode to user:password")
        username, password = decoded.split(":", 1)
    token = str(entry.get("identitytoken") or "")
    if not (username and password) and not token:
        return None
    return Credentials(username, password, token, f"{where} auths")


def _from_helper(helper: str, registry: str, timeout: float | None) -> Credentials | None:
    # Imported here: the helper protocol is the one place the registry layer runs a program.
    from polyarch import proc

    if timeout is None:
        timeout = proc.default_timeout()
    program = f"docker-credential-{helper}"
    timed_out = tuple(t for t in (getattr(proc, "CommandTimedOut", None),) if t is not None)
    try:
        # Not checked: a helper answers "no credentials for this registry" with a non-zero
        # exit, told apart from a failure by what it prints (below).
        res = proc.run([program, "get"], input=server_key(registry), check=False, echo=False,
                       timeout=timeout)
    except FatalError as e:
        if not (isinstance(e, timed_out) or "timed out" in e.message):
            raise
        raise HelperTimeout(
            f"credential helper {program} did not answer within {timeout:g} s for {registry}",
            hint=f"check the helper works (echo {server_key(registry)} | {program} get);"
                 " it may be waiting for a password prompt or a locked keychain",
        ) from None
    if res.returncode != 0:
        text = (res.stdout + res.stderr).lower()
        if "not found" in text or "no credentials" in text or not text.strip():
            return None
        raise RegistryError(
            f"credential helper {program} failed for {registry} (exit {res.returncode})",
            hint="check the helper works: echo HOST | " + program + " get",
        )
    try:
        doc = load_json(res.stdout)
    except ValueError as e:
        raise RegistryError(f"credential helper {program} printed something other than JSON") from e
    if not isinstance(doc, dict):
        return None
    user = str(doc.get("Username") or "")
    secret = str(doc.get("Secret") or "")
    if not secret:
        return None
    source = f"credential helper {helper!r}"
    if user == "<token>":
        return Credentials("", "", secret, source)
    return Credentials(user, secret, "", source)
