"""HTTP transport for registries: scheme choice, TLS trust, deadlines and retries.

* **Scheme.** A registry is spoken to over HTTPS, verified (:mod:`.trust`). Loopback
  registries (``127.0.0.0/8``, ``::1``, ``localhost``) and those named as insecure
  (``--insecure-registry``) may also be plain HTTP, in docker's order: HTTPS first,
  plain HTTP when the server does not speak TLS. Which one is found once per registry
  with a bare TLS handshake (no trust store loaded, no HTTP request). A loopback
  registry that speaks TLS is verified; an insecure one is not (as docker does).
* **TLS.** One ``httpx.Client`` per HTTPS host, built on first use with that host's
  trust; one for plain HTTP. A certificate or handshake failure is a
  :class:`RegistryError` at once, never retried.
* **Deadlines.** Every request has timeouts; one operation (a request with its
  retries) ends within ``timeout`` seconds (default 60, ``POLYARCH_REGISTRY_TIMEOUT``)
  of its start unless bytes are flowing at the minimum rate (:mod:`.bounded`): a
  stalled transfer ends after ``timeout`` seconds without a byte, a dripping one once
  it stays below the rate for ``timeout`` seconds, and no retry starts past the deadline.
* **Sizes.** Every answer's body is bounded while it streams (:mod:`.bounded`): 4 MiB
  unless the request names another limit (a blob: its descriptor's size).
* **Retries.** Connection errors, timeouts, 408/425/429/5xx are retried with
  exponential backoff (honouring ``Retry-After`` up to 60 s), at most ``retries`` times.
  A registry that has not answered this transport yet and refuses connections (nothing
  listens at that host and port: a typo, a registry not started) is given
  :data:`FIRST_CONTACT` seconds to start listening, not the whole budget; one that
  answered before and now refuses (restarting) gets the whole budget, and so does one
  reached through a proxy (whose refusal says nothing of the registry).
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO
from urllib.parse import urlsplit

import httpx

from polyarch import __version__
from polyarch.errors import RegistryError
from polyarch.refs import DOCKER_HUB, DOCKER_HUB_API, is_loopback_host
from polyarch.registry import trust
from polyarch.registry.bounded import MAX_BODY, Deadline, GuardedTransport, extensions
from polyarch.registry.timeout import DEFAULT_TIMEOUT, TIMEOUT_ENV, default_timeout

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY", "TIMEOUT_ENV", "Deadline", "default_timeout"]
#: Longest ``Retry-After`` we wait for before giving up.
MAX_RETRY_AFTER = 60.0
#: Longest single backoff sleep.
MAX_BACKOFF = 8.0
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Seconds a registry that refuses connections, and has not answered this transport
#: yet, is retried (one being started); the last attempt is made at this time.
FIRST_CONTACT = 4.0

Content = bytes | Callable[[], IO[bytes] | Iterable[bytes]] | None
Params = list[tuple[str, str | int | float | bool | None]]


def environment_proxies() -> dict[str, str | None]:
    """URL pattern -> proxy URL (None: no proxy) from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY
    and NO_PROXY, exactly as httpx reads them for a client it builds itself."""
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:  # pragma: no cover - httpx moved it; fall back to the basics
        from urllib.request import getproxies

        found = getproxies()
        return {f"{k}://": v if "://" in v else f"http://{v}" for k, v in found.items()
                if k in ("http", "https", "all") and v}
    return get_environment_proxies()


def proxied(url: str) -> bool:
    """Whether a request to ``url`` goes through a proxy from the environment (matched
    as httpx matches it: the most specific pattern first)."""
    found = environment_proxies()
    if not any(found.values()):
        return False
    try:
        from httpx._utils import URLPattern
    except ImportError:  # pragma: no cover - httpx moved it: assume it does
        return True
    target = httpx.URL(url)
    for pattern in sorted(URLPattern(p) for p in found):
        if pattern.matches(target):
            return found[pattern.pattern] is not None
    return False


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    import email.utils  # an HTTP date is rare; most registries send seconds

    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_transport(e: httpx.TransportError) -> str:
    text = str(e) or type(e).__name__
    if isinstance(e, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(e, httpx.TimeoutException):
        return f"timed out: no answer within the deadline ({type(e).__name__})"
    if isinstance(e, httpx.RemoteProtocolError):
        return f"connection dropped: {text}"
    return f"{type(e).__name__}: {text}"


def refused(e: BaseException) -> bool:
    """Whether ``e`` (or what caused it) is a refused connection: nothing listens."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def split_host_port(hostport: str, default: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` -> (host, port)."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default
    host, sep, port = hostport.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return hostport, default


def norm_host(host: str) -> str:
    h = host.strip().lower()
    for scheme in ("https://", "http://"):
        if h.startswith(scheme):
            h = h[len(scheme):]
    return h.rstrip("/")


