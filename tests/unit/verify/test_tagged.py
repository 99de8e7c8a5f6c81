"""Platform tags read from real packages' paths, and how tagged binaries are judged.

The paths and the machine of each file come from real npm packages and PyPI wheels
(tests/data/verify/tagged-paths.tsv names them); the files in the layers here are
ELF headers with those machines.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch.checks.layers import scan_layer
from polyarch.checks.tagged import LAYOUTS, _in_dir, tag_of
from polyarch.checks.verify import verify_source
from polyarch.platforms import EM_386, EM_AARCH64, EM_ARM, EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

DATA = Path(__file__).parents[2] / "data" / "verify" / "tagged-paths.tsv"
BOTH = parse_platforms("linux/amd64,linux/arm64")
MACHINES = {"x86-64": (EM_X86_64, 64), "aarch64": (EM_AARCH64, 64), "arm": (EM_ARM, 32),
            "i386": (EM_386, 32)}


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for line in DATA.read_text().splitlines():
        if line and not line.startswith("#"):
            src, path, machine, tag = line.split("\t")
            out.append((src, path, machine, tag))
    return out


def elf(machine: str, etype: int = 3) -> bytes:
    em, bits = MACHINES[machine]
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1, 1, 0]) + b"\0" * 8
    return ident + struct.pack("<HHI", etype, em, 1) + b"\0" * 200


@pytest.mark.parametrize(("src", "path", "machine", "want"), rows(),
                         ids=[r[1].split("node_modules/")[-1] for r in rows()])
def test_real_paths_name_their_platform(src: str, path: str, machine: str, want: str) -> None:
    tag = tag_of(path)
    got = "-" if tag is None else f"{tag.os}/{tag.architecture}" + (
        f"/{tag.libc}" if tag.libc else "")
    assert got == want, src


def test_every_layout_reads_its_own_examples() -> None:
    for lay in LAYOUTS:
        assert lay.loader and lay.examples, lay.name
        for example in lay.examples:
            path = example.split(": ", 1)[1]
            path = path if path.startswith("/") else "/app/" + path
            assert lay.pattern.search(path.lower()), (lay.name, example)
            assert tag_of(path) is not None, (lay.name, example)


def test_a_layout_reads_either_directories_or_names_with_its_suffix() -> None:
    # tag_of reads directory layouts once per directory and file-name layouts only on
    # names with their suffix: each layout must be one or the other.
    for lay in LAYOUTS:
        if lay.pattern.pattern.endswith("/"):
            assert not lay.suffix, lay.name
        else:
            assert lay.suffix and lay.pattern.pattern.endswith(re.escape(lay.suffix) + "$"), \
                lay.name


def test_a_tag_is_read_the_same_whatever_paths_came_before() -> None:
    # Directory matches are kept per directory: the same directory under another file
    # name, before and after other paths, gives the same answers as a first reading.
    paths = [r[1] for r in rows()] + [
        "/usr/lib/x86_64-linux-gnu/node_modules/addon/prebuilds/linux-arm64/addon.node",
        "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/addon.linux-arm64.node"]
    first = [tag_of(p) for p in paths]
    _in_dir.cache_clear()
    assert [tag_of(p) for p in reversed(paths)] == list(reversed(first))


@pytest.mark.parametrize("path", [
    "/app/node_modules/x/x.linux-x64-gnu.node\n",  # a tar member name may end in a newline
    "/usr/lib/python3/dist-packages/m/_m.cpython-311-x86_64-linux-gnu.so\n"])
def test_a_file_name_layout_reads_a_name_as_its_pattern_does(path: str) -> None:
    # The table's patterns end in $, which Python also matches before a final newline.
    tag = tag_of(path)
    assert tag is not None and tag.architecture == "amd64"


@pytest.mark.parametrize("path", [
    "/usr/bin/node", "/usr/local/lib/node_modules/clipboardy/fallbacks/linux/xsel",
    "/usr/lib/linux-tools/perf", "/opt/app/armada/bin/tool", "/usr/share/x64dbg/readme",
    "/usr/lib/node_modules/npm/node_modules/@npmcli/arborist/lib/arm64ish.js",
])
def test_paths_naming_no_architecture_are_untagged(path: str) -> None:
    assert tag_of(path) is None


def test_the_deepest_tag_wins() -> None:
    tag = tag_of("/usr/lib/x86_64-linux-gnu/node_modules/addon/prebuilds/linux-arm64/addon.node")
    assert tag is not None and tag.architecture == "arm64"
    jdk = tag_of("/usr/lib/jvm/java-8-openjdk-arm64/jre/lib/aarch64/server/libjvm.so")
    assert jdk is not None and jdk.architecture == "arm64"


def _image(tmp: Path, libc_loader: dict[str, str]) -> OCILayout:
    """A Debian-like image per platform holding every real binary of the data file (ELF
    ones) at its path, plus the platform's own C library loader."""
    files: dict[str, dict[str, bytes | tuple[str, str | None]]] = {"amd64": {}, "arm64": {}}
    for _src, path, machine, _tag in rows():
        if machine in MACHINES:
            for arch in files:
                files[arch][path.lstrip("/")] = elf(machine)
    for arch, loader in libc_loader.items():
        files[arch][loader] = elf("x86-64" if arch == "amd64" else "aarch64")
    variants = [(f"linux/{arch}", [(*make_layer(f), "gzip")]) for arch, f in files.items()]
    return OCILayout(write_oci_layout(tmp / "layout", variants))


