"""What engine tests read back from a registry, with plain HTTP (independent of polyarch's
registry client), and the small build contexts they share."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import IN_CI, make_context, registry_catalog, registry_tags
from faultproxy import LocalRegistry, Record

#: Marks a test that needs podman: skipped where it is not installed, except in CI.
needs_podman = pytest.mark.skipif(shutil.which("podman") is None and not IN_CI,
                                  reason="podman is not installed; run scripts/engine up")

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json, "
               "application/vnd.docker.distribution.manifest.list.v2+json, "
               "application/vnd.oci.image.manifest.v1+json, "
               "application/vnd.docker.distribution.manifest.v2+json")

# A Dockerfile without RUN steps builds with every engine and runtime (podman included).
COPY_ONLY = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
CMD ["/bin/sh", "-c", "uname -m"]
"""

# The amd64 root filesystem for every platform: arm64 gets x86-64 binaries.
WRONG_ARCH = """\
FROM scratch
COPY rootfs-amd64/ /
"""

# An npm auth token in the final filesystem (the shape npm writes; the token is made up).
NPMRC = "//registry.npmjs.org/:_authToken=npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8\n"
NPM_TOKEN = "npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

TOKEN_IN_FINAL_LAYER = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY npmrc /root/.npmrc
"""

# The token is added, then deleted by a later layer: gone from the final filesystem,
# still in the blob of the layer that added it.
TOKEN_DELETED_LATER = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY npmrc /root/.npmrc
RUN rm /root/.npmrc
"""


#: The echo of a buildx build (``+ docker buildx build`` or, run directly, the plugin's
#: path): what says the build started.
_BUILD_ECHO = re.compile(r"^\+ (?:docker buildx|\S*/docker-buildx) build\b", re.M)


def echoed_build(text: str) -> str | None:
    """The first echoed buildx build line of ``text``, or None."""
    m = _BUILD_ECHO.search(text)
    if m is None:
        return None
    end = text.find("\n", m.start())
    return text[m.start():] if end < 0 else text[m.start():end]


def token_context(path: Path, dockerfile: str = TOKEN_IN_FINAL_LAYER) -> Path:
    ctx = make_context(path, dockerfile=dockerfile)
    (ctx / "npmrc").write_text(NPMRC)
    return ctx


def big_context(path: Path, files: int = 4, mib: int = 2) -> Path:
    """Busybox plus ``files`` layers of ``mib`` MiB of random bytes each (shared by both
    platforms): a push of several blobs that takes a moment."""
    copies = "".join(f"COPY blob{i} /blob{i}\n" for i in range(files))
    ctx = make_context(path, dockerfile=COPY_ONLY + copies)
    for i in range(files):
        (ctx / f"blob{i}").write_bytes(os.urandom(mib << 20))
    return ctx


def manifest_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest a tag (or digest) resolves to; None when it does not exist."""
    r = httpx.get(f"http://{registry}/v2/{repository}/manifests/{reference}",
                  headers={"Accept": INDEX_TYPES}, timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return "sha256:" + hashlib.sha256(r.content).hexdigest()


def manifest(registry: str, repository: str, reference: str) -> dict[str, Any]:
    r = httpx.get(f"http://{registry}/v2/{repository}/manifests/{reference}",
                  headers={"Accept": INDEX_TYPES}, timeout=10)
    r.raise_for_status()
    doc = json.loads(r.content)
    assert isinstance(doc, dict)
    return doc


def image_config(registry: str, repository: str, manifest_ref: str) -> dict[str, Any]:
    m = manifest(registry, repository, manifest_ref)
    r = httpx.get(f"http://{registry}/v2/{repository}/blobs/{m['config']['digest']}",
                  timeout=10, follow_redirects=True)
    r.raise_for_status()
    doc = json.loads(r.content)
    assert isinstance(doc, dict)
    return doc


def platform_manifests(index: dict[str, Any]) -> dict[str, str]:
    """``{"linux/amd64": digest, ...}`` of an index, attestations left out."""
    out = {}
    for m in index.get("manifests") or []:
        p = m.get("platform") or {}
        if p.get("os") in (None, "unknown"):
            continue
        out["/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)] = \
            m["digest"]
    return out


def split(ref: str) -> tuple[str, str]:
    """``host:port/a/b`` -> (``host:port``, ``a/b``)."""
    host, _, path = ref.partition("/")
    return host, path


def stored_blobs(reg: LocalRegistry) -> list[str]:
    """Every blob a LocalRegistry holds on disk, whichever repository it came with."""
    root = reg.directory / "data/docker/registry/v2/blobs/sha256"
    if not root.is_dir():
        return []
    return sorted("sha256:" + p.parent.name for p in root.glob("*/*/data"))


def assert_registry_empty(reg: LocalRegistry, *repositories: str) -> None:
    """No repository, no tag (of ``repositories`` too, asked by name), no blob: nothing of
    the image left the machine."""
    assert registry_catalog(reg.address) == []
    for r in repositories:
        assert registry_tags(reg.address, r) == []
    assert stored_blobs(reg) == []


def assert_nothing_in(registry: str, repository: str) -> None:
    """A shared registry: the repository does not exist and has no tag."""
    assert repository not in registry_catalog(registry)
    assert registry_tags(registry, repository) == []


def blob_uploads(log: list[Record]) -> list[str]:
    """Digests of the blob uploads a FaultProxy saw completed (the closing PUT)."""
    out = []
    for r in log:
        if (r.method == "PUT" and "/blobs/uploads/" in r.path and "digest=" in r.path
                and r.outcome.startswith("forwarded 2")):
            out.append(r.path.split("digest=", 1)[1].split("&", 1)[0].replace("%3A", ":"))
    return out


def upload_requests(log: list[Record]) -> int:
    """Every request that carries blob data (PATCH or PUT to /blobs/uploads/)."""
    return sum(1 for r in log if r.method in ("PATCH", "PUT") and "/blobs/uploads/" in r.path)


def mount_tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs of its own at ``where`` (``ro,size=1m``: read-only; ``size=1m``: one that
    fills up quickly), unmounted afterwards. Needs root: skipped without, except in CI."""
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        msg = f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def fill(directory: Path) -> None:
    """Fill the disk ``directory`` is on (a small tmpfs) to the last byte."""
    with (directory / "filler").open("ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass  # full


#: Runs argv[1:] and writes the peak resident size of that child (bytes) to $RSS_FILE.
#: A wrapper of its own: a child forked straight from the test process would report the
#: test process's size (Linux keeps ru_maxrss across fork and execve).
PEAK_RSS_WRAPPER = """
import os, resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode
with open(os.environ["RSS_FILE"], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
sys.exit(code)
"""
