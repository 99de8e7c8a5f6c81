"""One read interface over a registry reference and an OCI image layout on disk.

``open_source("127.0.0.1:5000/app:1", client)`` and ``open_source("oci:build/app.tar")``
both give an :class:`ImageSource`: the root manifest or index, manifests by digest, and
blobs (whole or streamed, their SHA-256 checked while they pass).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from polyarch.errors import UsageError
from polyarch.refs import ImageRef, ReferenceError, parse_ref
from polyarch.registry.api import RegistryAPI
from polyarch.registry.media import Manifest, descriptor_sizes

if TYPE_CHECKING:
    from polyarch.registry.layout import OCILayout, parse_oci_spec


def __getattr__(name: str) -> Any:
    # OCILayout and parse_oci_spec live in .layout (which loads tarfile); they are still
    # found here, on first use, for code that imports them from this module.
    if name in ("OCILayout", "parse_oci_spec"):
        from polyarch.registry import layout

        return getattr(layout, name)
    raise AttributeError(f"module 'polyarch.registry.source' has no attribute {name!r}")


class ImageSource(Protocol):
    """Read access to one image (an index or a single manifest) and its blobs."""

    #: How to name the source in messages ("127.0.0.1:5000/app:1", "oci:app.tar").
    description: str
    #: The registry reference, when the source is a registry (``None`` for a layout).
    ref: ImageRef | None

    def root(self) -> Manifest: ...

    def manifest(self, digest: str) -> Manifest: ...

    def blob(self, digest: str) -> bytes: ...

    def iter_blob(self, digest: str) -> Iterator[bytes]: ...


class RegistrySource:
    """A registry reference as an :class:`ImageSource`.

    Every manifest it reads tells it the sizes of what that manifest references; a
    child manifest or blob read later must have exactly its descriptor's size (a
    registry cannot send more: the transfer ends at that size).
    """

    def __init__(self, client: RegistryAPI, ref: ImageRef) -> None:
        self.client = client
        self.ref: ImageRef | None = ref
        self._ref = ref
        self.description = str(ref)
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def _learn(self, man: Manifest) -> Manifest:
        sizes = descriptor_sizes(man)
        with self._lock:
            for digest, size in sizes.items():
                self._sizes.setdefault(digest, size)
        return man

    def size_of(self, digest: str) -> int | None:
        """The size a manifest read so far gives for ``digest``."""
        with self._lock:
            return self._sizes.get(digest)

    def root(self) -> Manifest:
        return self._learn(self.client.get_manifest(self._ref))

    def manifest(self, digest: str) -> Manifest:
        return self._learn(self.client.get_manifest(self._ref.untagged().with_digest(digest),
                                                    size=self.size_of(digest)))

    def blob(self, digest: str) -> bytes:
        return self.client.get_blob(self._ref, digest, self.size_of(digest))

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return self.client.stream_blob(self._ref, digest, self.size_of(digest))


def open_source(spec: str | ImageRef, client: RegistryAPI | None = None) -> ImageSource:
    """An :class:`ImageSource` for a registry reference or an ``oci:PATH`` layout."""
    if isinstance(spec, str) and spec.startswith("oci:"):
        from polyarch.registry.layout import OCILayout, parse_oci_spec  # tarfile: on use

        path, name = parse_oci_spec(spec)
        return OCILayout(path, name)
    if isinstance(spec, str):
        try:
            ref = parse_ref(spec)
        except ReferenceError as e:
            raise UsageError(str(e)) from e
    else:
        ref = spec
    if client is None:
        raise UsageError("a registry client is needed to read a registry reference")
    return RegistrySource(client, ref)


__all__ = ["ImageSource", "OCILayout", "RegistrySource", "open_source", "parse_oci_spec"]
