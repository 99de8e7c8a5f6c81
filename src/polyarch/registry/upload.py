"""Blob uploads that survive a dropped connection.

A blob is sent in chunks (``PATCH`` with ``Content-Range``, then ``PUT ?digest=`` with
the last chunk); a blob that fits in one chunk goes in a single ``PUT``. When a request
fails (connection dropped or stalled, ``429``, ``5xx``), the upload asks the registry
how much it holds (``GET`` on the upload location, ``Range: 0-N``) and goes on from
there; an upload the registry has forgotten starts again. Failures count against the
client's retry budget and its deadline, which moves on with every chunk accepted.

Data comes from bytes or from a :class:`~polyarch.registry.layout.BlobLocation`
(streamed from disk, never loaded whole).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx

from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry.api import RegistryAPI
from polyarch.registry.auth import scope
from polyarch.registry.calls import error_codes
from polyarch.registry.layout import BlobLocation
from polyarch.registry.transport import (
    MAX_RETRY_AFTER,
    RETRY_STATUS,
    Deadline,
    describe_transport,
    parse_retry_after,
)

#: Bytes per upload request (the last one may be larger than the others are not).
DEFAULT_CHUNK = 16 * 1024 * 1024
_RESTART_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "DIGEST_INVALID",
                            "SIZE_INVALID", "RANGE_INVALID"})

BlobData = bytes | BlobLocation


@dataclass(frozen=True)
class UploadOutcome:
    #: "exists" (the registry had it), "mounted" (from another repository), "uploaded".
    action: str
    #: Bytes the registry accepted from us.
    sent: int = 0


def _size(data: BlobData) -> int:
    return len(data) if isinstance(data, bytes) else data.size


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={digest}"


def blob_known(api: RegistryAPI, ref: ImageRef, digest: str) -> bool:
    """Whether ``ref``'s repository holds ``digest`` (a ``HEAD``). A registry that keeps
    answering with a server error (5xx) until the retries run out does not know either:
    the blob is then sent, and its upload writes what the question could not read (a
    registry stopped in the middle of a push can leave a repository's link to a blob
    damaged, and answer 500 for it until the blob is pushed again). Any other failure
    is raised."""
    try:
        return api.blob_exists(ref, digest)
    except RegistryError as e:
        if e.server_error is None:
            raise
        return False


def upload_blob(api: RegistryAPI, ref: ImageRef, digest: str, data: BlobData, *,
                mount_from: Sequence[str] = (), check_exists: bool = True,
                chunk_size: int = DEFAULT_CHUNK,
                on_bytes: Callable[[int], None] | None = None) -> UploadOutcome:
    """Make ``digest`` exist in ``ref``'s repository: found, mounted, or uploaded."""
    if check_exists and blob_known(api, ref, digest):
        return UploadOutcome("exists")
    location: str | None = None
    sources = [r for r in dict.fromkeys(mount_from) if r != ref.repository]
    for i, repo in enumerate(sources):
        start = api.start_upload(ref, mount=digest, from_repository=repo)
        if start.mounted:
            return UploadOutcome("mounted")
        if start.location is not None:
            if i == len(sources) - 1:
                location = start.location  # the refused mount's session carries the upload
            else:
                api.cancel_upload(ref, start.location)
    sent = _Upload(api, ref, digest, data, max(1, chunk_size), on_bytes).run(location)
    return UploadOutcome("uploaded", sent)


