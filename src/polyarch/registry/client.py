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
from typing import TYPE_CHECKING

from polyarch.refs import ImageRef
from polyarch.registry.api import RegistryAPI
from polyarch.registry.auth import Challenge, parse_challenge
from polyarch.registry.blobs import BlobNotFound
from polyarch.registry.manifests import ManifestNotFound

if TYPE_CHECKING:
    from polyarch.registry.layout import BlobLocation, OCILayout
    from polyarch.registry.push import PushEvent, PushResult

# The modules below are imported when their operation is first used (they import
# nothing of this one): a command that only reads manifests never loads them.


class RegistryClient(RegistryAPI):
    """A client for one or several registries; thread-safe, reuse it for a whole command."""

    def __enter__(self) -> RegistryClient:
        return self

    def upload_blob(self, ref: ImageRef, digest: str, data: bytes | Path | BlobLocation) -> str:
        """Make the blob exist in ``ref``'s repository; returns "exists" or "uploaded"."""
        from polyarch.registry import upload
        from polyarch.registry.layout import BlobLocation

        if isinstance(data, Path):
            data = BlobLocation(data, 0, data.stat().st_size)
        return upload.upload_blob(self, ref, digest, data).action

    def copy_image(self, src: ImageRef, dst: ImageRef) -> str:
        from polyarch.registry import copy

        return copy.copy_image(self, src, dst)

    def push_layout(self, layout: OCILayout, repo: ImageRef, *, root_digest: str | None = None,
                    mount_from: Sequence[str] = (), jobs: int = 4,
                    progress: Callable[[PushEvent], None] | None = None,
                    bases: Sequence[ImageRef] = ()) -> PushResult:
        from polyarch.registry import push

        return push.push_layout(self, layout, repo, root_digest=root_digest,
                                mount_from=mount_from, jobs=jobs, progress=progress,
                                bases=bases)

    def pull_layout(self, ref: ImageRef, dest: Path) -> Path:
        from polyarch.registry import copy

        return copy.pull_layout(self, ref, dest)


__all__ = ["BlobNotFound", "Challenge", "ManifestNotFound", "RegistryClient", "parse_challenge"]
