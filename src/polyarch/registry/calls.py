"""Calls to the OCI distribution API over :mod:`.transport` and :mod:`.auth`: one
request with authentication, retries and safe redirects (followed here, one hop at a
time, so that each hop goes through the client of its own origin and ``Authorization``
is only sent to the registry), and the errors an answer turns into.

:class:`RegistryCalls` is the base of the protocol's parts (:mod:`.manifests`,
:mod:`.blobs`), which :class:`~polyarch.registry.api.RegistryAPI` joins.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Self
from urllib.parse import urljoin, urlsplit

import httpx

from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry.auth import (
    Authenticator,
    error_doc,
    read_error_body,
    registry_errors,
)
from polyarch.registry.bounded import MAX_BODY
from polyarch.registry.credentials import DockerConfig
from polyarch.registry.transport import (
    Content,
    Deadline,
    Params,
    Transport,
    origin,
)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def error_codes(resp: httpx.Response) -> set[str]:
    doc = error_doc(resp)
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return set()
    return {str(e.get("code")) for e in errs if isinstance(e, dict) and e.get("code")}


class RegistryCalls:
    """The requests of a client for one or several registries (its transport, its
    credentials and tokens); thread-safe."""

    def __init__(self, *, insecure_registries: Iterable[str] = (),
                 docker_config: Path | None = None, retries: int = 5, backoff: float = 0.5,
                 timeout: float | None = None) -> None:
        self.transport = Transport(insecure_registries=insecure_registries, timeout=timeout,
                                   retries=retries, backoff=backoff)
        # A credential helper is a program: it gets the deadline of every short command
        # unless this client was given one of its own.
        self.config = DockerConfig(docker_config, helper_timeout=timeout)
        self.auth = Authenticator(self.transport, self.config)

    # -- lifecycle and counters ----------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def retries(self) -> int:
        return self.transport.retries

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    @property
    def requests_sent(self) -> int:
        return self.transport.requests_sent

    @property
    def token_requests(self) -> int:
        return self.auth.token_requests

    def plain_http(self, registry: str) -> bool:
        """Whether ``registry`` is spoken to over plain HTTP (found out on first use)."""
        return self.transport.scheme(registry) == "http"

    def base_url(self, registry: str) -> str:
        return self.transport.base_url(registry)

    # -- requests ----------------------------------------------------------------------
    def request(self, registry: str, method: str, path: str, *, scopes: list[str],
                headers: dict[str, str] | None = None, content: Content = None,
                params: Params | None = None, stream: bool = False, follow: bool = True,
                what: str = "", deadline: Deadline | None = None,
                limit: int | None = MAX_BODY, sized: bool = False) -> httpx.Response:
        """A distribution API request with authentication, retries and safe redirects.

        ``path`` may also be an absolute URL on the registry (an upload location).
        Raises :class:`RegistryError` for 401 and 403; returns every other response.
        """
        base = self.base_url(registry)
        url = path if path.startswith(("http://", "https://")) else base + path
        reg_origin = origin(base)
        redirects = 0
        while True:
            auth = (self.auth.auth_for(registry, base, scopes)
                    if origin(url) == reg_origin else None)
            resp = self.transport.send(method, url, headers=dict(headers or {}), content=content,
                                       params=params, stream=stream, auth=auth, what=what,
                                       deadline=deadline, limit=limit, sized=sized)
            if resp.status_code == 401 and origin(url) == reg_origin:
                read_error_body(resp)
                raise self.auth_error(registry, method, urlsplit(url).path, resp)
            if resp.status_code == 403:
                read_error_body(resp)
                detail = registry_errors(resp)
                raise RegistryError(
                    f"{registry}: access denied for {method} {urlsplit(url).path}"
                    + (f" ({detail})" if detail else ""),
                    hint="the credentials lack permission for this repository")
            if follow and resp.status_code in _REDIRECTS and "Location" in resp.headers:
                redirects += 1
                resp.close()
                if redirects > 5:
                    raise RegistryError(f"{registry}: too many redirects for {method} {path}")
                url = urljoin(str(resp.url), resp.headers["Location"])
                params = None
                if resp.status_code == 303:
                    method, content = "GET", None
                continue
            return resp

    def auth_error(self, registry: str, method: str, path: str,
                   resp: httpx.Response) -> RegistryError:
        detail = registry_errors(resp)
        extra = f" ({detail})" if detail else ""
        creds = self.auth.credentials(registry)
        if creds is None:
            return RegistryError(
                f"{registry}: authentication required for {method} {path} and no credentials"
                f" for {registry} were found in {self.config.path}{extra}",
                hint=f"run 'docker login {registry}' or set DOCKER_CONFIG")
        return RegistryError(
            f"{registry}: the credentials from {creds.source} were rejected for"
            f" {method} {path}{extra}",
            hint=f"log in again (docker login {registry}) or check the account's permissions")

    def fail(self, ref: ImageRef | str, doing: str, resp: httpx.Response) -> RegistryError:
        read_error_body(resp)
        detail = registry_errors(resp)
        return RegistryError(
            f"{ref}: {doing} failed: HTTP {resp.status_code}" + (f" ({detail})" if detail else ""))

    def ping(self, registry: str) -> None:
        """Check that the registry answers the distribution API (401 counts as an answer)."""
        resp = self.transport.send("GET", self.base_url(registry) + "/v2/", headers={},
                                   what="GET /v2/ (ping)")
        resp.close()
        if resp.status_code not in (200, 401):
            raise RegistryError(f"{registry} does not look like an OCI registry (GET /v2/"
                                f" answered {resp.status_code})")
