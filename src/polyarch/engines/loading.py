"""Turning a verified OCI layout into an archive an engine's ``load`` takes.

The archive is the layout itself (``oci-layout``, ``index.json``, ``blobs/``) with one
``index.json`` entry per name, each pointing at the same root: Docker's containerd
image store reads the name from ``io.containerd.image.name``, other readers from
``org.opencontainers.image.ref.name``.
"""

from __future__ import annotations

import io
import json
import os
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


def write_archive(layout: Path, names: Sequence[str], dest: Path) -> Path:
    """Write ``dest`` (a tar of ``layout``) whose index names the root once per name
    (no names: the root entry as the build wrote it)."""
    root = root_descriptor(layout)
    entries = [] if names else [root]
    for n in names:
        ref = parse_ref(n)
        ann = {k: v for k, v in (root.get("annotations") or {}).items()
               if k not in ("io.containerd.image.name", "org.opencontainers.image.ref.name")}
        ann["io.containerd.image.name"] = full_name(n)
        ann["org.opencontainers.image.ref.name"] = ref.tag or "latest"
        entries.append({**root, "annotations": ann})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    try:
        with tarfile.open(dest, "w") as tar:
            tar.add(layout / "oci-layout", arcname="oci-layout")
            info = tarfile.TarInfo("index.json")
            info.size = len(index)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(index))
            blobs = layout / "blobs"
            for dirpath, _dirs, files in os.walk(blobs):
                for f in sorted(files):
                    full = Path(dirpath) / f
                    tar.add(full, arcname=str(full.relative_to(layout)))
    except OSError as e:
        raise EnvironmentProblem(f"cannot write {dest}: {e.strerror or e}",
                                 hint="set POLYARCH_CACHE_DIR to a directory with free space"
                                 ) from None
    return dest
