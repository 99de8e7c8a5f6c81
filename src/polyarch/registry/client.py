"""An OCI distribution client on httpx.

Layers, from the bottom:

* :meth:`RegistryClient._send` sends one request and retries it on connection errors,
  ``429`` and ``5xx`` with exponential backoff, honouring ``Retry-After``, within a
  bounded budget (``retries`` extra attempts); past it, a :class:`RegistryError`.
* :meth:`RegistryClient._request` adds authentication (``WWW-Authenticate`` Bearer
  tokens cached per scope, or Basic) and redirects (the ``Authorization`` header is
  never sent to another host than the one it was made for).
* The public methods speak the distribution API: manifests, tags, blobs, uploads.

Plain HTTP is used only for loopback registries and the ones named in
``insecure_registries``; every other registry is spoken to over TLS, verified.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import random
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpx

from polyarch import __version__
from polyarch.errors import EnvironmentProblem, RegistryError
from polyarch.refs import DOCKER_HUB, DOCKER_HUB_API, ImageRef, is_loopback_host
from polyarch.registry.credentials import Credentials, DockerConfig
from polyarch.registry.media import (
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    NON_DISTRIBUTABLE,
    Manifest,
    sha256_digest,
)

#: Largest manifest we accept (the distribution default limit is 4 MiB).
MAX_MANIFEST = 4 * 1024 * 1024
#: Longest ``Retry-After`` we wait for before giving up.
MAX_RETRY_AFTER = 60.0
#: Longest single backoff sleep.
MAX_BACKOFF = 8.0
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Content = bytes | Callable[[], IO[bytes]] | None


class ManifestNotFound(RegistryError):
    """The registry has no manifest for the reference."""


class BlobNotFound(RegistryError):
    """The registry has no blob with the digest."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)


_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> Challenge | None:
    """Parse a ``WWW-Authenticate`` header; the first Bearer or Basic challenge wins."""
    text = header.strip()
    m = re.match(r"([A-Za-z]+)\s*(.*)$", text, re.S)
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


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _registry_errors(resp: httpx.Response) -> str:
    """The ``errors`` of a distribution error body as ``CODE: message`` text."""
    try:
        doc = resp.json()
    except (ValueError, httpx.ResponseNotRead):
        return ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return ""
    parts = []
    for e in errs:
        if isinstance(e, dict):
            code = str(e.get("code") or "")
            msg = str(e.get("message") or "")
            parts.append(f"{code}: {msg}" if code and msg else code or msg)
    return "; ".join(p for p in parts if p)


def _error_codes(resp: httpx.Response) -> set[str]:
    try:
        doc = resp.json()
    except (ValueError, httpx.ResponseNotRead):
        return set()
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return set()
    return {str(e.get("code")) for e in errs if isinstance(e, dict) and e.get("code")}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _is_loopback_host(host: str) -> bool:
    return is_loopback_host(host)


def _scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


