"""Reading an OCI image layout: a directory or a ``.tar`` archive of one.

A layout is what ``docker buildx build --output type=oci,dest=PATH`` writes: a ``.tar``
archive (the default) or a directory (``tar=false``) holding ``oci-layout``,
``index.json`` and ``blobs/sha256/...``. ``oci:PATH:NAME`` picks the entry of
``index.json`` whose ``org.opencontainers.image.ref.name`` is ``NAME``.

Blobs are never loaded whole to be sent: :meth:`OCILayout.locate` gives the file and
byte range that hold a blob (the blob file itself in a directory, its member's data in
an archive), which an upload streams from.

A layout may come from anywhere, so it is read defensively: only regular files are
opened (a blob that is a FIFO, a device or a link to one is refused before it could
block or never end), ``index.json``, manifests and configs are read only up to
:data:`~polyarch.registry.media.MAX_MANIFEST` and parsed with a nesting limit.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from polyarch.errors import EnvironmentProblem, RegistryError, UsageError
from polyarch.refs import ImageRef
from polyarch.registry.media import (
    INDEX_TYPES,
    MAX_MANIFEST,
    OCI_INDEX,
    Manifest,
    descriptor_sizes,
    load_json,
)

REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobLocation:
    """``size`` bytes of ``path`` from ``offset``: where a blob's bytes are on disk."""

    path: Path
    offset: int
    size: int

    def read(self, start: int = 0, length: int | None = None,
             chunk: int = _CHUNK) -> Iterator[bytes]:
        """Yield the blob's bytes from ``start`` (``length`` of them, or to its end)."""
        left = self.size - start if length is None else min(length, self.size - start)
        try:
            with _open_regular(self.path) as f:
                f.seek(self.offset + start)
                while left > 0:
                    data = f.read(min(chunk, left))
                    if not data:
                        raise RegistryError(f"{self.path}: blob data ends early (truncated file)")
                    left -= len(data)
                    yield data
        except OSError as e:
            raise EnvironmentProblem(f"cannot read {self.path}: {e.strerror or e}",
                                     hint="check the disk and the file's permissions") from e