def test_real_tree_on_glibc_images_only_the_real_problems(tmp_path: Path) -> None:
    lay = _image(tmp_path, {"amd64": "usr/lib/x86_64-linux-gnu/libc.so.6",
                            "arm64": "usr/lib/aarch64-linux-gnu/libc.so.6"})
    report = verify_source(lay, BOTH, cache=None)
    by = {p.platform: p for p in report.platforms}
    amd, arm = by["linux/amd64"], by["linux/arm64"]
    # amd64: clipboardy's xsel is x86-64; but the tree holds only the arm64 (or musl)
    # build of several packages whose loader takes the machine's own: each cannot load
    # on a glibc amd64 image. keytar's mislabelled prebuilds are inert here but worth a
    # warning each.
    missing = sorted(f.path.rsplit("/", 1)[-1] for f in amd.findings
                     if f.severity == "error" and f.path)
    assert all(f.kind == "missing-own-platform" for f in amd.findings if f.severity == "error")
    assert missing == [  # a Python package's modules: one finding about the package
        "_cffi_backend.cpython-312-aarch64-linux-gnu.so", "libvips-cpp.so.8.18.7",
        "lightningcss.linux-arm64-gnu.node", "numpy", "pty.node",
        "rollup.linux-arm64-gnu.node", "sharp-linux-arm64-0.35.5.node",
        "swc.linux-arm64-gnu.node", "watcher.node"]
    warned = sorted(f.path or "" for f in amd.findings if f.severity == "warning")
    assert [w.split("prebuilds/")[1] for w in warned] == [
        "linux-arm/keytar.node", "linuxmusl-arm/keytar.node", "linuxmusl-arm64/keytar.node"]
    assert all(f.kind == "tag-mismatch" for f in amd.findings if f.severity == "warning")
    # arm64: the one real bug is clipboardy's x86-64 xsel, which nothing tags.
    errors = [f for f in arm.findings if f.severity == "error"]
    assert [f.path for f in errors] == ["/usr/local/lib/node_modules/clipboardy/fallbacks/"
                                        "linux/xsel"]
    assert "x86-64" in errors[0].message and errors[0].kind == "wrong-machine"
    # Inert binaries are counted and named, never failing.
    assert "/usr/local/lib/node_modules/@esbuild/linux-x64/bin/esbuild" in arm.inert
    assert "/usr/local/lib/node_modules/@esbuild/linux-arm64/bin/esbuild" not in arm.inert
    assert "/usr/local/lib/node_modules/@esbuild/linux-arm64/bin/esbuild" in amd.inert
    notes = [f for f in arm.findings if f.kind == "inert"]
    assert len(notes) == 1 and notes[0].severity == "info"
    assert notes[0].message.startswith(f"{len(arm.inert)} binaries tagged for other platforms")
    assert report.to_json()["platforms"][1]["inert_binaries"] == arm.inert


