"""Blobs in the distribution API: HEAD, a streamed GET whose digest is checked as
the bytes pass (resumed with ``Range`` when the connection drops), and the steps of an
upload (start, or mount from another repository; status; cancel). The resumable upload
itself is :mod:`.upload`."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry.auth import scope
from polyarch.registry.calls import RegistryCalls
from polyarch.registry.media import MAX_MANIFEST
from polyarch.registry.transport import Deadline, describe_transport, origin


class BlobNotFound(RegistryError):
    """The registry has no blob with the digest."""


@dataclass(frozen=True)
class UploadStart:
    """The answer to ``POST .../blobs/uploads/``: mounted, or an upload session."""

    mounted: bool
    location: str | None


class BlobCalls(RegistryCalls):
    """The blob and upload calls of :class:`~polyarch.registry.api.RegistryAPI`."""

    # -- blobs -------------------------------------------------------------------------
    def blob_exists(self, ref: ImageRef, digest: str) -> bool:
        path = f"/v2/{ref.repository}/blobs/{digest}"
        resp = self.request(ref.registry, "HEAD", path, scopes=[scope(ref.repository, "pull")],
                            what=f"HEAD blob {digest[:19]} in {ref.name}")
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(ref.untagged(), f"HEAD blob {digest}", resp)

    def stream_blob(self, ref: ImageRef, digest: str,
                    size: int | None = None) -> Iterator[bytes]:
        """Yield the blob's bytes as they arrive; their SHA-256 is checked as they pass.

        ``size``: the size its descriptor gives. The blob may not have more bytes (the
        transfer ends at once) nor fewer; without it the size is not bounded (the
        caller streams). A transfer slower than the minimum rate ends at the deadline
        (:mod:`.bounded`). A connection lost or stalled in the middle is resumed with a
        ``Range`` request (or by skipping what was already read when the server
        ignores ranges), within the retry budget and the deadline. A digest or size
        mismatch raises :class:`RegistryError` after the last chunk, so a consumer
        must read to the end to have the check.
        """
        want = digest.split(":", 1)
        if len(want) != 2 or want[0] != "sha256":
            raise RegistryError(f"unsupported digest algorithm in {digest}")
        h = hashlib.sha256()
        got = 0
        failures = 0
        path = f"/v2/{ref.repository}/blobs/{digest}"
        what = f"GET blob {digest[:19]} of {ref.name}"
        dl = Deadline(self.timeout)
        while True:
            headers: dict[str, str] = {}
            if got:
                headers["Range"] = f"bytes={got}-"
            # The answer may be the whole blob again (a server that ignores ranges).
            resp = self.request(ref.registry, "GET", path, scopes=[scope(ref.repository, "pull")],
                                headers=headers, stream=True, what=what, deadline=dl,
                                limit=size, sized=size is not None)
            before = got
            try:
                if resp.status_code == 404:
                    raise BlobNotFound(f"{ref.name}: blob {digest} not found")
                if resp.status_code not in (200, 206):
                    raise self.fail(ref.untagged(), f"GET blob {digest}", resp)
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
                    if size is not None and got > size:
                        raise RegistryError(
                            f"{ref.name}: blob {digest} is larger than the {size} bytes its"
                            " descriptor says (a wrong size in the manifest, or a registry"
                            " sending more than it holds)")
                    yield chunk
                break
            except httpx.TransportError as e:
                failures += 1
                if got - before >= dl.min_rate * dl.seconds:
                    # This attempt moved bytes at the minimum rate before it stalled: the
                    # resume gets a full deadline (a dripping one does not).
                    dl.extend()
                wait = self.transport.sleep_for(failures - 1, None)
                if failures > self.retries or dl.remaining() <= wait:
                    raise self.transport.gave_up(
                        "GET", str(resp.url), failures, describe_transport(e), what,
                        dl if dl.remaining() <= wait else None) from e
                time.sleep(wait)
            finally:
                resp.close()
        if size is not None and got != size:
            raise RegistryError(f"{ref.name}: blob {digest} has {got} bytes, its descriptor"
                                f" says {size}")
        if h.hexdigest() != want[1]:
            raise RegistryError(f"{ref.name}: blob {digest} arrived with digest"
                                f" sha256:{h.hexdigest()} (corrupted in storage or in transit)")

    def get_blob(self, ref: ImageRef, digest: str, size: int | None = None) -> bytes:
        """A small blob (a config) whole: exactly ``size`` bytes when given, at most
        :data:`MAX_MANIFEST` otherwise."""
        size_limit = MAX_MANIFEST if size is None or size > MAX_MANIFEST else size
        out = bytearray()
        for chunk in self.stream_blob(ref, digest, size):
            out += chunk
            if len(out) > size_limit:
                raise RegistryError(f"{ref.name}: blob {digest} is larger than"
                                    f" {size_limit} bytes, too large to read whole")
        return bytes(out)

    # -- uploads -----------------------------------------------------------------------
    def start_upload(self, dst: ImageRef, *, mount: str | None = None,
                     from_repository: str | None = None) -> UploadStart:
        """``POST .../blobs/uploads/``, optionally as a cross-repository mount."""
        path = f"/v2/{dst.repository}/blobs/uploads/"
        scopes = [scope(dst.repository, "pull,push")]
        what = f"start upload to {dst.name}"
        if mount and from_repository:
            path += f"?mount={mount}&from={from_repository}"
            scopes.append(scope(from_repository, "pull"))
            what = f"mount blob {mount[:19]} into {dst.name}"
        resp = self.request(dst.registry, "POST", path, scopes=scopes, content=b"",
                            follow=False, what=what)
        resp.close()
        if resp.status_code == 201 and mount:
            return UploadStart(True, None)
        if resp.status_code == 202 and "Location" in resp.headers:
            return UploadStart(False, self.upload_url(dst, resp))
        if mount and resp.status_code in (400, 404, 405):
            return UploadStart(False, None)
        raise self.fail(dst.untagged(), "mount blob" if mount else "start blob upload", resp)

    def upload_url(self, ref: ImageRef, resp: httpx.Response) -> str:
        loc = urljoin(str(resp.url), resp.headers["Location"])
        if origin(loc) != origin(self.base_url(ref.registry)):
            raise RegistryError(f"{ref.registry}: upload location on another host ({loc})")
        return loc

    def cancel_upload(self, ref: ImageRef, location: str) -> None:
        with contextlib.suppress(RegistryError):
            self.request(ref.registry, "DELETE", location,
                         scopes=[scope(ref.repository, "pull,push")], follow=False,
                         what="cancel upload").close()

    def upload_offset(self, ref: ImageRef, location: str) -> tuple[int, str] | None:
        """How many bytes the upload at ``location`` holds, and its current location.

        ``None`` when the registry no longer knows the upload (start over).
        """
        resp = self.request(ref.registry, "GET", location,
                            scopes=[scope(ref.repository, "pull,push")], follow=False,
                            what=f"upload status in {ref.name}")
        resp.read()
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code not in (200, 204):
            raise self.fail(ref.untagged(), "upload status", resp)
        loc = self.upload_url(ref, resp) if "Location" in resp.headers else location
        m = re.match(r"^(?:bytes=)?0-(\d+)$", resp.headers.get("Range", "").strip())
        # "0-N" means N+1 bytes held; distribution also says "0-0" for an empty upload,
        # so "0-0" is read as 0 (at worst one byte is sent again and refused with 416).
        held = int(m.group(1)) + 1 if m and int(m.group(1)) > 0 else 0
        return held, loc

    def mount_blob(self, dst: ImageRef, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of the same registry; ``False`` if refused."""
        start = self.start_upload(dst, mount=digest, from_repository=from_repository)
        if start.location is not None:
            self.cancel_upload(dst, start.location)
        return start.mounted

    def check_push_access(self, ref: ImageRef) -> None:
        """Raise :class:`RegistryError` unless we may push to ``ref``'s repository.

        Starts a blob upload (the cheapest write the API has) and cancels it.
        """
        start = self.start_upload(ref)
        if start.location is not None:
            self.cancel_upload(ref, start.location)
