"""OCI images made in Python, for tests: layers, manifests, indexes, layouts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# ``make_layer({"bin/x": b"...", "etc/.wh.old": b""}, "gzip")`` builds a layer blob;
# ``image_blobs(layers, "linux/arm64")`` the config and manifest around them;
# ``push_index(client, ref, [(platform, layers), ...])`` pushes a whole index with the
# registry client; ``write_oci_layout(dir, [(platform, layers), ...])`` writes the same
# as an OCI layout directory. A file value may be ``("link", "target")`` for a hard
# link, ``("dir", None)`` for a directory.

LayerFiles = dict[str, "bytes | tuple[str, str | None]"]


def make_layer(files: LayerFiles, compression: str = "gzip") -> tuple[bytes, str]:
    """A layer blob and its diff_id (the digest of the uncompressed tar)."""
    import gzip
    import hashlib
    import io
    import tarfile

    import zstandard

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, value in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, tuple):
                kind, target = value
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                elif kind == "link":
                    info.type = tarfile.LNKTYPE
                    info.linkname = target or ""
                else:
                    info.type = tarfile.SYMTYPE
                    info.linkname = target or ""
                tf.addfile(info)
            else:
                info.size = len(value)
                info.mode = 0o755
                tf.addfile(info, io.BytesIO(value))
    raw = buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    if compression == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0), diff_id
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(raw), diff_id
    return raw, diff_id


_LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


def image_blobs(layers: list[tuple[bytes, str, str]], platform: str,
                config_platform: str | None = None, env: list[str] | None = None,
                run: dict[str, Any] | None = None
                ) -> tuple[dict[str, bytes], bytes, dict[str, Any]]:
    """``layers`` are (blob, diff_id, compression); ``run`` goes into the config's
    ``config`` (``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir``). Returns (blobs,
    manifest, descriptor)."""
    import hashlib

    def dg(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    os_, arch, *var = (config_platform or platform).split("/")
    config = {"architecture": arch, "os": os_, "rootfs": {"type": "layers",
              "diff_ids": [d for _, d, _ in layers]},
              "config": {"Env": env or ["PATH=/bin"], **(run or {})},
              "created": "2024-01-01T00:00:00Z"}
    if var:
        config["variant"] = var[0]
    cfg = json.dumps(config).encode()
    blobs = {dg(cfg): cfg}
    descs = []
    for blob, _, comp in layers:
        blobs[dg(blob)] = blob
        descs.append({"mediaType": _LAYER_TYPES[comp], "digest": dg(blob), "size": len(blob)})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dg(cfg),
                   "size": len(cfg)},
        "layers": descs}).encode()
    p_os, p_arch, *p_var = platform.split("/")
    plat: dict[str, str] = {"os": p_os, "architecture": p_arch}
    if p_var:
        plat["variant"] = p_var[0]
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dg(manifest),
            "size": len(manifest), "platform": plat}
    return blobs, manifest, desc


Variant = tuple[str, list[tuple[bytes, str, str]]]


def _index(descs: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": descs}).encode()


def push_index(client: Any, ref: Any, variants: list[Variant],
               config_platforms: dict[str, str] | None = None) -> str:
    """Push an index of ``variants`` to ``ref`` (an ImageRef with a tag) with the client."""
    descs = []
    for platform, layers in variants:
        blobs, manifest, desc = image_blobs(layers, platform,
                                            (config_platforms or {}).get(platform))
        for d, b in blobs.items():
            client.upload_blob(ref, d, b)
        client.put_manifest(ref.untagged().with_digest(desc["digest"]), manifest,
                            desc["mediaType"])
        descs.append(desc)
    return str(client.put_manifest(ref, _index(descs),
                                   "application/vnd.oci.image.index.v1+json"))


def write_oci_layout(directory: Path, variants: list[Variant],
                     run: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write ``variants`` as an OCI layout directory (an index of them under index.json);
    ``run`` gives a platform's config fields (see :func:`image_blobs`)."""
    import hashlib

    blobdir = directory / "blobs" / "sha256"
    blobdir.mkdir(parents=True, exist_ok=True)
    descs = []
    for platform, layers in variants:
        blobs, manifest, desc = image_blobs(layers, platform, run=(run or {}).get(platform))
        blobs[desc["digest"]] = manifest
        for d, b in blobs.items():
            (blobdir / d.split(":")[1]).write_bytes(b)
        descs.append(desc)
    index = _index(descs)
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    (blobdir / digest.split(":")[1]).write_bytes(index)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest,
            "size": len(index), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return directory