class OCILayout:
    """An OCI image layout: a directory or a ``.tar`` archive of one."""

    def __init__(self, path: Path, name: str | None = None, *, partial: bool = False) -> None:
        """``partial``: a directory whose ``index.json`` is not written yet (an engine
        still finishing the build): its blobs are read by digest."""
        self.path = path
        self.partial = partial
        self.name = name
        self.ref: ImageRef | None = None
        self.description = f"oci:{path}" + (f":{name}" if name else "")
        self._members: dict[str, tarfile.TarInfo] | None = None
        #: Sizes the descriptors read so far give (digest -> size).
        self._sizes: dict[str, int] = {}
        self._sizes_lock = threading.Lock()
        if not path.exists():
            raise UsageError(f"{self.description}: no such file or directory")
        if path.is_dir():
            if not partial and not (path / "index.json").exists():
                raise UsageError(f"{self.description}: not an OCI layout (no index.json)")
        elif not path.is_file():
            raise UsageError(f"{self.description}: not a directory or a regular file (an OCI"
                             " layout is one or the other)")
        else:
            try:
                with tarfile.open(path, "r:") as tf:
                    self._members = {_clean(m.name): m for m in tf.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError) as e:
                raise UsageError(f"{self.description}: not a tar archive ({e})") from e
            if "index.json" not in self._members:
                raise UsageError(f"{self.description}: not an OCI layout (no index.json)")

    @property
    def is_archive(self) -> bool:
        return self._members is not None

    # -- files -----------------------------------------------------------------------
    def _locate_file(self, name: str) -> BlobLocation:
        if self._members is None:
            p = self.path / name
            try:
                st = p.stat()
            except FileNotFoundError as e:
                raise RegistryError(f"{self.description}: {name} is missing") from e
            except OSError as e:
                raise RegistryError(f"{self.description}: cannot read {name}:"
                                    f" {e.strerror or e}") from e
            if not stat.S_ISREG(st.st_mode):
                raise RegistryError(f"{self.description}: {name} is not a regular file"
                                    f" ({_kind(st.st_mode)}); a layout holds files only")
            return BlobLocation(p, 0, st.st_size)
        info = self._members.get(name)
        if info is None:
            raise RegistryError(f"{self.description}: {name} is missing from the archive")
        return BlobLocation(self.path, info.offset_data, info.size)

    def _read(self, name: str, limit: int = MAX_MANIFEST) -> bytes:
        loc = self._locate_file(name)
        if loc.size > limit:
            raise RegistryError(f"{self.description}: {name} is larger than"
                                f" {limit // (1024 * 1024)} MiB ({loc.size} bytes)")
        return b"".join(loc.read())

    def _blob_name(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise RegistryError(f"{self.description}: unsupported digest {digest}")
        return f"blobs/sha256/{hexd}"

    def locate(self, digest: str) -> BlobLocation:
        """Where the blob's bytes are (its file, or its data inside the archive)."""
        return self._locate_file(self._blob_name(digest))

    def has_blob(self, digest: str) -> bool:
        try:
            self.locate(digest)
        except RegistryError:
            return False
        return True

    def blob_path(self, digest: str) -> Path | None:
        """The blob's own file in a directory layout (``None`` inside an archive)."""
        return None if self.is_archive else self.locate(digest).path

    # -- ImageSource -------------------------------------------------------------------
    def _learn(self, man: Manifest) -> Manifest:

        sizes = descriptor_sizes(man)
        with self._sizes_lock:
            for digest, size in sizes.items():
                self._sizes.setdefault(digest, size)
        return man

    def _check_size(self, digest: str, have: int) -> None:
        with self._sizes_lock:
            said = self._sizes.get(digest)
        if said is not None and said != have:
            raise RegistryError(f"{self.description}: blob {digest} has {have} bytes, its"
                                f" descriptor says {said}")

    def index_json(self) -> dict[str, Any]:
        data = self._read("index.json")
        try:
            doc: Any = load_json(data, "index.json")
        except ValueError as e:
            raise RegistryError(f"{self.description}: {e}") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{self.description}: index.json is not a JSON object")
        self._learn(Manifest(data, OCI_INDEX, ""))
        return doc

    def root(self) -> Manifest:
        doc = self.index_json()
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
        return self._learn(Manifest.from_bytes(self._read("index.json"), OCI_INDEX))

    def manifest(self, digest: str) -> Manifest:
        return self._learn(Manifest.from_bytes(self.blob(digest)))

    def blob(self, digest: str) -> bytes:
        """A manifest or config blob, whole (at most ``MAX_MANIFEST`` bytes)."""
        loc = self.locate(digest)
        if loc.size > MAX_MANIFEST:
            raise RegistryError(f"{self.description}: blob {digest} is larger than"
                                f" {MAX_MANIFEST // (1024 * 1024)} MiB ({loc.size} bytes),"
                                " too large for a manifest or config")
        return b"".join(self.iter_blob(digest))

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        loc = self.locate(digest)
        self._check_size(digest, loc.size)
        h = hashlib.sha256()
        for chunk in loc.read():
            h.update(chunk)
            yield chunk
        if "sha256:" + h.hexdigest() != digest:
            raise RegistryError(f"{self.description}: blob {digest} does not match its digest")

    def open_blob(self, digest: str) -> IO[bytes]:
        """The blob as a file positioned at its first byte (read at most its size)."""
        loc = self.locate(digest)
        f = _open_regular(loc.path)
        f.seek(loc.offset)
        return f


def read_index(directory: Path) -> dict[str, Any]:
    """``directory/index.json`` read as :class:`OCILayout` reads it (a regular file, at
    most 4 MiB, nested at most 100 deep); :class:`RegistryError` otherwise."""
    path = directory / "index.json"
    try:
        with _open_regular(path) as f:
            data = f.read(MAX_MANIFEST + 1)
    except OSError as e:
        raise RegistryError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc: Any = load_json(data, str(path))
    except ValueError as e:
        raise RegistryError(str(e)) from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{path} is not a JSON object")
    return doc


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading, if it is a regular file: opened without blocking
    (a FIFO put in its place would otherwise wait for a writer) and checked again."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RegistryError(f"{path} is not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
