""":class:`RegistryClient`: the one registry client a command holds.

It is the distribution API (:class:`~polyarch.registry.api.RegistryAPI`: manifests,
tags, blobs) plus the operations built on it: resumable blob uploads, copies between
repositories and pushes of an OCI layout. Its HTTP connections, TLS contexts,
challenges and token cache (per registry and scope) are shared by every thread that
uses it, so one client serves a whole command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from polyarch.refs import ImageRef
from polyarch.registry import copy, push, upload
from polyarch.registry.api import BlobNotFound, ManifestNotFound, RegistryAPI
from polyarch.registry.auth import Challenge, parse_challenge
from polyarch.registry.layout import BlobLocation, OCILayout


class RegistryClient(RegistryAPI):
    """A client for one or several registries; thread-safe, reuse it for a whole command."""

    def __enter__(self) -> RegistryClient:
        return self

    def upload_blob(self, ref: ImageRef, digest: str, data: bytes | Path | BlobLocation) -> str:
        """Make the blob exist in ``ref``'s repository; returns "exists" or "uploaded"."""
        if isinstance(data, Path):
            data = BlobLocation(data, 0, data.stat().st_size)
        return upload.upload_blob(self, ref, digest, data).action

    def copy_image(self, src: ImageRef, dst: ImageRef) -> str:
        return copy.copy_image(self, src, dst)

    def push_layout(self, layout: OCILayout, repo: ImageRef, *, root_digest: str | None = None,
                    mount_from: Sequence[str] = (), jobs: int = 4,
                    progress: Callable[[push.PushEvent], None] | None = None) -> push.PushResult:
        return push.push_layout(self, layout, repo, root_digest=root_digest,
                                mount_from=mount_from, jobs=jobs, progress=progress)

    def pull_layout(self, ref: ImageRef, dest: Path) -> Path:
        return copy.pull_layout(self, ref, dest)


__all__ = ["BlobNotFound", "Challenge", "ManifestNotFound", "RegistryClient", "parse_challenge"]
