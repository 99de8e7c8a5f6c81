"""The OCI distribution API over :mod:`.transport` and :mod:`.auth`.

:class:`RegistryAPI` speaks the protocol itself: manifests and tags
(:mod:`.manifests`), blobs (HEAD, streamed GET resumed with ``Range``), cross-repository
mounts and the steps of a blob upload (:mod:`.blobs`), each request made by
:mod:`.calls` (authentication, retries, redirects followed one hop at a time, so that
``Authorization`` is only sent to the registry).
"""

from __future__ import annotations

from polyarch.registry.blobs import BlobCalls
from polyarch.registry.manifests import ManifestCalls


class RegistryAPI(ManifestCalls, BlobCalls):
    """A client for one or several registries; thread-safe, share one per command."""
