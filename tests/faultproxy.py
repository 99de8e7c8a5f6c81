"""Test helpers: a fault-injecting HTTP proxy and a throw-away registry process.

FaultProxy
==========

An HTTP/1.1 reverse proxy on a free loopback port, run in threads of the test process,
forwarding to a real registry. Faults are rules consumed in order::

    with FaultProxy("127.0.0.1:5000") as proxy:
        host = proxy.address                      # "127.0.0.1:PORT": use as the registry
        proxy.add(Fault.status(503), times=2)     # the next 2 requests get a 503
        proxy.add(Fault.status(429, retry_after=1), match="/manifests/")
        proxy.add(Fault.drop(), times=3)          # close the connection, no answer
        proxy.add(Fault.reset())                  # TCP RST instead of an answer
        proxy.add(Fault.truncate(1000), method="GET", match="/blobs/sha256:")
                                                  # forward, but cut the body after 1000 B
        proxy.add(Fault.delay(2.0))               # wait, then forward
        proxy.add(Fault.lose())                   # forward, then reset instead of answering
        proxy.add(Fault.hang())                   # never answer (until the proxy closes)
        proxy.add(Fault.hang_after(1000), method="GET", match="/blobs/sha256:")
                                                  # forward, send 1000 B of body, then stall
        proxy.add(Fault.endless(), match="/manifests/")
                                                  # 200, no Content-Length, bytes forever
        proxy.add(Fault.endless(chunked=True))    # the same, chunked
        proxy.add(Fault.drip(2.0), method="GET", match="/blobs/sha256:")
                                                  # forward, but one byte every 2 s
        proxy.add(Fault.drip_headers(1.0))       # headers one byte a second, never ending
        proxy.add(Fault.slow_read(1.0), method="PATCH")
                                                  # take the request body 16 B a second
        proxy.add(Fault.answer(200, b"[[[...", {"Content-Type": "..."}))
                                                  # this answer instead of the registry's
        proxy.add(Fault.status(503), times=None)  # every matching request, until clear()
        proxy.clear()                             # drop all rules
        proxy.log                                 # [Record(method, path, outcome, headers,
                                                  #  began, ended)] in the order answered
        proxy.faults_injected                     # how many requests were faulted

A rule applies to requests whose method equals ``method`` (any when ``None``), whose
path contains ``match`` (a plain substring; ``regex=True`` for a regular expression)
and whose body (its Content-Length) is at least ``min_length`` and at most
``max_length`` bytes.
The first rule with ``times`` left wins; ``times=None`` never runs out.

``FaultProxy(upstream, auth=TokenAuth({"user": "pw"}))`` puts Bearer-token
authentication in front of the registry (``WWW-Authenticate`` challenge, a token
endpoint at ``/token`` taking Basic credentials or an OAuth2 refresh-token grant; tokens
are bound to the scopes they were issued for). ``auth.token_requests`` counts the token
requests. ``redirect_blobs_to=other_proxy.public_url`` answers blob GETs with a 307 to
another origin, whose ``log`` shows which headers arrived there.

Bounded: at most ``max_requests`` (default 10,000) requests are served, each upstream
call has a timeout, and ``close()`` (or leaving the ``with``) stops every thread.

LocalRegistry, TestCA (in ``registries.py``) and the image builders (in
``oci_images.py``) are imported here too, so ``from faultproxy import ...`` finds them.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from oci_images import (  # re-exported: tests import them from here
    LayerFiles,
    Variant,
    image_blobs,
    make_layer,
    push_index,
    write_oci_layout,
)
from registries import LocalRegistry, TestCA, bcrypt_hash, free_port

#: Most bytes an endless answer sends before giving up on the client.
ENDLESS_CAP = 8 * 1024**3

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "drop", "reset", "truncate", "delay", "lose", "hang", "hang_after",
    #            "endless", "drip", "drip_headers", "slow_read", "answer"
    code: int = 0
    retry_after: float | None = None
    after: int = 0
    seconds: float = 0.0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False

    @staticmethod
    def endless(chunked: bool = False, *, code: int = 200,
                content_type: str = "application/vnd.oci.image.index.v1+json") -> Fault:
        """Answer ``code`` without a Content-Length (or chunked) and send bytes until the
        client goes away (at most :data:`ENDLESS_CAP` bytes, so the proxy stays bounded)."""
        return Fault("endless", code=code, chunked=chunked,
                     headers=(("Content-Type", content_type),))

    @staticmethod
    def drip(seconds: float, after: int = 0) -> Fault:
        """Forward the request, send the answer's headers and ``after`` bytes of its body,
        then one byte every ``seconds`` (the connection never stalls for long)."""
        return Fault("drip", seconds=seconds, after=after)

    @staticmethod
    def slow_read(seconds: float) -> Fault:
        """Read the request's body 16 bytes every ``seconds`` and never answer: a
        registry that takes an upload far slower than it is sent."""
        return Fault("slow_read", seconds=seconds)

    @staticmethod
    def drip_headers(seconds: float) -> Fault:
        """Answer with a status line, then a header one byte every ``seconds`` that never
        ends (the answer's headers are never complete)."""
        return Fault("drip_headers", seconds=seconds)

    @staticmethod
    def answer(code: int, body: bytes, headers: dict[str, str] | None = None) -> Fault:
        """Answer with this status, body and headers instead of the registry."""
        return Fault("answer", code=code, body=body, headers=tuple((headers or {}).items()))

    @staticmethod
    def status(code: int, retry_after: float | None = None) -> Fault:
        return Fault("status", code=code, retry_after=retry_after)

    @staticmethod
    def drop() -> Fault:
        return Fault("drop")

    @staticmethod
    def reset() -> Fault:
        return Fault("reset")

    @staticmethod
    def truncate(after: int) -> Fault:
        return Fault("truncate", after=after)

    @staticmethod
    def delay(seconds: float) -> Fault:
        return Fault("delay", seconds=seconds)

    @staticmethod
    def hang() -> Fault:
        """Read the request, then never answer (the connection stays open)."""
        return Fault("hang")

    @staticmethod
    def hang_after(after: int) -> Fault:
        """Forward the request, send the headers and ``after`` bytes of the body, then
        stall with the connection open."""
        return Fault("hang_after", after=after)

    @staticmethod
    def lose() -> Fault:
        """Forward the request (the registry acts on it), then reset the client's
        connection instead of answering: a write that happened but looks failed."""
        return Fault("lose")


@dataclass
class Rule:
    fault: Fault
    times: int | None
    method: str | None
    match: str
    regex: bool
    min_length: int = 0
    max_length: int | None = None

    def applies(self, method: str, path: str, length: int = 0) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        if length < self.min_length or (self.max_length is not None
                                         and length > self.max_length):
            return False
        if self.regex:
            return re.search(self.match, path) is not None
        return self.match in path


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    outcome: str  # "503", "drop", "forwarded 200", ...
    headers: dict[str, str]
    #: time.monotonic() when the request arrived and when it was answered (or faulted).
    began: float = 0.0
    ended: float = 0.0


@dataclass
class TokenAuth:
    """Bearer-token authentication in front of the registry."""

    users: dict[str, str]
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    service: str = "faultproxy"
    token_requests: int = 0
    issued: dict[str, set[str]] = field(default_factory=dict)  # token -> scopes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up on a faulted connection is the point of the exercise,
        # not an error worth a traceback on the test's stderr.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An unparseable request (a TLS ClientHello from a client probing for HTTPS) gets an
    # error with an HTTP status line, as a real registry answers, so that clients fall
    # back to plain HTTP instead of failing on an HTTP/0.9 answer without one.
    default_request_version = "HTTP/1.0"
    server: _Server
    began = 0.0  # when the request being handled arrived (FaultProxy._handle)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.proxy._handle(self)

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET


class FaultProxy:
    def __init__(self, upstream: str, *, auth: TokenAuth | None = None,
                 redirect_blobs_to: str | None = None, max_requests: int = 10_000,
                 host: str = "127.0.0.1", gzip_blobs: bool = False, port: int = 0) -> None:
        self.upstream = upstream
        #: Like a compressing proxy or CDN: blob GETs get ``Content-Encoding: gzip`` when
        #: the client accepts it.
        self.gzip_blobs = gzip_blobs
        self.auth = auth
        self.redirect_blobs_to = redirect_blobs_to
        self.max_requests = max_requests
        self.rules: list[Rule] = []
        self.log: list[Record] = []
        self.faults_injected = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server((host, port), _Handler)  # port 0: a free one
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self.address = f"{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def public_url(self) -> str:
        """This proxy under the name ``localhost`` (another origin than 127.0.0.1)."""
        return f"http://localhost:{self.port}"

    # -- rules -----------------------------------------------------------------------
    def add(self, fault: Fault, *, times: int | None = 1, method: str | None = None,
            match: str = "", regex: bool = False, min_length: int = 0,
            max_length: int | None = None) -> Rule:
        rule = Rule(fault, times, method, match, regex, min_length, max_length)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _pick(self, method: str, path: str, token_endpoint: bool = False,
              kind: str | None = None, length: int = 0) -> Fault | None:
        """The fault of the first rule that applies (``kind``: only rules of that kind;
        without it, every rule but those read before the request body is)."""
        with self._lock:
            for rule in self.rules:
                if token_endpoint and "/token" not in rule.match:
                    continue
                if (rule.fault.kind == "slow_read") != (kind == "slow_read"):
                    continue
                if rule.applies(method, path, length):
                    if rule.times is not None:
                        rule.times -= 1
                    self.faults_injected += 1
                    return rule.fault
        return None

    def _record(self, h: _Handler, outcome: str) -> None:
        with self._lock:
            self.log.append(Record(h.command, h.path, outcome, dict(h.headers.items()),
                                   h.began, time.monotonic()))

    # -- lifecycle ---------------------------------------------------------------------
    def _stall(self) -> None:
        """Hold the connection open without a byte more, until the proxy closes."""
        self._closing.wait(timeout=900)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -----------------------------------------------------------------------
    def _body(self, h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = h.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += h.rfile.read(size)
                h.rfile.readline()
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _send(self, h: _Handler, status: int, body: bytes = b"",
              headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _handle(self, h: _Handler) -> None:
        h.began = time.monotonic()
        declared = h.headers.get("Content-Length") or ""
        length = int(declared) if declared.isdigit() else 0
        slow = self._pick(h.command, h.path, kind="slow_read", length=length)
        if slow is not None:
            self._record(h, "slow_read")
            try:
                while not self._closing.wait(timeout=slow.seconds):
                    if not h.connection.recv(16):
                        break
            except OSError:
                pass
            h.close_connection = True
            return
        body = self._body(h)
        with self._lock:
            over = len(self.log) >= self.max_requests
        if over:
            self._record(h, "refused (max_requests)")
            self._send(h, 503, b"faultproxy: request budget used up")
            return
        token = self.auth is not None and h.path.startswith("/token")
        # The token endpoint is faulted only by rules that name it (match="/token").
        fault = self._pick(h.command, h.path, token_endpoint=token, length=length)
        if token and fault is None:
            self._token(h, body)
            return
        if fault is not None and fault.kind == "status":
            self._record(h, str(fault.code))
            extra = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                extra["Retry-After"] = f"{fault.retry_after:g}"
            err = {"errors": [{"code": "UNAVAILABLE", "message": "injected by faultproxy"}]}
            self._send(h, fault.code, json.dumps(err).encode(), extra)
            return
        if fault is not None and fault.kind in ("drop", "reset"):
            self._record(h, fault.kind)
            if fault.kind == "reset":
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
            h.close_connection = True
            return
        if fault is not None and fault.kind == "endless":
            self._record(h, "endless")
            self._endless(h, fault)
            return
        if fault is not None and fault.kind == "drip_headers":
            self._record(h, "drip_headers")
            try:
                h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                h.wfile.flush()
            except OSError:
                pass
            self._drip(h, b"a" * 1_000_000, fault.seconds)
            return
        if fault is not None and fault.kind == "answer":
            self._record(h, f"answer {fault.code}")
            self._send(h, fault.code, fault.body, dict(fault.headers))
            return
        if fault is not None and fault.kind == "hang":
            self._record(h, "hang")
            self._stall()
            h.close_connection = True
            return
        if fault is not None and fault.kind == "lose":
            host, _, port = self.upstream.partition(":")
            conn = http.client.HTTPConnection(host, int(port or 80), timeout=60)
            headers: dict[str, str] = {}
            for k in dict.fromkeys(h.headers.keys()):
                if k.lower() not in _HOP:
                    headers[k] = ", ".join(h.headers.get_all(k) or [])
            headers["Content-Length"] = str(len(body))
            conn.request(h.command, h.path, body=body, headers=headers)
            conn.getresponse().read()
            conn.close()
            self._record(h, "lose")
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if self.auth is not None and h.path.startswith("/v2/") and not self._authorised(h):
            return
        if (self.redirect_blobs_to and h.command == "GET"
                and re.match(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$", h.path)):
            self._record(h, "307")
            self._send(h, 307, b"", {"Location": self.redirect_blobs_to + h.path})
            return
        cut = (fault.after if fault is not None and fault.kind in ("truncate", "hang_after", "drip")
               else None)
        if fault is not None and fault.kind == "hang_after":
            self._forward(h, body, cut, stall=True)
        elif fault is not None and fault.kind == "drip":
            self._forward(h, body, cut, drip=fault.seconds)
        else:
            self._forward(h, body, cut)

    def _endless(self, h: _Handler, fault: Fault) -> None:
        h.send_response(fault.code)
        for k, v in fault.headers:
            h.send_header(k, v)
        if fault.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = b"[" * 65536
        sent = 0
        try:
            while sent < ENDLESS_CAP and not self._closing.is_set():
                if fault.chunked:
                    h.wfile.write(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    h.wfile.write(block)
                sent += len(block)
        except OSError:
            pass  # the client gave up: the point of the exercise
        h.close_connection = True

    def _drip(self, h: _Handler, rest: bytes, seconds: float) -> None:
        """Send ``rest`` one byte every ``seconds``, until the client or the proxy goes."""
        try:
            for i in range(len(rest)):
                if self._closing.wait(timeout=seconds):
                    break
                h.wfile.write(rest[i:i + 1])
                h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True

    def _forward(self, h: _Handler, body: bytes, truncate: int | None,
                 stall: bool = False, drip: float | None = None) -> None:
        host, _, port = self.upstream.partition(":")
        conn = http.client.HTTPConnection(host, int(port or 80), timeout=60)
        # Repeated headers (docker sends one Accept per media type) are joined, not lost.
        headers: dict[str, str] = {}
        for k in dict.fromkeys(h.headers.keys()):
            if k.lower() not in _HOP:
                headers[k] = ", ".join(h.headers.get_all(k) or [])
        if self.auth is not None:
            headers.pop("Authorization", None)
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(h.command, h.path, body=body if body or h.command in ("PUT", "POST",
                                                                              "PATCH") else None,
                         headers=headers)
            resp = conn.getresponse()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            length = resp.getheader("Content-Length")
            data: bytes | None = None
            if (self.gzip_blobs and h.command == "GET" and "/blobs/sha256:" in h.path
                    and resp.status == 200
                    and "gzip" in h.headers.get("Accept-Encoding", "")):
                import gzip

                data = gzip.compress(resp.read())
                out_headers = [(k, v) for k, v in out_headers
                               if k.lower() not in ("content-length", "content-encoding")]
                out_headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(data)))]
            elif length is None and h.command != "HEAD":
                data = resp.read()
                out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-length"]
                out_headers.append(("Content-Length", str(len(data))))
            self._record(h, f"forwarded {resp.status}" + (
                " stalled" if stall else " truncated" if truncate is not None else ""))
            h.send_response(resp.status)
            for k, v in out_headers:
                h.send_header(k, v)
            h.end_headers()
            if h.command == "HEAD":
                return
            if drip is not None:
                rest = data if data is not None else resp.read()
                cut = truncate or 0
                h.wfile.write(rest[:cut])
                h.wfile.flush()
                self._drip(h, rest[cut:], drip)
                return
            if data is not None and truncate is not None:
                h.wfile.write(data[:truncate])
                h.wfile.flush()
                if stall:
                    self._stall()
                h.close_connection = True
                return
            if data is not None:
                h.wfile.write(data)
                return
            sent = 0
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                if truncate is not None and sent + len(chunk) > truncate:
                    h.wfile.write(chunk[:max(0, truncate - sent)])
                    h.wfile.flush()
                    if stall:
                        self._stall()
                    h.close_connection = True
                    return
                h.wfile.write(chunk)
                sent += len(chunk)
        except (OSError, http.client.HTTPException):
            h.close_connection = True
        finally:
            conn.close()

    # -- token auth --------------------------------------------------------------------
    def _challenge(self, h: _Handler, scope: str) -> None:
        assert self.auth is not None
        realm = f"http://{self.address}/token"
        value = f'Bearer realm="{realm}",service="{self.auth.service}",scope="{scope}"'
        self._record(h, "401")
        err = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        self._send(h, 401, json.dumps(err).encode(),
                   {"WWW-Authenticate": value, "Content-Type": "application/json"})

    def _authorised(self, h: _Handler) -> bool:
        assert self.auth is not None
        m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", h.path)
        if not m:
            return True  # /v2/ itself
        action = "pull" if h.command in ("GET", "HEAD") else "push"
        repo = m.group(1)
        need = f"repository:{repo}:{action}"
        auth = h.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        granted = self.auth.issued.get(token, set())
        ok = any(s.startswith(f"repository:{repo}:") and action in s.split(":")[-1].split(",")
                 for s in granted)
        if not ok:
            self._challenge(h, need)
        return ok

    def _token(self, h: _Handler, body: bytes) -> None:
        assert self.auth is not None
        self.auth.token_requests += 1
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        user = None
        scopes = query.get("scope", [])
        if h.command == "POST":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("grant_type") == ["refresh_token"]:
                user = self.auth.refresh_tokens.get((form.get("refresh_token") or [""])[0])
                scopes = " ".join(form.get("scope", [])).split()
        else:
            auth = h.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                if self.auth.users.get(name) == pw:
                    user = name
        if user is None:
            self._record(h, "token 401")
            self._send(h, 401, b'{"details":"bad credentials"}',
                       {"Content-Type": "application/json"})
            return
        token = secrets.token_hex(16)
        self.auth.issued[token] = set(scopes)
        self._record(h, "token 200")
        self._send(h, 200, json.dumps({"token": token, "expires_in": 300}).encode(),
                   {"Content-Type": "application/json"})


__all__ = [
    "Fault", "FaultProxy", "LayerFiles", "LocalRegistry", "Record", "Rule", "TestCA",
    "TokenAuth", "Variant", "bcrypt_hash", "free_port", "image_blobs", "make_layer",
    "push_index", "write_oci_layout",
]