class RegistryClient:
    """A client for one or several registries; thread-safe, reuse it for a whole command."""

    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        docker_config: Path | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.insecure = {self._norm_host(h) for h in insecure_registries}
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.config = DockerConfig(docker_config)
        self._client_args: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            "follow_redirects": False,
            "limits": httpx.Limits(max_connections=32, max_keepalive_connections=16),
            "headers": {"User-Agent": f"polyarch/{__version__}"},
        }
        # Loading the trusted certificates takes tens of milliseconds: plain-HTTP requests
        # (loopback and insecure registries) go through a client whose TLS context trusts
        # nothing, and the verifying client is made on the first https:// request.
        self._plain = httpx.Client(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
                                   **self._client_args)
        self._tls: httpx.Client | None = None
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._token_locks: dict[tuple[str, str], threading.Lock] = {}
        self._creds: dict[str, Credentials | None] = {}
        #: Number of HTTP requests sent (tests and benchmarks read it).
        self.requests_sent = 0
        #: Number of token requests sent.
        self.token_requests = 0

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()

    def _http(self, url: str) -> httpx.Client:
        if url[:7].lower() == "http://":
            return self._plain
        with self._lock:
            if self._tls is None:
                self._tls = httpx.Client(**self._client_args)
            return self._tls

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addressing ----------------------------------------------------------------
    @staticmethod
    def _norm_host(host: str) -> str:
        h = host.strip().lower()
        for scheme in ("https://", "http://"):
            if h.startswith(scheme):
                h = h[len(scheme):]
        return h.rstrip("/")

    def plain_http(self, registry: str) -> bool:
        """Whether ``registry`` is spoken to over plain HTTP (loopback or insecure)."""
        return _is_loopback_host(registry) or self._norm_host(registry) in self.insecure

    def base_url(self, registry: str) -> str:
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        return f"{'http' if self.plain_http(registry) else 'https'}://{host}"

    # -- credentials and tokens ----------------------------------------------------
    def _credentials(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry in self._creds:
                return self._creds[registry]
        try:
            creds = self.config.credentials(registry)
        except EnvironmentProblem as e:
            raise RegistryError(e.message, hint=e.hint) from e
        with self._lock:
            self._creds[registry] = creds
        return creds

    def _auth_header(self, registry: str, scopes: list[str]) -> str | None:
        with self._lock:
            ch = self._challenges.get(registry)
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self._credentials(registry)
            if creds is None or creds.basic is None:
                return None
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        key = (registry, " ".join(sorted(scopes)))
        with self._lock:
            key_lock = self._token_locks.setdefault(key, threading.Lock())
        # One token request per scope even when many threads need it at once.
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
        r_scheme, r_host = _origin(realm)
        creds = self._credentials(registry)
        if r_scheme != "https" and not (_is_loopback_host(r_host) or self.plain_http(registry)):
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
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "polyarch",
                "service": service,
                "scope": " ".join(all_scopes),
            }
            resp = self._send("POST", realm, headers={}, data=form, what=f"token for {registry}")
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else [])
            params += [("scope", s) for s in all_scopes]
            headers: dict[str, str] = {}
            if creds is not None and creds.basic is not None:
                raw = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
            resp = self._send("GET", realm, headers=headers, params=params,
                              what=f"token for {registry}")
        try:
            resp.read()
            if resp.status_code in (401, 403):
                if creds is None:
                    raise RegistryError(
                        f"{registry}: the token service refused anonymous access",
                        hint=f"log in first (docker login {registry})",
                    )
                raise RegistryError(
                    f"{registry}: the token service rejected the credentials from {creds.source}",
                    hint=f"log in again (docker login {registry})",
                )
            if resp.status_code != 200:
                raise RegistryError(
                    f"{registry}: token service answered {resp.status_code}",
                    detail=_registry_errors(resp) or None,
                )
            try:
                doc = resp.json()
            except ValueError as e:
                raise RegistryError(f"{registry}: token service answered something not JSON") from e
        finally:
            resp.close()
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{registry}: token service answered without a token")
        try:
            ttl = float(str(doc.get("expires_in") or 60))
        except (TypeError, ValueError):
            ttl = 60.0
        return token, max(5.0, ttl - 10.0)

    # -- transport ------------------------------------------------------------------
    def _sleep_for(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(MAX_BACKOFF, self.backoff * (2.0**attempt))
        return base * random.uniform(0.75, 1.25)

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        content: Content = None,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        data: dict[str, str] | None = None,
        stream: bool = False,
        what: str = "",
    ) -> httpx.Response:
        """One request, retried on transport errors, 429 and 5xx within the budget."""
        attempt = 0
        last = ""
        while True:
            body: bytes | IO[bytes] | None
            body = content() if callable(content) else content
            try:
                http = self._http(url)
                req = http.build_request(
                    method, url, headers=headers, content=body, params=params, data=data
                )
                with self._lock:
                    self.requests_sent += 1
                resp = http.send(req, stream=stream)
            except httpx.TransportError as e:
                last = _describe_transport(e)
                retry_after = None
            else:
                if resp.status_code not in _RETRY_STATUS:
                    return resp
                retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
                last = f"HTTP {resp.status_code}"
                if retry_after is not None:
                    last += f" (Retry-After: {resp.headers.get('Retry-After')})"
                resp.close()
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise self._gave_up(method, url, attempt + 1, last, what)
            finally:
                if body is not None and not isinstance(body, bytes):
                    body.close()
            if attempt >= self.retries:
                raise self._gave_up(method, url, attempt + 1, last, what)
            time.sleep(self._sleep_for(attempt, retry_after))
            attempt += 1

    def _gave_up(self, method: str, url: str, attempts: int, last: str, what: str) -> RegistryError:
        _, host = _origin(url)
        path = urlsplit(url).path
        doing = what or f"{method} {path}"
        return RegistryError(
            f"registry {host}: {doing} failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''} (last: {last})",
            hint="the registry is unreachable or overloaded; try again later",
        )

    def _request(
        self,
        registry: str,
        method: str,
        path: str,
        *,
        scopes: list[str],
        headers: dict[str, str] | None = None,
        content: Content = None,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        stream: bool = False,
        follow: bool = True,
        what: str = "",
    ) -> httpx.Response:
        """A distribution API request with authentication and safe redirects.

        Raises :class:`RegistryError` for 401 and 403 (after authenticating), returns
        every other response to the caller.
        """
        url = self.base_url(registry) + path
        auth_origin = _origin(url)
        authed_once = False
        redirects = 0
        while True:
            hdrs = dict(headers or {})
            if _origin(url) == auth_origin:
                auth = self._auth_header(registry, scopes)
                if auth:
                    hdrs["Authorization"] = auth
            resp = self._send(method, url, headers=hdrs, content=content, params=params,
                              stream=stream, what=what)
            if resp.status_code == 401 and _origin(url) == auth_origin:
                header = resp.headers.get("WWW-Authenticate", "")
                resp.read()
                detail = _registry_errors(resp)
                resp.close()
                ch = parse_challenge(header)
                creds = self._credentials(registry)
                if ch is not None and not authed_once:
                    with self._lock:
                        known = self._challenges.get(registry)
                        self._challenges[registry] = ch
                        if known is not None and known.scheme == "bearer":
                            # A cached token that no longer works: forget it.
                            self._tokens.pop((registry, " ".join(sorted(scopes))), None)
                    if ch.scheme == "bearer" or (creds is not None and creds.basic is not None):
                        authed_once = True
                        continue
                raise self._auth_error(registry, method, path, creds, detail)
            if resp.status_code == 403:
                resp.read()
                detail = _registry_errors(resp)
                resp.close()
                raise RegistryError(
                    f"{registry}: access denied for {method} {path}"
                    + (f" ({detail})" if detail else ""),
                    hint="the credentials lack permission for this repository",
                )
            if follow and resp.status_code in _REDIRECTS and "Location" in resp.headers:
                redirects += 1
                if redirects > 5:
                    resp.close()
                    raise RegistryError(f"{registry}: too many redirects for {method} {path}")
                url = urljoin(str(resp.url), resp.headers["Location"])
                params = None
                resp.close()
                if resp.status_code == 303:
                    method, content = "GET", None
                continue
            return resp

    def _auth_error(self, registry: str, method: str, path: str, creds: Credentials | None,
                    detail: str) -> RegistryError:
        extra = f" ({detail})" if detail else ""
        if creds is None:
            return RegistryError(
                f"{registry}: authentication required for {method} {path} and no credentials"
                f" for {registry} were found in {self.config.path}{extra}",
                hint=f"run 'docker login {registry}' or set DOCKER_CONFIG",
            )
        return RegistryError(
            f"{registry}: the credentials from {creds.source} were rejected for"
            f" {method} {path}{extra}",
            hint=f"log in again (docker login {registry}) or check the account's permissions",
        )

    # -- generic API ------------------------------------------------------------------
    def ping(self, registry: str) -> None:
        """Check that the registry answers the distribution API (401 counts as an answer)."""
        resp = self._send("GET", self.base_url(registry) + "/v2/", headers={},
                          what="GET /v2/ (ping)")
        resp.close()
        if resp.status_code not in (200, 401):
            raise RegistryError(
                f"{registry} does not look like an OCI registry (GET /v2/ answered"
                f" {resp.status_code})"
            )

    def _fail(self, ref: ImageRef | str, doing: str, resp: httpx.Response) -> RegistryError:
        if not resp.is_closed:
            resp.read()
        detail = _registry_errors(resp)
        return RegistryError(
            f"{ref}: {doing} failed: HTTP {resp.status_code}" + (f" ({detail})" if detail else "")
        )

    def get_manifest(self, ref: ImageRef) -> Manifest:
        """The manifest or index at ``ref`` (its digest checked when ``ref`` has one)."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        resp = self._request(ref.registry, "GET", path, scopes=[_scope(ref.repository, "pull")],
                             headers={"Accept": MANIFEST_ACCEPT}, what=f"GET manifest {ref}")
        if resp.status_code == 404:
            raise ManifestNotFound(f"{ref}: no such manifest in {ref.registry}",
                                   hint="check the repository, tag and digest")
        if resp.status_code != 200:
            raise self._fail(ref, "GET manifest", resp)
        data = resp.content
        if len(data) > MAX_MANIFEST:
            raise RegistryError(f"{ref}: manifest larger than {MAX_MANIFEST} bytes")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        man = Manifest.from_bytes(data, ctype or None)
        if ref.digest and ref.digest.startswith("sha256:") and man.digest != ref.digest:
            raise RegistryError(
                f"{ref}: the registry returned a manifest with digest {man.digest},"
                " not the one asked for"
            )
        return man

    def head_manifest(self, ref: ImageRef) -> str | None:
        """The digest at ``ref``, or ``None`` when there is no such manifest."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        resp = self._request(ref.registry, "HEAD", path, scopes=[_scope(ref.repository, "pull")],
                             headers={"Accept": MANIFEST_ACCEPT}, what=f"HEAD manifest {ref}")
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(ref, "HEAD manifest", resp)
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return str(digest)
        try:
            return self.get_manifest(ref).digest
        except ManifestNotFound:
            return None

    def put_manifest(self, ref: ImageRef, data: bytes, media_type: str) -> str:
        """Store a manifest under ``ref.tag`` (or by digest when ``ref`` has no tag)."""
        digest = sha256_digest(data)
        reference = ref.tag or digest
        if ref.digest and not ref.tag and ref.digest != digest:
            raise RegistryError(f"{ref}: manifest bytes have digest {digest}, not {ref.digest}")
        path = f"/v2/{ref.repository}/manifests/{reference}"
        resp = self._request(ref.registry, "PUT", path,
                             scopes=[_scope(ref.repository, "pull,push")],
                             headers={"Content-Type": media_type}, content=data,
                             what=f"PUT manifest {ref.name}:{reference}")
        resp.close()
        if resp.status_code not in (200, 201, 202):
            raise self._fail(ref, "PUT manifest", resp)
        got = resp.headers.get("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"{ref}: registry stored the manifest as {got}, expected {digest}")
        return digest

    def delete_manifest(self, ref: ImageRef) -> bool:
        """Delete the tag (``ref.tag``) or the manifest (``ref.digest``) ``ref`` names.

        A tag is deleted by tag, never by resolving it to a digest (deleting a digest
        removes every tag that points at it). Returns ``False`` when the registry does
        not support the deletion (as the distribution registry 2.x does for tags).
        Deleting something that is not there counts as done.
        """
        # A tag wins over a digest: deleting a digest removes every tag pointing at it.
        reference = ref.tag or ref.digest
        if not reference:
            raise RegistryError(f"{ref}: nothing to delete (no tag or digest)")
        path = f"/v2/{ref.repository}/manifests/{reference}"
        resp = self._request(ref.registry, "DELETE", path,
                             scopes=[_scope(ref.repository, "pull,push,delete")],
                             headers={"Accept": MANIFEST_ACCEPT}, what=f"DELETE manifest {ref}")
        resp.read()
        resp.close()
        if resp.status_code in (200, 202, 204):
            return True
        codes = _error_codes(resp)
        if resp.status_code == 404 and codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}:
            return True
        if resp.status_code in (400, 404, 405) or "UNSUPPORTED" in codes:
            return False
        raise self._fail(ref, "DELETE manifest", resp)

    def list_tags(self, ref: ImageRef) -> list[str]:
        """All tags of ``ref``'s repository (empty when the repository does not exist)."""
        tags: list[str] = []
        path = f"/v2/{ref.repository}/tags/list?n=1000"
        for _ in range(10_000):
            resp = self._request(ref.registry, "GET", path,
                                 scopes=[_scope(ref.repository, "pull")],
                                 what=f"GET tags of {ref.name}")
            if resp.status_code == 404:
                resp.close()
                return tags
            if resp.status_code != 200:
                raise self._fail(ref.untagged(), "list tags", resp)
            doc = resp.json()
            page = doc.get("tags") if isinstance(doc, dict) else None
            tags.extend(str(t) for t in page or [])
            link = resp.headers.get("Link", "")
            m = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", link)
            if not m:
                break
            nxt = m.group(1)
            path = urlsplit(nxt).path + ("?" + urlsplit(nxt).query if urlsplit(nxt).query else "")
        return tags

    # -- blobs ----------------------------------------------------------------------------
    def blob_exists(self, ref: ImageRef, digest: str) -> bool:
        path = f"/v2/{ref.repository}/blobs/{digest}"
        resp = self._request(ref.registry, "HEAD", path, scopes=[_scope(ref.repository, "pull")],
                             what=f"HEAD blob {digest[:19]} in {ref.name}")
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self._fail(ref.untagged(), f"HEAD blob {digest}", resp)

    def stream_blob(self, ref: ImageRef, digest: str) -> Iterator[bytes]:
        """Yield the blob's bytes as they arrive; their SHA-256 is checked as they pass.

        A connection lost in the middle is resumed with a ``Range`` request (or by
        skipping what was already read when the server ignores ranges), within the
        retry budget. A digest mismatch raises :class:`RegistryError` after the last
        chunk, so a consumer must read to the end to have the check.
        """
        want = digest.split(":", 1)
        if len(want) != 2 or want[0] != "sha256":
            raise RegistryError(f"unsupported digest algorithm in {digest}")
        h = hashlib.sha256()
        got = 0
        failures = 0
        path = f"/v2/{ref.repository}/blobs/{digest}"
        while True:
            # identity: the digest is of the blob's bytes, not of a transfer encoding a
            # proxy or CDN might otherwise apply (httpx asks for gzip by default).
            headers = {"Accept-Encoding": "identity"}
            if got:
                headers["Range"] = f"bytes={got}-"
            resp = self._request(ref.registry, "GET", path,
                                 scopes=[_scope(ref.repository, "pull")], headers=headers,
                                 stream=True, what=f"GET blob {digest[:19]} of {ref.name}")
            try:
                if resp.status_code == 404:
                    raise BlobNotFound(f"{ref.name}: blob {digest} not found")
                if resp.status_code not in (200, 206):
                    raise self._fail(ref.untagged(), f"GET blob {digest}", resp)
                skip = got if resp.status_code == 200 else 0
                for chunk in resp.iter_raw():
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    h.update(chunk)
                    got += len(chunk)
                    yield chunk
                break
            except httpx.TransportError as e:
                failures += 1
                if failures > self.retries:
                    raise self._gave_up("GET", str(resp.url), failures,
                                        _describe_transport(e),
                                        f"GET blob {digest[:19]} of {ref.name}") from e
                time.sleep(self._sleep_for(failures - 1, None))
            finally:
                resp.close()
        if h.hexdigest() != want[1]:
            raise RegistryError(
                f"{ref.name}: blob {digest} arrived with digest sha256:{h.hexdigest()}"
                " (corrupted in storage or in transit)"
            )

    def get_blob(self, ref: ImageRef, digest: str) -> bytes:
        return b"".join(self.stream_blob(ref, digest))

    def mount_blob(self, dst: ImageRef, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of the same registry; ``False`` if refused."""
        path = f"/v2/{dst.repository}/blobs/uploads/?mount={digest}&from={from_repository}"
        resp = self._request(dst.registry, "POST", path,
                             scopes=[_scope(dst.repository, "pull,push"),
                                     _scope(from_repository, "pull")],
                             content=b"", follow=False,
                             what=f"mount blob {digest[:19]} into {dst.name}")
        resp.close()
        if resp.status_code == 201:
            return True
        if resp.status_code == 202 and "Location" in resp.headers:
            self._cancel_upload(dst, resp)
            return False
        if resp.status_code in (400, 404, 405):
            return False
        raise self._fail(dst.untagged(), "mount blob", resp)

    def _cancel_upload(self, ref: ImageRef, resp: httpx.Response) -> None:
        loc = urljoin(str(resp.url), resp.headers["Location"])
        parts = urlsplit(loc)
        if _origin(loc) != _origin(self.base_url(ref.registry)):
            return
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        with contextlib.suppress(RegistryError):
            self._request(ref.registry, "DELETE", target,
                          scopes=[_scope(ref.repository, "pull,push")],
                          what="cancel upload").close()

    def upload_blob(self, ref: ImageRef, digest: str, data: bytes | Path) -> None:
        """Upload a blob (POST, then one PUT with the content) unless it is there already."""
        if self.blob_exists(ref, digest):
            return
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        content: Content
        if isinstance(data, bytes):
            content = data
        else:
            path_ = data

            def content() -> IO[bytes]:
                return path_.open("rb")

        for attempt in range(3):
            resp = self._request(ref.registry, "POST", f"/v2/{ref.repository}/blobs/uploads/",
                                 scopes=[_scope(ref.repository, "pull,push")], content=b"",
                                 follow=False, what=f"start upload to {ref.name}")
            resp.close()
            if resp.status_code != 202 or "Location" not in resp.headers:
                raise self._fail(ref.untagged(), "start blob upload", resp)
            loc = urljoin(str(resp.url), resp.headers["Location"])
            parts = urlsplit(loc)
            if _origin(loc) != _origin(self.base_url(ref.registry)):
                raise RegistryError(f"{ref.registry}: upload location on another host ({loc})")
            query = f"{parts.query}&digest={digest}" if parts.query else f"digest={digest}"
            resp = self._request(ref.registry, "PUT", f"{parts.path}?{query}",
                                 scopes=[_scope(ref.repository, "pull,push")],
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(size)},
                                 content=content, follow=False,
                                 what=f"upload blob {digest[:19]} to {ref.name}")
            resp.read()
            resp.close()
            if resp.status_code in (201, 204):
                return
            codes = _error_codes(resp)
            if attempt < 2 and (codes & {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID",
                                         "DIGEST_INVALID"}):
                # A half-written upload after a lost connection: start over.
                continue
            raise self._fail(ref.untagged(), f"upload blob {digest}", resp)

    def check_push_access(self, ref: ImageRef) -> None:
        """Raise :class:`RegistryError` unless we may push to ``ref``'s repository.

        Starts a blob upload (the cheapest write the API has) and cancels it.
        """
        resp = self._request(ref.registry, "POST", f"/v2/{ref.repository}/blobs/uploads/",
                             scopes=[_scope(ref.repository, "pull,push")], content=b"",
                             follow=False, what=f"check push access to {ref.name}")
        resp.close()
        if resp.status_code in (202, 201):
            if "Location" in resp.headers:
                self._cancel_upload(ref, resp)
            return
        raise self._fail(ref.untagged(), "check push access", resp)

    # -- copying --------------------------------------------------------------------------
    def copy_image(self, src: ImageRef, dst: ImageRef) -> str:
        """Copy the index or manifest at ``src`` with everything it references to ``dst``.

        Blobs are mounted when both are on one registry, otherwise streamed through a
        temporary file. The root is stored under ``dst.tag`` when ``dst`` has one,
        otherwise by digest only. Returns the root's digest (the same as at ``src``).
        """
        root = self.get_manifest(src)
        children: list[str] = []
        if root.is_index:
            for desc in root.json.get("manifests") or []:
                if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
                    children.append(desc["digest"])
        with ThreadPoolExecutor(max_workers=4) as pool:
            for child in children:
                man = self.get_manifest(src.with_digest(child))
                if man.media_type in INDEX_TYPES:
                    raise RegistryError(f"{src}: nested indexes are not supported")
                self._copy_blobs(src, dst, man, pool)
                self.put_manifest(dst.untagged().with_digest(man.digest), man.data,
                                  man.media_type)
            if not root.is_index:
                self._copy_blobs(src, dst, root, pool)
        target = dst.with_tag(dst.tag) if dst.tag else dst.untagged().with_digest(root.digest)
        return self.put_manifest(target, root.data, root.media_type)

    def _copy_blobs(self, src: ImageRef, dst: ImageRef, man: Manifest,
                    pool: ThreadPoolExecutor) -> None:
        doc = man.json
        descs: list[dict[str, Any]] = []
        if isinstance(doc.get("config"), dict):
            descs.append(doc["config"])
        descs += [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        digests = []
        for d in descs:
            if d.get("mediaType") in NON_DISTRIBUTABLE or d.get("urls"):
                continue
            if isinstance(d.get("digest"), str) and d["digest"] not in digests:
                digests.append(d["digest"])
        for f in [pool.submit(self._copy_blob, src, dst, dg) for dg in digests]:
            f.result()

    def _copy_blob(self, src: ImageRef, dst: ImageRef, digest: str) -> None:
        if (src.registry, src.repository) == (dst.registry, dst.repository):
            return
        if self.blob_exists(dst, digest):
            return
        if src.registry == dst.registry and self.mount_blob(dst, digest, src.repository):
            return
        with tempfile.TemporaryDirectory(prefix="polyarch-blob-") as tmp:
            path = Path(tmp) / "blob"
            with path.open("wb") as f:
                for chunk in self.stream_blob(src, digest):
                    f.write(chunk)
            self.upload_blob(dst, digest, path)


def _describe_transport(e: httpx.TransportError) -> str:
    text = str(e) or type(e).__name__
    if isinstance(e, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(e, httpx.TimeoutException):
        return f"timed out: {text}"
    if isinstance(e, httpx.RemoteProtocolError):
        return f"connection dropped: {text}"
    return f"{type(e).__name__}: {text}"


__all__ = [
    "BlobNotFound",
    "Challenge",
    "ManifestNotFound",
    "RegistryClient",
    "parse_challenge",
]