def test_a_wrong_prebuild_for_the_own_platform_is_an_error(tmp_path: Path) -> None:
    # An x86-64 .node file under prebuilds/linux-arm64/: the file node loads on arm64.
    files = {"usr/lib/aarch64-linux-gnu/libc.so.6": elf("aarch64"),
             "app/node_modules/addon/prebuilds/linux-arm64/addon.node": elf("x86-64"),
             "app/node_modules/addon/prebuilds/linux-x64/addon.node": elf("x86-64")}
    lay = OCILayout(write_oci_layout(tmp_path / "l", [
        ("linux/arm64", [(*make_layer(files), "gzip")])]))
    report = verify_source(lay, parse_platforms("linux/arm64"), cache=None)
    errs = [f for p in report.platforms for f in p.findings if f.severity == "error"]
    assert [f.path for f in errs] == ["/app/node_modules/addon/prebuilds/linux-arm64/addon.node"]
    assert "tagged linux-arm64" in errs[0].message
    assert report.platforms[0].inert == ["/app/node_modules/addon/prebuilds/linux-x64/addon.node"]


def test_musl_builds_are_inert_on_glibc_and_loaded_on_musl(tmp_path: Path) -> None:
    # keytar's linuxmusl-arm64 file is x86-64 (a real upstream mistake).
    bad = "node_modules/@github/keytar/prebuilds/linuxmusl-arm64/keytar.node"
    glibc = {"lib/aarch64-linux-gnu/libc.so.6": elf("aarch64"), bad: elf("x86-64")}
    musl = {"lib/ld-musl-aarch64.so.1": elf("aarch64"), bad: elf("x86-64")}
    arm = parse_platforms("linux/arm64")
    for name, files, severity in (("glibc", glibc, "warning"), ("musl", musl, "error")):
        lay = OCILayout(write_oci_layout(tmp_path / name, [
            ("linux/arm64", [(*make_layer(files), "gzip")])]))
        res = verify_source(lay, arm, cache=None).platforms[0]
        assert [(f.path, f.severity) for f in res.findings if f.path] == [("/" + bad, severity)]


def test_wheel_libs_take_the_wheel_platform_tag(tmp_path: Path) -> None:
    # numpy 2.1.3's manylinux2014_aarch64 wheel: numpy.libs/ holds OpenBLAS, with no
    # platform in its name; the WHEEL file next to it says aarch64.
    site = "usr/local/lib/python3.12/site-packages"
    wheel = (b"Wheel-Version: 1.0\nGenerator: meson\nRoot-Is-Purelib: false\n"
             b"Tag: cp312-cp312-manylinux_2_17_aarch64\nTag: cp312-cp312-manylinux2014_aarch64\n")
    files = {f"{site}/numpy-2.1.3.dist-info/WHEEL": wheel,
             f"{site}/numpy.libs/libscipy_openblas64_-0f683016.so": elf("aarch64"),
             "usr/lib/x86_64-linux-gnu/libc.so.6": elf("x86-64")}
    blob, _ = make_layer(files)
    scan = scan_layer("sha256:w", [blob])
    assert scan.wheels == {f"/{site}/numpy-2.1.3.dist-info": [
        "cp312-cp312-manylinux_2_17_aarch64", "cp312-cp312-manylinux2014_aarch64"]}
    lay = OCILayout(write_oci_layout(tmp_path / "w", [("linux/amd64", [(blob, _, "gzip")])]))
    res = verify_source(lay, parse_platforms("linux/amd64"), cache=None).platforms[0]
    assert res.ok
    assert res.inert == [f"/{site}/numpy.libs/libscipy_openblas64_-0f683016.so"]


@pytest.mark.parametrize("path", [
    # Host programs of Debian's cross toolchains, named after their target: no tag.
    "/usr/x86_64-linux-gnu/bin/ld", "/usr/lib/gcc-cross/x86_64-linux-gnu/12/cc1",
    "/usr/bin/aarch64-linux-gnu-gcc-12",
    # Platform words in a directory name that no loader reads.
    "/opt/node-v20.11.0-linux-x64/bin/node", "/usr/local/bin/tool_linux_amd64",
    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/opt/prebuilds/linux-x64/addon.node",
])
def test_platform_words_outside_a_loader_layout_name_nothing(path: str) -> None:
    assert tag_of(path) is None


def test_cross_sysroot_libraries_are_tagged() -> None:
    tag = tag_of("/usr/x86_64-linux-gnu/lib/libc.so.6")
    assert tag is not None and (tag.rule, tag.architecture) == ("cross-sysroot", "amd64")


def test_every_test_data_rule_reads_its_example() -> None:
    from polyarch.checks.tagged import TEST_DATA_RULES, test_data_of

    for where, why, example in TEST_DATA_RULES:
        assert why and test_data_of(example.split(": ", 1)[1]) is not None, where
    assert test_data_of("/app/tests/fixtures/x.so") is None  # not inside a package tree


