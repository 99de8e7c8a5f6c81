"""One read interface over a registry reference and an OCI image layout on disk.

``open_source("127.0.0.1:5000/app:1", client)`` and ``open_source("oci:build/app.tar")``
both give an :class:`ImageSource`: the root manifest or index, manifests by digest, and
blobs (whole or streamed, their SHA-256 checked while they pass).

An OCI layout is what ``docker buildx build --output type=oci,dest=PATH`` writes: a
``.tar`` archive (the default) or a directory (``tar=false``) holding ``oci-layout``,
``index.json`` and ``blobs/sha256/...``. ``oci:PATH:NAME`` picks the entry of
``index.json`` whose ``org.opencontainers.image.ref.name`` is ``NAME``.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from polyarch.errors import RegistryError, UsageError
from polyarch.refs import ImageRef, ReferenceError, parse_ref
from polyarch.registry.client import RegistryClient
from polyarch.registry.media import INDEX_TYPES, OCI_INDEX, Manifest

REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


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
    def __init__(self, client: RegistryClient, ref: ImageRef) -> None:
        self.client = client
        self.ref: ImageRef | None = ref
        self._ref = ref
        self.description = str(ref)

    def root(self) -> Manifest:
        return self.client.get_manifest(self._ref)

    def manifest(self, digest: str) -> Manifest:
        return self.client.get_manifest(self._ref.untagged().with_digest(digest))

    def blob(self, digest: str) -> bytes:
        return self.client.get_blob(self._ref, digest)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return self.client.stream_blob(self._ref, digest)


class OCILayout:
    """An OCI image layout: a directory or a ``.tar`` archive of one."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name
        self.ref: ImageRef | None = None
        self.description = f"oci:{path}" + (f":{name}" if name else "")
        self._members: dict[str, tarfile.TarInfo] | None = None
        self._lock = threading.Lock()
        if not path.exists():
            raise UsageError(f"{self.description}: no such file or directory")
        if path.is_dir():
            if not (path / "index.json").is_file():
                raise UsageError(f"{self.description}: not an OCI layout (no index.json)")
        else:
            try:
                with tarfile.open(path, "r:") as tf:
                    self._members = {_clean(m.name): m for m in tf.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError) as e:
                raise UsageError(f"{self.description}: not a tar archive ({e})") from e
            if "index.json" not in self._members:
                raise UsageError(f"{self.description}: not an OCI layout (no index.json)")

    # -- files -----------------------------------------------------------------------
    def _open(self, name: str) -> tuple[IO[bytes], int]:
        if self._members is None:
            p = self.path / name
            try:
                return p.open("rb"), p.stat().st_size
            except FileNotFoundError as e:
                raise RegistryError(f"{self.description}: {name} is missing") from e
        info = self._members.get(name)
        if info is None:
            raise RegistryError(f"{self.description}: {name} is missing from the archive")
        f = self.path.open("rb")
        f.seek(info.offset_data)
        return f, info.size

    def _read(self, name: str) -> bytes:
        f, size = self._open(name)
        with f:
            return f.read(size)

    def _blob_name(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise RegistryError(f"{self.description}: unsupported digest {digest}")
        return f"blobs/sha256/{hexd}"

    # -- ImageSource -------------------------------------------------------------------
    def root(self) -> Manifest:
        data = self._read("index.json")
        try:
            doc: Any = json.loads(data)
        except ValueError as e:
            raise RegistryError(f"{self.description}: index.json is not JSON") from e
        manifests = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]
        if self.name is not None:
            hits = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == self.name
                    or (m.get("annotations") or {}).get("io.containerd.image.name", "")
                    .endswith(f":{self.name}")]
            if not hits:
                names = sorted({str((m.get("annotations") or {}).get(REF_NAME))
                                for m in manifests if (m.get("annotations") or {}).get(REF_NAME)})
                raise UsageError(f"{self.description}: no image named {self.name!r}"
                                 + (f" (names: {', '.join(names)})" if names else ""))
            return self.manifest(str(hits[0]["digest"]))
        if len(manifests) == 1 and (manifests[0].get("mediaType") in INDEX_TYPES
                                    or not manifests[0].get("platform")):
            return self.manifest(str(manifests[0]["digest"]))
        # index.json lists platform manifests itself: it is the index.
        return Manifest.from_bytes(data, OCI_INDEX)

    def manifest(self, digest: str) -> Manifest:
        data = self.blob(digest)
        return Manifest.from_bytes(data)

    def blob(self, digest: str) -> bytes:
        return b"".join(self.iter_blob(digest))

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        f, size = self._open(self._blob_name(digest))
        h = hashlib.sha256()
        with f:
            left = size
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    raise RegistryError(f"{self.description}: blob {digest} is truncated")
                left -= len(chunk)
                h.update(chunk)
                yield chunk
        if "sha256:" + h.hexdigest() != digest:
            raise RegistryError(f"{self.description}: blob {digest} does not match its digest")


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def parse_oci_spec(text: str) -> tuple[Path, str | None]:
    """``oci:PATH`` or ``oci:PATH:NAME`` -> (path, name)."""
    body = text[4:] if text.startswith("oci:") else text
    p = Path(body)
    if p.exists() or ":" not in body:
        return p, None
    head, _, name = body.rpartition(":")
    return Path(head), name or None


def open_source(spec: str | ImageRef, client: RegistryClient | None = None) -> ImageSource:
    """An :class:`ImageSource` for a registry reference or an ``oci:PATH`` layout."""
    if isinstance(spec, str) and spec.startswith("oci:"):
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