class Transport:
    """Sends requests to registries; thread-safe, one per client."""

    def __init__(self, *, insecure_registries: Iterable[str] = (), timeout: float | None = None,
                 retries: int = 5, backoff: float = 0.5) -> None:
        self.insecure = {norm_host(h) for h in insecure_registries}
        self.timeout = default_timeout() if timeout is None else float(timeout)
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._trusted: dict[str, str] = {}
        self._schemes: dict[str, str] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        #: Hosts (``host:port``) that answered a request of this transport.
        self._answered: set[str] = set()
        #: Requests sent (tests and benchmarks read it).
        self.requests_sent = 0

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    # -- addressing ------------------------------------------------------------------
    def is_insecure(self, registry: str) -> bool:
        return norm_host(registry) in self.insecure

    def may_use_http(self, registry: str) -> bool:
        return is_loopback_host(registry) or self.is_insecure(registry)

    def host(self, registry: str) -> str:
        return DOCKER_HUB_API if registry == DOCKER_HUB else registry

    def scheme(self, registry: str) -> str:
        """``http`` or ``https`` for ``registry``, found out on first use (see module)."""
        if not self.may_use_http(registry):
            return "https"
        with self._lock:
            known = self._schemes.get(registry)
            probe_lock = self._probe_locks.setdefault(registry, threading.Lock())
        if known:
            return known
        with probe_lock:  # one probe per registry, however many threads ask at once
            with self._lock:
                known = self._schemes.get(registry)
            if known:
                return known
            found = self._probe(registry)
            if found is None:
                return "http" if not self.is_insecure(registry) else "https"
            with self._lock:
                self._schemes[registry] = found
        return found

    def base_url(self, registry: str) -> str:
        return f"{self.scheme(registry)}://{self.host(registry)}"

    def _probe(self, registry: str) -> str | None:
        """Does ``registry`` speak TLS? A TLS handshake tells, without an HTTP request.

        The handshake uses a bare context that verifies nothing and loads no trust
        store: it only finds out whether the server answers TLS at all. ``None`` when
        the registry cannot be reached (nothing is remembered then).
        """
        host, port = split_host_port(self.host(registry), 443)
        try:
            sock = socket.create_connection((host, port), timeout=min(self.timeout, 10.0))
        except OSError:
            return None
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(sock, server_hostname=host):
                return "https"
        except ssl.SSLError as e:
            # A plain-HTTP server answers the ClientHello with an HTTP error page.
            return "http" if trust.not_tls(e) else "https"
        except OSError:
            return None
        finally:
            sock.close()

    # -- clients ---------------------------------------------------------------------
    def _client(self, scheme: str, host: str) -> httpx.Client:
        key = (scheme, host if scheme == "https" else "")
        with self._lock:
            c = self._clients.get(key)
        if c is not None:
            return c
        verify: ssl.SSLContext | bool
        if scheme == "https":
            registry = DOCKER_HUB if host == DOCKER_HUB_API else host
            verify, what = trust.context_for(host, verify=not self.is_insecure(registry))
        else:
            verify, what = False, "plain HTTP"
        # Every answer is bounded in size and rate below the client (.bounded), and
        # asked for unencoded: a body is never expanded past its limit.
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        guarded = GuardedTransport(verify=verify, limits=limits)
        # A client given its transport ignores HTTP(S)_PROXY/NO_PROXY: the same proxies
        # httpx would use are mounted here, each with a guarded transport of its own.
        mounts: dict[str, httpx.BaseTransport | None] = {
            pattern: None if url is None else GuardedTransport(
                verify=verify, limits=limits, proxy=httpx.Proxy(url))
            for pattern, url in environment_proxies().items()}
        c = httpx.Client(transport=guarded, mounts=mounts, follow_redirects=False,
                         headers={"User-Agent": f"polyarch/{__version__}",
                                  "Accept-Encoding": "identity"})
        with self._lock:
            if key in self._clients:
                c.close()
                return self._clients[key]
            self._clients[key] = c
            self._trusted[host] = what
        return c

    def client_for(self, url: str) -> httpx.Client:
        scheme, netloc = origin(url)
        return self._client(scheme, netloc)

    # -- sending ---------------------------------------------------------------------
    def sleep_for(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(MAX_BACKOFF, self.backoff * (2.0**attempt))
        return base * random.uniform(0.75, 1.25)

    def tls_error(self, url: str, e: httpx.TransportError) -> RegistryError | None:
        """A certificate/handshake failure behind ``e`` (never worth retrying), or None."""
        err = trust.find_ssl_error(e)
        if err is None:
            return None
        _, netloc = origin(url)
        with self._lock:
            trusted = self._trusted.get(netloc, "the system trust store")
        return trust.tls_failure(netloc, err, trusted)

    def send_once(self, method: str, url: str, *, headers: dict[str, str],
                  content: bytes | IO[bytes] | Iterable[bytes] | None = None,
                  params: Params | None = None, data: dict[str, str] | None = None,
                  stream: bool = False, auth: httpx.Auth | None = None,
                  deadline: Deadline | None = None, limit: int | None = MAX_BODY,
                  what: str = "", sized: bool = False) -> httpx.Response:
        """One request, no retries; TLS failures become :class:`RegistryError`.

        The answer's body is bounded (:mod:`.bounded`): ``limit`` bytes (``None``: no size
        limit, for a blob of unknown size) and the minimum rate over ``deadline``.
        """
        client = self.client_for(url)
        dl = deadline or Deadline(self.timeout)
        req = client.build_request(method, url, headers=headers, content=content, params=params,
                                   data=data, timeout=dl.timeout(),
                                   extensions=extensions(limit, dl, what or f"{method} "
                                                         f"{urlsplit(url).path}", sized))
        with self._lock:
            self.requests_sent += 1
        try:
            resp = client.send(req, stream=stream, auth=auth)
        except httpx.TransportError as e:
            tls = self.tls_error(url, e)
            if tls is not None:
                raise tls from None
            raise
        with self._lock:
            self._answered.add(origin(url)[1])
        return resp

    def send(self, method: str, url: str, *, headers: dict[str, str], content: Content = None,
             params: Params | None = None, data: dict[str, str] | None = None,
             stream: bool = False, auth: httpx.Auth | None = None, what: str = "",
             deadline: Deadline | None = None, limit: int | None = MAX_BODY,
             sized: bool = False) -> httpx.Response:
        """One request, retried on transport errors, 429 and 5xx within budget and deadline."""
        dl = deadline or Deadline(self.timeout)
        attempt = 0
        t0 = time.monotonic()
        while True:
            body = content() if callable(content) else content
            retry_after: float | None = None
            status: int | None = None  # of the last answer, when it was one
            nobody = False  # nothing listens, and nothing answered there before
            try:
                resp = self.send_once(method, url, headers=headers, content=body, params=params,
                                      data=data, stream=stream, auth=auth, deadline=dl,
                                      limit=limit, what=what, sized=sized)
            except httpx.TransportError as e:
                last = describe_transport(e)
                with self._lock:
                    nobody = refused(e) and origin(url)[1] not in self._answered
                nobody = nobody and not proxied(url)
            else:
                if resp.status_code not in RETRY_STATUS:
                    return resp
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                status = resp.status_code
                last = f"HTTP {resp.status_code}"
                if retry_after is not None:
                    last += f" (Retry-After: {resp.headers.get('Retry-After')})"
                resp.close()
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise self.gave_up(method, url, attempt + 1, last, what)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            wait = self.sleep_for(attempt, retry_after)
            if nobody and time.monotonic() + wait - t0 > FIRST_CONTACT:
                # The last attempt is made at the end of the window, not before it.
                wait = t0 + FIRST_CONTACT - time.monotonic()
                if wait <= 0:
                    raise self.nobody_listens(method, url, attempt + 1, last, what)
            if attempt >= self.retries:
                raise self.gave_up(method, url, attempt + 1, last, what, status=status)
            if dl.remaining() <= wait:
                raise self.gave_up(method, url, attempt + 1, last, what, dl, status=status)
            time.sleep(wait)
            attempt += 1

    def nobody_listens(self, method: str, url: str, attempts: int, last: str,
                       what: str) -> RegistryError:
        _, host = origin(url)
        doing = what or f"{method} {urlsplit(url).path}"
        plural = "s" if attempts != 1 else ""
        return RegistryError(
            f"registry {host}: {doing} failed: nothing listens there ({attempts}"
            f" attempt{plural}; last: {last})",
            hint="is the registry running, and are its host and port right?")

    def gave_up(self, method: str, url: str, attempts: int, last: str, what: str,
                deadline: Deadline | None = None, *, status: int | None = None
                ) -> RegistryError:
        _, host = origin(url)
        doing = what or f"{method} {urlsplit(url).path}"
        plural = "s" if attempts != 1 else ""
        if deadline is not None:
            spent = time.monotonic() - deadline.start
            err = RegistryError(
                f"registry {host}: {doing} failed after {attempts} attempt{plural} in"
                f" {spent:.0f} s, the deadline (last: {last})",
                hint=f"the registry stopped answering; {TIMEOUT_ENV}=SECONDS sets the deadline"
                     f" (now {self.timeout:g} s)",
            )
        else:
            err = RegistryError(
                f"registry {host}: {doing} failed after {attempts} attempt{plural} (last:"
                f" {last})", hint="the registry is unreachable or overloaded; try again later")
        if status is not None and status >= 500:
            err.server_error = status
        return err
