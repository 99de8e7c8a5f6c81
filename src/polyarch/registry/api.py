"""The OCI distribution API over :mod:`.transport` and :mod:`.auth`.

:class:`RegistryAPI` speaks the protocol itself: manifests, tags, blobs (HEAD, streamed
GET resumed with ``Range``), cross-repository mounts and the steps of a blob upload.
Redirects are followed here, one hop at a time, so that each hop goes through the
client of its own origin and ``Authorization`` is only sent to the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry.auth import (
    Authenticator,
    error_doc,
    read_error_body,
    registry_errors,
    scope,
)
from polyarch.registry.bounded import MAX_BODY
from polyarch.registry.credentials import DockerConfig
from polyarch.registry.media import MANIFEST_ACCEPT, MAX_MANIFEST, Manifest, load_json, sha256_digest
from polyarch.registry.transport import (
    Content,
    Deadline,
    Params,
    Transport,
    describe_transport,
    origin,
)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ManifestNotFound(RegistryError):
    """The registry has no manifest for the reference."""


class BlobNotFound(RegistryError):
    """The registry has no blob with the digest."""


@dataclass(frozen=True)
class UploadStart:
    """The answer to ``POST .../blobs/uploads/``: mounted, or an upload session."""

    mounted: bool
    location: str | None


def error_codes(resp: httpx.Response) -> set[str]:
    doc = error_doc(resp)
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return set()
    return {str(e.get("code")) for e in errs if isinstance(e, dict) and e.get("code")}


class RegistryAPI:
    """A client for one or several registries; thread-safe, share one per command."""

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

    def __enter__(self) -> RegistryAPI:
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

    # -- manifests and tags ------------------------------------------------------------
    def get_manifest(self, ref: ImageRef, size: int | None = None) -> Manifest:
        """The manifest or index at ``ref`` (its digest checked when ``ref`` has one).

        ``size``: the size its descriptor gives; the answer must have exactly that many
        bytes. Without it the answer is bounded by :data:`MAX_MANIFEST`.
        """
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        limit = MAX_MANIFEST if size is None else max(0, min(size, MAX_MANIFEST))
        resp = self.request(ref.registry, "GET", path, scopes=[scope(ref.repository, "pull")],
                            headers={"Accept": MANIFEST_ACCEPT}, what=f"GET manifest {ref}",
                            limit=limit, sized=size is not None and size <= MAX_MANIFEST)
        if resp.status_code == 404:
            raise ManifestNotFound(f"{ref}: no such manifest in {ref.registry}",
                                   hint="check the repository, tag and digest")
        if resp.status_code != 200:
            raise self.fail(ref, "GET manifest", resp)
        data = resp.content
        if size is not None and len(data) != size:
            raise RegistryError(f"{ref}: the manifest has {len(data)} bytes, its descriptor"
                                f" says {size}")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        man = Manifest.from_bytes(data, ctype or None)
        if ref.digest and ref.digest.startswith("sha256:") and man.digest != ref.digest:
            raise RegistryError(f"{ref}: the registry returned a manifest with digest"
                                f" {man.digest}, not the one asked for")
        return man

    def head_manifest(self, ref: ImageRef) -> str | None:
        """The digest at ``ref``, or ``None`` when there is no such manifest."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        resp = self.request(ref.registry, "HEAD", path, scopes=[scope(ref.repository, "pull")],
                            headers={"Accept": MANIFEST_ACCEPT}, what=f"HEAD manifest {ref}")
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.fail(ref, "HEAD manifest", resp)
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
        resp = self.request(ref.registry, "PUT", path, scopes=[scope(ref.repository, "pull,push")],
                            headers={"Content-Type": media_type}, content=data,
                            what=f"PUT manifest {ref.name}:{reference}")
        resp.close()
        if resp.status_code not in (200, 201, 202):
            raise self.fail(ref, "PUT manifest", resp)
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
        reference = ref.tag or ref.digest
        if not reference:
            raise RegistryError(f"{ref}: nothing to delete (no tag or digest)")
        path = f"/v2/{ref.repository}/manifests/{reference}"
        resp = self.request(ref.registry, "DELETE", path,
                            scopes=[scope(ref.repository, "pull,push,delete")],
                            headers={"Accept": MANIFEST_ACCEPT}, what=f"DELETE manifest {ref}")
        resp.read()
        resp.close()
        if resp.status_code in (200, 202, 204):
            return True
        codes = error_codes(resp)
        if resp.status_code == 404 and codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}:
            return True
        if resp.status_code in (400, 404, 405) or "UNSUPPORTED" in codes:
            return False
        raise self.fail(ref, "DELETE manifest", resp)

    def list_tags(self, ref: ImageRef) -> list[str]:
        """All tags of ``ref``'s repository (empty when the repository does not exist)."""
        tags: list[str] = []
        path = f"/v2/{ref.repository}/tags/list?n=1000"
        for _ in range(10_000):
            resp = self.request(ref.registry, "GET", path, scopes=[scope(ref.repository, "pull")],
                                what=f"GET tags of {ref.name}")
            if resp.status_code == 404:
                resp.close()
                return tags
            if resp.status_code != 200:
                raise self.fail(ref.untagged(), "list tags", resp)
            try:
                doc = load_json(resp.content)
            except ValueError as e:
                raise RegistryError(f"{ref.name}: the tag list is not JSON ({e})") from None
            page = doc.get("tags") if isinstance(doc, dict) else None
            if isinstance(page, list):
                tags.extend(t for t in page if isinstance(t, str))
            m = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", resp.headers.get("Link", ""))
            if not m:
                break
            nxt = urlsplit(m.group(1))
            path = nxt.path + ("?" + nxt.query if nxt.query else "")
        return tags

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
