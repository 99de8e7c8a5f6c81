"""Real packages of both architectures, fetched at test time and cached, made into
image layers in Python.

Each package comes through its ecosystem's own client: Debian packages with
``apt-get download NAME:ARCH`` (the machine's apt sources, both architectures
configured), npm packages with ``npm pack NAME@VERSION``, PyPI wheels with
``pip download --only-binary=:all: --platform TAG``. They are kept in
``$POLYARCH_REAL_PACKAGES`` (default ``~/.cache/polyarch-tests/real-packages``), so only
the first run downloads. A layer is made from a package's own files, placed where an
image would hold them: a ``.deb``'s filesystem tree as ``dpkg-deb --fsys-tarfile`` gives
it, an npm tarball's ``package/`` under a ``node_modules`` directory or any prefix, a
wheel's files under a ``site-packages`` directory.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("POLYARCH_REAL_PACKAGES",
                            Path.home() / ".cache" / "polyarch-tests" / "real-packages"))
#: Every download has a deadline.
TIMEOUT = 900


def _run(argv: list[str], cwd: Path) -> None:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr[-2000:]}")


def _fetch(kind: str, pattern: str, argv: list[str]) -> Path:
    """The cached file matching ``pattern`` in ``CACHE/kind``, downloaded by ``argv`` (run
    in a fresh directory, then moved in) when missing."""
    d = CACHE / kind
    found = sorted(d.glob(pattern))
    if found:
        return found[-1]
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        os.chmod(tmp, 0o755)  # apt's download user writes here too
        _run(argv, Path(tmp))
        got = sorted(Path(tmp).glob(pattern))
        if not got:
            raise RuntimeError(f"{' '.join(argv)} left no {pattern}")
        for g in got:
            shutil.move(str(g), d / g.name)
    return sorted(d.glob(pattern))[-1]


def deb(name: str, arch: str) -> Path:
    """Debian's package ``name`` for ``arch`` (``all`` for architecture-independent)."""
    spec = name if arch == "all" else f"{name}:{arch}"
    return _fetch("deb", f"{name}_*_{arch}.deb", ["apt-get", "download", spec])


def npm(spec: str) -> Path:
    """The npm registry tarball of ``NAME@VERSION``."""
    name, _, version = spec.rpartition("@")
    base = name.lstrip("@").replace("/", "-")
    return _fetch("npm", f"{base}-{version}.tgz", ["npm", "pack", "--silent", spec])


def wheel(requirement: str, platform: str, python: str = "3.11") -> Path:
    """PyPI's wheel of ``NAME==VERSION`` for a platform tag (``manylinux2014_aarch64``)."""
    name, _, version = requirement.partition("==")
    arch = platform.split("_", 1)[1] if platform.startswith("manylinux2014") else platform
    return _fetch("wheel", f"{name}-{version}-*{arch}*.whl", [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--platform", platform, "--python-version", python,
        "--implementation", "cp", requirement, "-d", "."])


# -- layers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One tar entry: a file (``data``), a symlink (``link``) or a directory."""

    path: str
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o644


@functools.lru_cache(maxsize=8)
def deb_layer(path: Path) -> tuple[bytes, str, str]:
    """A layer of a ``.deb``'s filesystem tree: its own tar stream, as
    ``dpkg-deb --fsys-tarfile`` gives it (paths, modes, symlinks unchanged). The last
    few are kept: cases share the big ones."""
    r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True,
                       timeout=TIMEOUT, check=True)
    diff_id = "sha256:" + hashlib.sha256(r.stdout).hexdigest()
    return gzip.compress(r.stdout, compresslevel=1, mtime=0), diff_id, "gzip"


def npm_entries(tgz: Path, at: str) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """An npm tarball's ``package/`` placed at ``at`` (``app/node_modules/NAME``)."""
    with tarfile.open(tgz) as t:
        return _members(t, "package/", at.strip("/") + "/")


def wheel_entries(whl: Path, site: str) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """A wheel's files installed under ``site`` (as pip unpacks it)."""
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with zipfile.ZipFile(whl) as z:
        for zi in z.infolist():
            if zi.is_dir():
                continue
            data = z.read(zi)
            ti = tarfile.TarInfo(f"{site.strip('/')}/{zi.filename}")
            ti.size = len(data)
            ti.mode = (zi.external_attr >> 16) & 0o7777 or 0o644
            out.append((ti, data))
    return out


def extra_entries(entries: list[Entry]) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for e in entries:
        ti = tarfile.TarInfo(e.path.strip("/"))
        ti.mode = e.mode
        if e.link is not None:
            ti.type = tarfile.SYMTYPE
            ti.linkname = e.link
            out.append((ti, None))
        else:
            data = e.data or b""
            ti.size = len(data)
            out.append((ti, data))
    return out


def _members(t: tarfile.TarFile, strip: str, prefix: str
             ) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for m in t.getmembers():
        name = m.name[2:] if m.name.startswith("./") else m.name
        if strip:
            if not name.startswith(strip):
                continue
            name = name[len(strip):]
        m.name = prefix + name
        if not m.name or m.name == ".":
            continue
        data = None
        if m.isreg():
            f = t.extractfile(m)
            data = f.read() if f else b""
        out.append((m, data))
    return out


def layer(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> tuple[bytes, str, str]:
    """A gzip layer blob of ``entries``: (blob, diff_id, compression) for
    :func:`oci_images.write_oci_layout`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return gzip.compress(raw, compresslevel=1, mtime=0), diff_id, "gzip"
