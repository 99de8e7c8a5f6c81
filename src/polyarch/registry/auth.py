"""Registry authentication as an ``httpx.Auth``: Basic, or Bearer tokens with a cache.

The first ``401`` from a registry carries a ``WWW-Authenticate`` challenge; it is kept
per registry, so later requests authenticate up front. Bearer tokens are cached per
registry and scope set until shortly before they expire, and fetched once even when
several threads need the same one at the same moment. Credentials come from docker's
``config.json`` (:mod:`.credentials`), read once per registry.

:class:`RegistryAuth` only ever sets ``Authorization`` on requests to the registry's
own origin: a redirect to a storage host goes without it.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from polyarch import redact
from polyarch.errors import EnvironmentProblem, RegistryError
from polyarch.refs import is_loopback_host
from polyarch.registry.credentials import Credentials, DockerConfig, HelperTimeout
from polyarch.registry.media import load_json
from polyarch.registry.transport import Transport, origin


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)


_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> Challenge | None:
    """Parse a ``WWW-Authenticate`` header; the first Bearer or Basic challenge wins."""
    m = re.match(r"([A-Za-z]+)\s*(.*)$", header.strip(), re.S)
    if not m:
        return None
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme not in {"bearer", "basic"}:
        return None
    params: dict[str, str] = {}
    for pm in _PARAM.finditer(rest):
        value = pm.group(2) if pm.group(2) is not None else (pm.group(3) or "")
        params[pm.group(1).lower()] = value.replace('\\"', '"')
    return Challenge(scheme, params)


def scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


#: Bytes of an error body read for its message; the rest is not read.
MAX_ERROR_BODY = 64 * 1024
#: Longest realm URL and token accepted from a registry (real ones are far shorter).
MAX_REALM = 2048
MAX_TOKEN = 64 * 1024
#: Where :func:`read_error_body` keeps what it read (a response extension).
ERROR_BODY = "polyarch.error_body"


def read_error_body(resp: httpx.Response) -> None:
    """Read at most :data:`MAX_ERROR_BODY` bytes of an error answer, then close it.

    What was read is kept for :func:`registry_errors`; a longer body is cut (its
    message is then not shown), never read to its end.
    """
    if resp.is_closed or resp.is_stream_consumed:
        return
    data = bytearray()
    try:
        for chunk in resp.iter_bytes():
            data += chunk
            if len(data) > MAX_ERROR_BODY:
                data.clear()
                break
    except (httpx.TransportError, RegistryError):
        data.clear()  # the error body is not the error being reported
    finally:
        resp.close()
    resp.extensions = {**resp.extensions, ERROR_BODY: bytes(data)}


def error_doc(resp: httpx.Response) -> Any:
    """The JSON document of an error answer (read in full or with :func:`read_error_body`),
    or ``None``."""
    data = resp.extensions.get(ERROR_BODY)
    if not isinstance(data, bytes):
        try:
            data = resp.content
        except httpx.ResponseNotRead:
            return None
    if len(data) > MAX_ERROR_BODY:
        return None
    try:
        return load_json(data)
    except ValueError:
        return None


def registry_errors(resp: httpx.Response) -> str:
    """The ``errors`` of a distribution error body as ``CODE: message`` text."""
    doc = error_doc(resp)
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return ""
    parts = []
    for e in errs:
        if isinstance(e, dict):
            code = str(e.get("code") or "")[:100]
            msg = str(e.get("message") or "")[:300]
            parts.append(f"{code}: {msg}" if code and msg else code or msg)
    return "; ".join(p for p in parts if p)


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class Authenticator:
    """Challenges, credentials and tokens of every registry one client talks to."""

    def __init__(self, transport: Transport, config: DockerConfig) -> None:
        self.transport = transport
        self.config = config
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._token_locks: dict[tuple[str, str], threading.Lock] = {}
        self._creds: dict[str, Credentials | None] = {}
        #: Token requests sent (tests read it).
        self.token_requests = 0

    def credentials(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry in self._creds:
                return self._creds[registry]
        try:
            creds = self.config.credentials(registry)
        except HelperTimeout:
            raise
        except EnvironmentProblem as e:
            raise RegistryError(e.message, hint=e.hint) from e
        if creds is not None:
            # Masked in output, and looked for in the images verified before a push.
            redact.register([creds.password, creds.identity_token])
        with self._lock:
            self._creds[registry] = creds
        return creds

    def learn(self, registry: str, challenge: Challenge, scopes: list[str]) -> None:
        """Remember ``registry``'s challenge; a token it refused is forgotten."""
        with self._lock:
            self._challenges[registry] = challenge
            self._tokens.pop((registry, " ".join(sorted(scopes))), None)

    def header(self, registry: str, scopes: list[str]) -> str | None:
        """The ``Authorization`` value for a request, or ``None`` (no challenge yet)."""
        with self._lock:
            ch = self._challenges.get(registry)
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self.credentials(registry)
            return _basic(creds) if creds is not None and creds.basic is not None else None
        key = (registry, " ".join(sorted(scopes)))
        with self._lock:
            key_lock = self._token_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
            token, ttl = self._fetch_token(registry, ch, scopes)
            with self._lock:
                self._tokens[key] = (token, time.monotonic() + ttl)
        return f"Bearer {token}"

    def _fetch_token(self, registry: str, ch: Challenge, scopes: list[str]) -> tuple[str, float]:
        realm = ch.params.get("realm", "")
        if not realm:
            raise RegistryError(f"{registry} asked for a bearer token but named no token service")
        r_scheme, r_host = origin(realm)
        if len(realm) > MAX_REALM or r_scheme not in ("http", "https") or not r_host:
            shown = realm[:60] + ("..." if len(realm) > 60 else "")
            raise RegistryError(
                f"{registry} names a token service that is not a usable URL"
                f" ({len(realm)} characters: {shown!r})",
                hint="the registry's WWW-Authenticate challenge is malformed; check the"
                     " registry (or a proxy in front of it)")
        creds = self.credentials(registry)
        if r_scheme != "https" and not (is_loopback_host(r_host)
                                        or self.transport.may_use_http(registry)):
            raise RegistryError(
                f"{registry} sends clients to a token service over plain HTTP ({r_host});"
                " refusing to send credentials there"
            )
        service = ch.params.get("service", "")
        all_scopes = list(scopes)
        if ch.params.get("scope") and ch.params["scope"] not in all_scopes:
            all_scopes.append(ch.params["scope"])
        with self._lock:
            self.token_requests += 1
        what = f"token for {registry}"
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "polyarch", "service": service, "scope": " ".join(all_scopes)}
            resp = self.transport.send("POST", realm, headers={}, data=form, what=what)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else [])
            params += [("scope", s) for s in all_scopes]
            headers = ({"Authorization": _basic(creds)}
                       if creds is not None and creds.basic is not None else {})
            resp = self.transport.send("GET", realm, headers=headers, params=params, what=what)
        try:
            doc = self._token_doc(registry, resp, creds)
        finally:
            resp.close()
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{registry}: token service answered without a token")
        if len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
            raise RegistryError(f"{registry}: token service answered with an unusable token"
                                f" ({len(token)} characters)")
        try:
            ttl = float(str(doc.get("expires_in") or 60))
        except (TypeError, ValueError):
            ttl = 60.0
        if not math.isfinite(ttl):
            ttl = 60.0
        return token, min(86_400.0, max(5.0, ttl - 10.0))

    @staticmethod
    def _token_doc(registry: str, resp: httpx.Response, creds: Credentials | None
                   ) -> dict[str, Any]:
        if resp.status_code in (401, 403):
            if creds is None:
                raise RegistryError(f"{registry}: the token service refused anonymous access",
                                    hint=f"log in first (docker login {registry})")
            raise RegistryError(
                f"{registry}: the token service rejected the credentials from {creds.source}",
                hint=f"log in again (docker login {registry})")
        if resp.status_code != 200:
            raise RegistryError(f"{registry}: token service answered {resp.status_code}",
                                detail=registry_errors(resp) or None)
        try:
            doc = load_json(resp.content)
        except ValueError as e:
            raise RegistryError(f"{registry}: token service answered something not JSON"
                                f" ({e})") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{registry}: token service answered without a token")
        return doc

    def auth_for(self, registry: str, base_url: str, scopes: list[str]) -> RegistryAuth:
        return RegistryAuth(self, registry, origin(base_url), scopes)


class RegistryAuth(httpx.Auth):
    """Authenticates one request to ``registry`` for ``scopes``.

    A ``401`` with a challenge is answered once: the request is sent again with the
    credentials the challenge asks for, when its body can be sent again (bytes); a
    streamed body gets the ``401`` back and its sender starts over.
    """

    def __init__(self, auth: Authenticator, registry: str, reg_origin: tuple[str, str],
                 scopes: list[str]) -> None:
        self.auth = auth
        self.registry = registry
        self.origin = reg_origin
        self.scopes = scopes

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(str(request.url)) != self.origin:
            yield request
            return
        header = self.auth.header(self.registry, self.scopes)
        if header:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401:
            return
        ch = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if ch is None:
            return
        self.auth.learn(self.registry, ch, self.scopes)
        if ch.scheme == "basic":
            creds = self.auth.credentials(self.registry)
            if creds is None or creds.basic is None:
                return
        if not isinstance(request.stream, httpx.ByteStream):
            return
        header = self.auth.header(self.registry, self.scopes)
        if header is None:
            return
        request.headers["Authorization"] = header
        yield request