class _Upload:
    def __init__(self, api: RegistryAPI, ref: ImageRef, digest: str, data: BlobData,
                 chunk_size: int, on_bytes: Callable[[int], None] | None) -> None:
        self.api = api
        self.t = api.transport
        self.ref = ref
        self.digest = digest
        self.data = data
        self.size = _size(data)
        self.chunk = chunk_size
        self.on_bytes = on_bytes
        self.deadline = Deadline(self.t.timeout)
        self.failures = 0
        self.sent = 0
        self.what = f"upload blob {digest[:19]} to {ref.name}"

    def _body(self, offset: int, n: int) -> bytes | Iterator[bytes]:
        if isinstance(self.data, bytes):
            return self.data[offset:offset + n]
        # Each piece is counted as the connection takes it (.bounded): a registry that
        # reads it slower than the minimum rate ends the upload at the deadline.
        return self.data.read(offset, n)

    def _accepted(self, n: int) -> None:
        self.sent += n
        self.deadline.extend()
        if self.on_bytes is not None and n:
            self.on_bytes(n)

    def _failed(self, url: str, last: str, retry_after: float | None = None) -> None:
        """Count a failure; wait before the next try, or give up past budget/deadline."""
        self.failures += 1
        wait = self.t.sleep_for(self.failures - 1, retry_after)
        if (self.failures > self.t.retries
                or (retry_after is not None and retry_after > MAX_RETRY_AFTER)):
            raise self.t.gave_up("PATCH", url, self.failures, last, self.what)
        if self.deadline.remaining() <= wait:
            raise self.t.gave_up("PATCH", url, self.failures, last, self.what, self.deadline)
        time.sleep(wait)

    def _check_local_digest(self) -> None:
        """The registry says the bytes do not match the digest: are ours right?"""
        h = hashlib.sha256()
        if isinstance(self.data, bytes):
            h.update(self.data)
        else:
            for chunk in self.data.read():
                h.update(chunk)
        if "sha256:" + h.hexdigest() != self.digest:
            where = "" if isinstance(self.data, bytes) else f" in {self.data.path}"
            raise RegistryError(
                f"blob {self.digest}{where} does not match its digest (corrupted on disk);"
                " nothing of it was stored",
                hint="rebuild the image or the layout")

    def _resync(self, location: str, offset: int) -> tuple[str | None, int]:
        """Where the upload stands after a failed request: (location or None, offset)."""
        status = self.api.upload_offset(self.ref, location)
        if status is None:
            return None, 0
        held, loc = status
        if held > offset:
            self._accepted(held - offset)
        if held > self.size:
            return None, 0
        return loc, held

    def run(self, location: str | None) -> int:
        api, ref = self.api, self.ref
        scopes = [scope(ref.repository, "pull,push")]
        base = api.base_url(ref.registry)
        offset = 0
        while True:
            if location is None:
                start = api.start_upload(ref)
                if start.location is None:  # pragma: no cover - start_upload raises instead
                    raise RegistryError(f"{ref.name}: the registry gave no upload location")
                location, offset = start.location, 0
            final = self.size - offset <= self.chunk
            n = self.size - offset if final else self.chunk
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(n)}
            if final:
                method, url = "PUT", _with_digest(location, self.digest)
            else:
                method, url = "PATCH", location
                headers["Content-Range"] = f"{offset}-{offset + n - 1}"
            try:
                resp = self.t.send_once(method, url, headers=headers,
                                        content=self._body(offset, n),
                                        auth=api.auth.auth_for(ref.registry, base, scopes),
                                        deadline=self.deadline, what=self.what)
                resp.read()
                resp.close()
            except httpx.TransportError as e:
                self._failed(url, describe_transport(e))
                if final and api.blob_exists(ref, self.digest):
                    # The last request arrived; only its answer was lost.
                    self._accepted(n)
                    return self.sent
                location, offset = self._resync(location, offset)
                continue
            code = resp.status_code
            if final and code in (201, 204):
                self._accepted(n)
                return self.sent
            if not final and code == 202:
                self._accepted(n)
                location = api.upload_url(ref, resp) if "Location" in resp.headers else location
                offset += n
                continue
            if code == 403:
                raise RegistryError(f"{ref.registry}: access denied for {method} to {ref.name}",
                                    hint="the credentials lack push permission for this repository")
            if code in RETRY_STATUS or code == 401:
                header = resp.headers.get("Retry-After")
                last = f"HTTP {code}" + (f" (Retry-After: {header})" if header else "")
                self._failed(url, last, parse_retry_after(header))
                location, offset = self._resync(location, offset)
                continue
            codes = error_codes(resp)
            if "DIGEST_INVALID" in codes:
                self._check_local_digest()
            if code == 416 or (code in (400, 404) and codes & _RESTART_CODES):
                self._failed(url, f"HTTP {code} ({', '.join(sorted(codes)) or 'no error code'})")
                if final and api.blob_exists(ref, self.digest):
                    return self.sent
                api.cancel_upload(ref, location)
                location = None
                continue
            raise api.fail(ref.untagged(), f"upload blob {self.digest}", resp)
