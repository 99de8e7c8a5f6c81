"""Moving images: registry to registry, and any source into an OCI layout on disk.

* :func:`copy_image` copies an index or manifest with everything it references from
  one repository to another (mounting within one registry, streaming between two).
* :func:`write_layout` writes an image from any source (a registry reference or a
  layout) as an OCI layout: a directory, or a ``.tar`` archive when the path ends in
  ``.tar`` (``oci-layout``, ``index.json``, ``blobs/sha256/...``). Every blob's digest
  is checked while it is copied; nothing is held in memory whole.
* :func:`pull_layout` is :func:`write_layout` from a registry reference.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polyarch.errors import EnvironmentProblem, RegistryError, UsageError
from polyarch.refs import ImageRef
from polyarch.registry.api import RegistryAPI
from polyarch.registry.chunkio import ChunkReader
from polyarch.registry.layout import REF_NAME, BlobLocation, OCILayout
from polyarch.registry.media import INDEX_TYPES, NON_DISTRIBUTABLE, Manifest
from polyarch.registry.source import ImageSource, RegistrySource
from polyarch.registry.upload import blob_known, upload_blob

LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'


def _blob_descs(man: Manifest) -> list[dict[str, Any]]:
    doc = man.json
    descs: list[dict[str, Any]] = []
    if isinstance(doc.get("config"), dict):
        descs.append(doc["config"])
    descs += [d for d in doc.get("layers") or [] if isinstance(d, dict)]
    return [d for d in descs if isinstance(d.get("digest"), str)
            and d.get("mediaType") not in NON_DISTRIBUTABLE and not d.get("urls")]


def _children(man: Manifest) -> list[dict[str, Any]]:
    if not man.is_index:
        return []
    return [d for d in man.json.get("manifests") or []
            if isinstance(d, dict) and isinstance(d.get("digest"), str)]


# -- registry to registry -------------------------------------------------------------
def copy_image(client: RegistryAPI, src: ImageRef, dst: ImageRef) -> str:
    """Copy the index or manifest at ``src`` with everything it references to ``dst``.

    Blobs are mounted when both are on one registry, otherwise streamed through a
    temporary file. The root is stored under ``dst.tag`` when ``dst`` has one,
    otherwise by digest only. Returns the root's digest (the same as at ``src``).
    """
    root = client.get_manifest(src)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for desc in _children(root):
            size = desc.get("size")
            man = client.get_manifest(src.with_digest(desc["digest"]),
                                      size=size if type(size) is int else None)
            if man.media_type in INDEX_TYPES:
                raise RegistryError(f"{src}: nested indexes are not supported")
            _copy_blobs(client, src, dst, man, pool)
            client.put_manifest(dst.untagged().with_digest(man.digest), man.data, man.media_type)
        if not root.is_index:
            _copy_blobs(client, src, dst, root, pool)
    target = dst.with_tag(dst.tag) if dst.tag else dst.untagged().with_digest(root.digest)
    return client.put_manifest(target, root.data, root.media_type)


def _copy_blobs(client: RegistryAPI, src: ImageRef, dst: ImageRef, man: Manifest,
                pool: ThreadPoolExecutor) -> None:
    sizes: dict[str, int | None] = {}
    for d in _blob_descs(man):
        size = d.get("size")
        sizes.setdefault(d["digest"], size if type(size) is int else None)
    for f in [pool.submit(_copy_blob, client, src, dst, dg, n) for dg, n in sizes.items()]:
        f.result()


def _copy_blob(client: RegistryAPI, src: ImageRef, dst: ImageRef, digest: str,
               size: int | None) -> None:
    if (src.registry, src.repository) == (dst.registry, dst.repository):
        return
    if blob_known(client, dst, digest):
        return
    if src.registry == dst.registry and client.mount_blob(dst, digest, src.repository):
        return
    with tempfile.TemporaryDirectory(prefix="polyarch-blob-") as tmp:
        path = Path(tmp) / "blob"
        try:
            with path.open("wb") as f:
                for chunk in client.stream_blob(src, digest, size):
                    f.write(chunk)
        except OSError as e:
            raise EnvironmentProblem(f"cannot keep blob {digest} in {tmp}: {e.strerror or e}",
                                     hint="free space in the temporary directory (TMPDIR)"
                                     ) from e
        upload_blob(client, dst, digest, BlobLocation(path, 0, path.stat().st_size),
                    check_exists=False)


# -- into a layout ----------------------------------------------------------------------
def _collect(source: ImageSource, root: Manifest) -> list[tuple[str, int, Manifest | None]]:
    """(digest, size, manifest or None for a plain blob) of everything ``root`` needs."""
    out: dict[str, tuple[str, int, Manifest | None]] = {}

    def walk(man: Manifest, depth: int) -> None:
        if depth > 4:
            raise RegistryError(f"{source.description}: indexes nested deeper than 4 levels")
        for d in _children(man):
            child = source.manifest(d["digest"])
            walk(child, depth + 1)
            out[child.digest] = (child.digest, len(child.data), child)
        for d in _blob_descs(man):
            size = d.get("size")
            out.setdefault(d["digest"], (d["digest"], size if isinstance(size, int) else -1, None))

    walk(root, 0)
    out[root.digest] = (root.digest, len(root.data), root)
    return list(out.values())


def _index_json(root: Manifest, name: str | None) -> bytes:
    desc: dict[str, Any] = {"mediaType": root.media_type, "digest": root.digest,
                            "size": len(root.data)}
    if name:
        desc["annotations"] = {REF_NAME: name}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [desc]}, separators=(",", ":")).encode()


def write_layout(source: ImageSource, dest: Path, *, root_digest: str | None = None,
                 name: str | None = None) -> Path:
    """Write ``source``'s root (or ``root_digest``) as an OCI layout at ``dest``.

    ``dest`` ending in ``.tar`` gets an archive, anything else a directory. The parent
    directory must exist; an existing ``dest`` must be a layout (it is replaced) or
    an empty directory. The archive is written next to ``dest`` and renamed into place.
    """
    if not dest.parent.is_dir():
        raise UsageError(f"{dest.parent}: no such directory",
                         hint="create it first or choose another path")
    archive = dest.suffix == ".tar"
    if dest.exists() and not _replaceable(dest, archive):
        raise UsageError(f"{dest} exists and is not an OCI layout",
                         hint="choose a new path or remove it")
    root = source.manifest(root_digest) if root_digest else source.root()
    items = _collect(source, root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if archive:
            out = tmp / "layout.tar"
            with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
                _add(tf, "oci-layout", LAYOUT_VERSION)
                for digest, size, man in items:
                    if man is not None:
                        _add(tf, f"blobs/sha256/{digest[7:]}", man.data)
                        continue
                    info = tarfile.TarInfo(f"blobs/sha256/{digest[7:]}")
                    info.size = size if size >= 0 else _measure(source, digest)
                    info.mode = 0o644
                    tf.addfile(info, io.BufferedReader(ChunkReader(source.iter_blob(digest))))
                _add(tf, "index.json", _index_json(root, name))
            _swap(out, dest)
        else:
            blobdir = tmp / "blobs" / "sha256"
            blobdir.mkdir(parents=True)
            (tmp / "oci-layout").write_bytes(LAYOUT_VERSION)
            for digest, _size, man in items:
                with (blobdir / digest[7:]).open("wb") as f:
                    if man is not None:
                        f.write(man.data)
                    else:
                        for chunk in source.iter_blob(digest):
                            f.write(chunk)
            (tmp / "index.json").write_bytes(_index_json(root, name))
            _swap(tmp, dest)
            tmp = dest
    except OSError as e:
        # A full or read-only disk: the machine's problem, not the input's.
        raise EnvironmentProblem(f"cannot write {dest}: {e.strerror or e}",
                                 hint="choose a writable place with enough space") from e
    finally:
        if tmp != dest:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _measure(source: ImageSource, digest: str) -> int:
    return sum(len(c) for c in source.iter_blob(digest))


def _replaceable(dest: Path, archive: bool) -> bool:
    if dest.is_dir():
        return not any(dest.iterdir()) or (dest / "index.json").is_file()
    if not archive:
        return False
    try:
        OCILayout(dest)
    except UsageError:
        return False
    return True


def _swap(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``, removing an old layout there."""
    if dest.is_dir():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    os.replace(new, dest)


def pull_layout(client: RegistryAPI, ref: ImageRef, dest: Path, *,
                name: str | None = None) -> Path:
    """Write the image at ``ref`` (best given by digest) as an OCI layout at ``dest``."""
    return write_layout(RegistrySource(client, ref), dest, name=name or ref.tag)
