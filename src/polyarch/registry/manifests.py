"""Manifests and tags in the distribution API: GET (bounded, digest checked), HEAD,
PUT, DELETE (a tag by tag, never by its digest) and the tag list, page by page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry.auth import scope
from polyarch.registry.calls import RegistryCalls, error_codes
from polyarch.registry.media import MANIFEST_ACCEPT, MAX_MANIFEST, Manifest, load_json, sha256_digest


class ManifestNotFound(RegistryError):
    """The registry has no manifest for the reference."""


class ManifestCalls(RegistryCalls):
    """The manifest and tag calls of :class:`~polyarch.registry.api.RegistryAPI`."""

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
