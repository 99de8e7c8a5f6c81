"""The per-layer cache: a rebuild re-reads only the layers that changed."""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch import settings
from polyarch.checks.cache import RULES, LayerCache, default_dir
from polyarch.checks.layers import scan_layer
from polyarch.checks.verify import verify, verify_source
from polyarch.config import load_settings
from polyarch.errors import RegistryError
from polyarch.platforms import EM_AARCH64, EM_X86_64, parse_platforms
from polyarch.refs import ImageRef
from polyarch.registry import OCILayout
from polyarch.registry.media import Manifest

BOTH = parse_platforms("linux/amd64,linux/arm64")


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 3, machine, 1) + b"\0" * 99


class Counting:
    """An OCI layout that counts the layer blobs read through it."""

    def __init__(self, path: Path) -> None:
        self.inner = OCILayout(path)
        self.description = self.inner.description
        self.ref: ImageRef | None = None
        self.reads: list[str] = []

    def root(self) -> Manifest:
        return self.inner.root()

    def manifest(self, digest: str) -> Manifest:
        return self.inner.manifest(digest)

    def blob(self, digest: str) -> bytes:
        return self.inner.blob(digest)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        self.reads.append(digest)
        return self.inner.iter_blob(digest)


def image(tmp: Path, top: bytes) -> Counting:
    """Two platforms sharing a base layer, each with its own binaries, and a top layer."""
    base = make_layer({f"usr/share/doc/f{i}.txt": b"text %d\n" % i for i in range(300)})
    amd = make_layer({"usr/bin/app": elf(EM_X86_64)}, "zstd")
    arm = make_layer({"usr/bin/app": elf(EM_AARCH64)}, "zstd")
    layer_top = make_layer({"srv/app/config.txt": top})
    d = write_oci_layout(tmp, [("linux/amd64", [(*base, "gzip"), (*amd, "zstd"), (*layer_top, "gzip")]),
                               ("linux/arm64", [(*base, "gzip"), (*arm, "zstd"), (*layer_top, "gzip")])])
    return Counting(d)