#: pillow 11.0.0's manylinux_2_28_aarch64 wheel: its extension module for glibc.
PIL_GNU = "usr/local/lib/python3.11/site-packages/PIL/_imaging.cpython-311-aarch64-linux-gnu.so"


def _findings(tmp_path: Path, name: str, files: dict[str, bytes | tuple[str, str]]) -> list[
        tuple[str, str]]:
    lay = OCILayout(write_oci_layout(tmp_path / name, [
        ("linux/arm64", [(*make_layer(files), "gzip")])]))
    res = verify_source(lay, parse_platforms("linux/arm64"), cache=None).platforms[0]
    return [(f.kind, f.path) for f in res.findings if f.severity == "error"]


@pytest.mark.parametrize("loader", [
    # Alpine: the loader is the file itself.
    {"lib/ld-musl-aarch64.so.1": elf("aarch64")},
    # Debian's musl 1.2.3-1 (arm64): lib/ld-musl-aarch64.so.1 -> aarch64-linux-musl/libc.so
    {"lib/aarch64-linux-musl/libc.so": elf("aarch64"),
     "lib/ld-musl-aarch64.so.1": ("symlink", "aarch64-linux-musl/libc.so")},
    # The same on a merged-/usr base (/lib -> usr/lib), the link absolute, then a chain.
    {"lib": ("symlink", "usr/lib"), "usr/lib/aarch64-linux-musl/libc.so": elf("aarch64"),
     "usr/lib/ld-musl-aarch64.so.1": ("symlink", "/lib/musl-libc.so"),
     "usr/lib/musl-libc.so": ("symlink", "../../lib/./aarch64-linux-musl/libc.so")},
], ids=["file", "relative-link", "merged-usr-chain"])
def test_a_musl_loader_by_file_or_link_flags_manylinux_wheels(
        tmp_path: Path, loader: dict[str, bytes | tuple[str, str]]) -> None:
    got = _findings(tmp_path, "m", {**loader, PIL_GNU: elf("aarch64")})
    assert got == [("missing-own-platform", "/usr/local/lib/python3.11/site-packages/PIL")]


def test_a_dangling_musl_loader_link_is_no_loader(tmp_path: Path) -> None:
    # The link's target was never installed (or a later layer deleted it): nothing loads
    # a musl program here, so a musllinux wheel in this glibc image cannot be imported.
    musl_so = PIL_GNU.replace("-gnu.so", "-musl.so")
    files: dict[str, bytes | tuple[str, str]] = {
        "lib/ld-musl-aarch64.so.1": ("symlink", "aarch64-linux-musl/libc.so"),
        "lib/aarch64-linux-gnu/libc.so.6": elf("aarch64"), musl_so: elf("aarch64")}
    assert _findings(tmp_path, "d", files) == [
        ("missing-own-platform", "/usr/local/lib/python3.11/site-packages/PIL")]
    # With no C library found at all, the strict reading: a glibc build is its own.
    assert _findings(tmp_path, "n", {"lib/ld-musl-aarch64.so.1": ("symlink", "nowhere"),
                                     PIL_GNU: elf("aarch64")}) == []


def test_a_glibc_loader_link_is_recognised(tmp_path: Path) -> None:
    # Debian 11's libc6 2.31 (arm64): /lib/ld-linux-aarch64.so.1 ->
    # aarch64-linux-gnu/ld-2.31.so and libc.so.6 -> libc-2.31.so, the only files named
    # by version. With it and a musl loader both there, a glibc build of the own
    # platform loads; without it, only musl does.
    musl = {"lib/aarch64-linux-musl/libc.so": elf("aarch64"),
            "lib/ld-musl-aarch64.so.1": ("symlink", "aarch64-linux-musl/libc.so")}
    glibc = {"lib/aarch64-linux-gnu/ld-2.31.so": elf("aarch64"),
             "lib/ld-linux-aarch64.so.1": ("symlink", "aarch64-linux-gnu/ld-2.31.so")}
    assert _findings(tmp_path, "g", {**musl, **glibc, PIL_GNU: elf("aarch64")}) == []
    assert _findings(tmp_path, "m", {**musl, PIL_GNU: elf("aarch64")}) == [
        ("missing-own-platform", "/usr/local/lib/python3.11/site-packages/PIL")]
