"""Turning a verified OCI layout into an archive an engine's ``load`` takes.

The archive is the layout itself (``oci-layout``, ``index.json``, ``blobs/``) with one
``index.json`` entry per name, each pointing at the same root: Docker's containerd
image store reads the name from ``io.containerd.image.name``, other readers from
``org.opencontainers.image.ref.name``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polyarch.errors import EnvironmentProblem, RegistryError
from polyarch.refs import parse_ref


def root_descriptor(layout: Path) -> dict[str, Any]:
    """The single root entry of a layout polyarch built (its index.json's first entry)."""
    from polyarch.registry.layout import read_index

    try:
        entry = read_index(layout)["manifests"][0]
    except (RegistryError, KeyError, IndexError, TypeError) as e:
        raise EnvironmentProblem(f"{layout} is not a readable OCI layout: {e}") from None
    if not isinstance(entry, dict):
        raise EnvironmentProblem(f"{layout}/index.json: the first entry is not a descriptor")
    return entry


def full_name(name: str) -> str:
    """``app:1`` -> ``docker.io/library/app:1`` (containerd stores full names)."""
    ref = parse_ref(name)
    return f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}"


#: Manifests and indexes polyarch reads back from its own layout are small.
_MANIFEST_LIMIT = 4 * 1024 * 1024


def _blob(layout: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return layout / "blobs" / algo / hexd


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            raw = f.read(_MANIFEST_LIMIT + 1)
        if len(raw) > _MANIFEST_LIMIT:
            raise ValueError("larger than 4 MiB")
        return json.loads(raw)
    except (OSError, ValueError, RecursionError) as e:
        raise EnvironmentProblem(f"{path} is not a readable manifest: {e}") from None


def platform_descriptors(layout: Path, digests: Sequence[str]) -> list[dict[str, Any]]:
    """The root index's entries for the manifests ``digests`` (in that order); a
    one-platform layout's root is the manifest itself."""
    root = root_descriptor(layout)
    index = _read_json(_blob(layout, str(root.get("digest", ""))))
    entries = index.get("manifests") if isinstance(index, dict) else None
    by_digest = {e.get("digest"): e for e in entries or [] if isinstance(e, dict)}
    if entries is None:
        by_digest = {root.get("digest"): root}
    missing = [d for d in digests if d not in by_digest]
    if missing:
        raise EnvironmentProblem(f"{layout}: the index has no entry {missing[0]}")
    return [by_digest[d] for d in digests]


def _reachable(layout: Path, desc: dict[str, Any]) -> set[str]:
    """Blob digests a manifest (or index) names, itself included."""
    digest = str(desc.get("digest", ""))
    out = {digest}
    doc = _read_json(_blob(layout, digest))
    if not isinstance(doc, dict):
        return out
    for child in doc.get("manifests") or []:
        if isinstance(child, dict):
            out |= _reachable(layout, child)
    for d in [doc.get("config"), *(doc.get("layers") or [])]:
        if isinstance(d, dict) and isinstance(d.get("digest"), str):
            out.add(d["digest"])
    return out


def _named(desc: dict[str, Any], name: str) -> dict[str, Any]:
    """``desc`` named ``name`` the way the engines read names from an index.json."""
    ann = {k: v for k, v in (desc.get("annotations") or {}).items()
           if k not in ("io.containerd.image.name", "org.opencontainers.image.ref.name")}
    ann["io.containerd.image.name"] = full_name(name)
    ann["org.opencontainers.image.ref.name"] = parse_ref(name).tag or "latest"
    return {**desc, "annotations": ann}


def _write_tar(layout: Path, entries: list[dict[str, Any]], blobs: set[str],
               dest: Path) -> Path:
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    try:
        with tarfile.open(dest, "w") as tar:
            tar.add(layout / "oci-layout", arcname="oci-layout")
            info = tarfile.TarInfo("index.json")
            info.size = len(index)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(index))
            for d in sorted(blobs):
                blob = _blob(layout, d)
                tar.add(blob, arcname=str(blob.relative_to(layout)))
    except OSError as e:
        raise EnvironmentProblem(f"cannot write {dest}: {e.strerror or e}",
                                 hint="set POLYARCH_CACHE_DIR to a directory with free space"
                                 ) from None
    return dest


def write_platform_archive(layout: Path, named: Sequence[tuple[str, dict[str, Any]]],
                           dest: Path) -> Path:
    """Write ``dest``: a tar holding, for each (name, platform manifest descriptor), that
    manifest under that name, and only the blobs those manifests reach (the other
    platforms' layers are not copied into the engine's store)."""
    wanted: set[str] = set()
    for _n, desc in named:
        wanted |= _reachable(layout, desc)
    return _write_tar(layout, [_named(desc, n) for n, desc in named], wanted, dest)


def write_archive(layout: Path, names: Sequence[str], dest: Path) -> Path:
    """Write ``dest`` (a tar of ``layout``: every blob its root reaches) whose index names
    the root once per name (no names: the root entry as the build wrote it)."""
    root = root_descriptor(layout)
    entries = [_named(root, n) for n in names] or [root]
    return _write_tar(layout, entries, _reachable(layout, root), dest)