def test_warm_verify_reads_only_the_changed_top_layer(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    cold = image(tmp_path / "v1", b"version 1\n")
    first = verify_source(cold, BOTH, cache=cache)
    assert first.ok
    assert len(cold.reads) == 4 and first.layers_read == 4 and first.layers_cached == 0

    # A rebuild's own layout (as the pipeline verifies it): cached layers are not read.
    again = image(tmp_path / "v1b", b"version 1\n")  # the same layers: nothing is read
    same = verify_source(again, BOTH, cache=cache, check_cached=False)
    assert again.reads == [] and same.layers_cached == 4
    assert [p.to_json() for p in same.platforms] == [p.to_json() for p in first.platforms]

    warm = image(tmp_path / "v2", b"version 2\n")
    second = verify_source(warm, BOTH, cache=cache, check_cached=False)
    assert second.ok
    top = warm.inner.manifest(warm.inner.root().json["manifests"][0]["digest"]).json
    assert warm.reads == [top["layers"][2]["digest"]]
    assert (second.layers_read, second.layers_cached) == (1, 3)


def test_a_layout_from_elsewhere_has_its_cached_blobs_checked(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    assert verify_source(image(tmp_path / "v1", b"version 1\n"), BOTH, cache=cache).ok
    again = image(tmp_path / "v1b", b"version 1\n")
    report = verify_source(again, BOTH, cache=cache)  # default for a layout: check them
    assert report.ok and report.layers_cached == 4 and report.layers_read == 0
    assert sorted(again.reads) == sorted(set(again.reads)) and len(again.reads) == 4

    # The same file tampered with: the scan the cache holds is for other bytes.
    top = again.inner.manifest(again.inner.root().json["manifests"][0]["digest"]).json
    blob = again.inner.locate(top["layers"][2]["digest"]).path
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="does not match its digest"):
        verify_source(again, BOTH, cache=cache)
    with pytest.raises(RegistryError, match="does not match its digest"):
        verify(f"oci:{again.inner.path}", BOTH, cache=cache)
    # What the pipeline passes for the layout its build has just written.
    assert verify_source(again, BOTH, cache=cache, check_cached=False).layers_cached == 4


def test_cached_findings_equal_fresh_ones(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "c")
    layers = [make_layer({"usr/bin/app": elf(EM_X86_64), "root/.npmrc":
                          b"//registry.npmjs.org/:_authToken=npm_S3cretTokenValue42abc\n"}),
              make_layer({"root/.wh..npmrc": b""})]
    d = write_oci_layout(tmp_path / "l", [("linux/arm64", [(*ly, "gzip") for ly in layers])])
    arm = parse_platforms("linux/arm64")
    fresh = verify_source(OCILayout(d), arm, cache=cache)
    cached = verify_source(OCILayout(d), arm, cache=cache)
    assert cached.layers_cached == 2
    assert [f.to_json() for f in fresh.platforms[0].findings] == \
        [f.to_json() for f in cached.platforms[0].findings]
    kinds = sorted(str(f.kind) for f in fresh.platforms[0].findings)
    assert kinds == ["deleted-but-shipped", "wrong-machine"]
    # The cache holds what was found, never the value.
    for f in (tmp_path / "c").rglob("*.json.z"):
        assert b"npm_S3cret" not in zlib.decompress(f.read_bytes())


def test_entry_round_trip_and_damage(tmp_path: Path) -> None:
    blob, _ = make_layer({"bin/a": elf(EM_X86_64), "etc/x": b"x", "d": ("dir", None),
                          "bin/b": ("link", "bin/a"), "gone/.wh.f": b""})
    digest = "sha256:" + "ab" * 32
    scan = scan_layer(digest, [blob])
    cache = LayerCache(tmp_path)
    cache.put(scan)
    back = cache.get(digest)
    assert back is not None and back.to_json() == scan.to_json()
    assert cache.hits == 1
    entry = tmp_path / RULES / ("ab" * 32 + ".json.z")
    entry.write_bytes(b"not zlib")
    assert cache.get(digest) is None  # damaged: read the layer again
    entry.write_bytes(zlib.compress(json.dumps({**scan.to_json(), "digest": "sha256:" + "cd" * 32})
                                    .encode()))
    assert cache.get(digest) is None  # an entry for another layer is not trusted
    assert cache.get("sha256:../../etc/passwd") is None


def test_prune_by_age_then_size(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, max_bytes=3000, max_age=3600)
    for i in range(6):
        blob, _ = make_layer({f"f{j}": os.urandom(64) for j in range(40 * (i + 1))})
        cache.put(scan_layer("sha256:" + f"{i:02x}" * 32, [blob]))
    files = sorted(cache.dir.iterdir())
    now = time.time()
    os.utime(files[0], (now - 7200, now - 7200))  # older than max_age
    for k, f in enumerate(files[1:]):
        os.utime(f, (now - 100 + k, now - 100 + k))
    removed = cache.prune()
    left = sorted(cache.dir.iterdir())
    assert files[0] not in left
    assert sum(f.stat().st_size for f in left) <= 3000
    assert removed == len(files) - len(left) and removed >= 2
    assert left == files[len(files) - len(left):]  # the most recently used stay


def test_pruning_stops_when_asked(tmp_path: Path) -> None:
    import threading

    cache = LayerCache(tmp_path, max_bytes=0, max_age=3600)
    blob, _ = make_layer({"f": b"x"})
    cache.put(scan_layer("sha256:" + "01" * 32, [blob]))
    stop = threading.Event()
    stop.set()
    assert cache.prune(stop) == 0 and len(list(cache.dir.iterdir())) == 1
    assert cache.prune() == 1  # over max_bytes: without the stop it goes


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory cannot be made below a file")
    cache = LayerCache(blocker / "cache")
    d = image(tmp_path / "img", b"x")
    report = verify_source(d, BOTH, cache=cache)
    assert report.ok and report.layers_read == 4
    assert cache.writable is False


def test_verify_cache_directory_follows_the_cache_dir_setting(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    with settings.using(load_settings({"POLYARCH_CACHE_DIR": str(tmp_path / "pc")})):
        assert default_dir() == tmp_path / "pc" / "verify"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "polyarch" / "verify"


def test_entries_made_with_other_known_values_are_not_reused(tmp_path: Path) -> None:
    # A layer scanned before a build argument's value was known has not been searched
    # for it: its entry does not answer for a build that knows the value.
    from polyarch import redact
    from polyarch.checks.cache import LayerCache
    from polyarch.checks.layers import LayerScan

    digest = "sha256:" + "c" * 64
    cache = LayerCache(tmp_path)
    redact.REDACTOR.clear()
    try:
        cache.put(LayerScan(digest))
        assert cache.get(digest) is not None
        redact.register_build_args({"DEPLOY_TOKEN": "k3Jx9-plain-value-Qw7"})
        assert cache.get(digest) is None
        cache.put(LayerScan(digest))
        assert cache.get(digest) is not None
        names = " ".join(p.name for p in cache.dir.iterdir())
        assert "k3Jx9" not in names
    finally:
        redact.REDACTOR.clear()
    assert cache.get(digest) is not None  # the entry made without values is still there
