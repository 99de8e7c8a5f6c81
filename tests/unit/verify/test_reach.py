"""What runs is judged, whatever its path says: PATH, ENTRYPOINT/CMD, symlinks and
``#!`` lines reach a binary; a platform word exempts one only in a loader's layout and
when nothing reaches it. Test data of package trees is a note.

Each case is an arm64 image: files (ELF headers of the named machine, scripts,
symlinks), the config's run fields, and the one finding expected on the path given
(``None``: the variant passes with no warning or error). The layouts are those of real
packages: the node.js release tarball (``node-v20.11.0-linux-x64/bin/node``), the
``yq_linux_amd64`` release-asset naming, esbuild's per-platform npm packages, numpy's
wheels, Debian's multiarch and golang-1.19-src's ``src/debug/elf/testdata``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch.checks.filesystem import Filesystem, FinalFile
from polyarch.checks.reach import Launch, Reach
from polyarch.checks.verify import verify_source
from polyarch.platforms import EM_AARCH64, EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

ARM = parse_platforms("linux/arm64")
NODE_X64 = "opt/node-v20.11.0-linux-x64"
GLIBC = {"usr/lib/aarch64-linux-gnu/libc.so.6": "arm", "lib": ("sym", "usr/lib"),
         "bin": ("sym", "usr/bin")}


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 3, machine, 1) + b"\0" * 99


@dataclass(frozen=True)
class Case:
    name: str
    #: path -> "arm" | "x86" (an ELF of that machine), ("sym", target), or script text.
    files: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict)
    #: (path, severity, kind) expected, or None: no warning or error at all.
    expect: tuple[str, str, str] | None = None
    #: a phrase the finding's message holds.
    says: str = ""


CASES = [
    Case("x64 node tarball, its bin on PATH",
         {f"{NODE_X64}/bin/node": "x86", "usr/bin/sh": "arm"},
         {"Env": [f"PATH=/{NODE_X64}/bin:/usr/bin"], "Cmd": ["node", "server.js"]},
         (f"/{NODE_X64}/bin/node", "error", "wrong-machine"), "the CMD (node server.js)"),
    Case("x64 node tarball reached through a directory symlink on PATH",
         {f"{NODE_X64}/bin/node": "x86", "opt/node": ("sym", "node-v20.11.0-linux-x64")},
         {"Env": ["PATH=/opt/node/bin:/usr/bin"]},
         (f"/{NODE_X64}/bin/node", "error", "wrong-machine"), "in /opt/node/bin, a directory"),
    Case("x64 node tarball, /usr/local/bin/node links to it",
         {f"{NODE_X64}/bin/node": "x86",
          "usr/local/bin/node": ("sym", f"/{NODE_X64}/bin/node")},
         {"Env": ["PATH=/usr/local/bin:/usr/bin"]},
         (f"/{NODE_X64}/bin/node", "error", "wrong-machine"), "through /usr/local/bin/node"),
    Case("x64 node tarball nobody runs: still the image's platform (no loader picks it)",
         {f"{NODE_X64}/bin/node": "x86"}, {},
         (f"/{NODE_X64}/bin/node", "error", "wrong-machine")),
    Case("*_linux_amd64 release asset as ENTRYPOINT",
         {"usr/local/bin/tool_linux_amd64": "x86"},
         {"Entrypoint": ["/usr/local/bin/tool_linux_amd64"], "Env": ["PATH=/usr/bin"]},
         ("/usr/local/bin/tool_linux_amd64", "error", "wrong-machine"), "the ENTRYPOINT"),
    Case("relative ENTRYPOINT resolved against WorkingDir",
         {"app/tool_linux_amd64": "x86"},
         {"Entrypoint": ["./tool_linux_amd64"], "WorkingDir": "/app"},
         ("/app/tool_linux_amd64", "error", "wrong-machine"), "the ENTRYPOINT"),
    Case("foreign multiarch program run by a shell-form CMD",
         {"usr/lib/x86_64-linux-gnu/helper/run": "x86", "usr/bin/sh": "arm"},
         {"Cmd": ["/bin/sh", "-c", "exec /usr/lib/x86_64-linux-gnu/helper/run --serve"]},
         ("/usr/lib/x86_64-linux-gnu/helper/run", "error", "wrong-machine"), "the CMD"),
    Case("ENTRYPOINT [\"/bin/sh\", \"-c\"] with the command in CMD",
         {"usr/lib/x86_64-linux-gnu/helper/run": "x86", "usr/bin/sh": "arm"},
         {"Entrypoint": ["/bin/sh", "-c"],
          "Cmd": ["/usr/lib/x86_64-linux-gnu/helper/run --serve"]},
         ("/usr/lib/x86_64-linux-gnu/helper/run", "error", "wrong-machine"),
         "the ENTRYPOINT (/bin/sh -c)"),
    Case("tini runs the CMD's program",
         {"usr/lib/x86_64-linux-gnu/helper/run": "x86", "usr/bin/tini": "arm"},
         {"Entrypoint": ["tini", "--"], "Cmd": ["/usr/lib/x86_64-linux-gnu/helper/run"]},
         ("/usr/lib/x86_64-linux-gnu/helper/run", "error", "wrong-machine")),
    Case("foreign multiarch program named in a reachable script's #! line",
         {"usr/lib/x86_64-linux-gnu/py/python3": "x86",
          "usr/local/bin/app": "#!/usr/lib/x86_64-linux-gnu/py/python3\nprint(1)\n"},
         {"Entrypoint": ["app"], "Env": ["PATH=/usr/local/bin:/usr/bin"]},
         ("/usr/lib/x86_64-linux-gnu/py/python3", "error", "wrong-machine"),
         "#! interpreter of /usr/local/bin/app"),
    Case("#!/usr/bin/env node finds node through PATH",
         {f"{NODE_X64}/bin/node": "x86", "usr/local/bin/cli": "#!/usr/bin/env node\n",
          "usr/bin/env": "arm"},
         {"Entrypoint": ["cli"], "Env": [f"PATH=/usr/local/bin:/usr/bin:/{NODE_X64}/bin"]},
         (f"/{NODE_X64}/bin/node", "error", "wrong-machine")),
    Case("foreign multiarch library nothing reaches: inert",
         {"usr/lib/x86_64-linux-gnu/libssl.so.3": "x86", "usr/bin/openssl": "arm"}),
    Case("esbuild: own package present, other platform's inert",
         {"app/node_modules/@esbuild/linux-arm64/bin/esbuild": "arm",
          "app/node_modules/@esbuild/linux-x64/bin/esbuild": "x86"},
         {"Env": ["PATH=/app/node_modules/.bin:/usr/bin"]}),
    Case("esbuild: other platform's binary linked from node_modules/.bin on PATH",
         {"app/node_modules/@esbuild/linux-arm64/bin/esbuild": "arm",
          "app/node_modules/@esbuild/linux-x64/bin/esbuild": "x86",
          "app/node_modules/.bin/esbuild": ("sym", "../@esbuild/linux-x64/bin/esbuild")},
         {"Env": ["PATH=/app/node_modules/.bin:/usr/bin"]},
         ("/app/node_modules/@esbuild/linux-x64/bin/esbuild", "error", "wrong-machine"),
         "its path names linux-x64"),
    Case("esbuild: only linux-x64 installed on arm64",
         {"app/node_modules/@esbuild/linux-x64/bin/esbuild": "x86",
          "app/node_modules/esbuild/bin/esbuild": "#!/usr/bin/env node\n"}, {},
         ("/app/node_modules/@esbuild/linux-x64/bin/esbuild", "error", "missing-own-platform"),
         "npm install --os=linux --cpu=arm64"),
    Case("esbuild under pnpm: the own package elsewhere in the project counts",
         {"app/node_modules/.pnpm/@esbuild+linux-x64@0.20.2/node_modules/@esbuild/linux-x64/"
          "bin/esbuild": "x86",
          "app/node_modules/.pnpm/@esbuild+linux-arm64@0.20.2/node_modules/@esbuild/"
          "linux-arm64/bin/esbuild": "arm"}),
    Case("amd64 wheel's extension module in arm64 site-packages",
         {"usr/local/lib/python3.11/site-packages/numpy/_core/"
          "_multiarray_umath.cpython-311-x86_64-linux-gnu.so": "x86"}, {},
         ("/usr/local/lib/python3.11/site-packages/numpy", "error", "missing-own-platform"),
         "cannot be imported"),
    Case("extension module with an abi3 build next to a foreign one",
         {"usr/local/lib/python3.11/site-packages/m/_x.cpython-311-x86_64-linux-gnu.so": "x86",
          "usr/local/lib/python3.11/site-packages/m/_x.abi3.so": "arm"}),
    Case("Go toolchain for amd64 only: its pkg/tool for arm64 missing",
         {"usr/local/go/pkg/tool/linux_amd64/compile": "x86",
          "usr/local/go/pkg/tool/linux_amd64/link": "x86"}, {},
         ("/usr/local/go/pkg/tool/linux_amd64/compile", "error", "missing-own-platform"),
         "pkg/tool/linux_arm64/"),
    Case("Go source tree's test data: a note",
         {"usr/local/go/src/debug/elf/testdata/go-relocation-test-gcc930.obj": "x86",
          "usr/local/go/src/runtime/pprof/testdata/test64": "x86",
          "usr/local/go/bin/go": "arm", "usr/local/go/pkg/tool/linux_arm64/compile": "arm"},
         {"Env": ["PATH=/usr/local/go/bin:/usr/bin"]}),
    Case("test data reached from PATH is judged",
         {"usr/local/go/src/runtime/pprof/testdata/test64": "x86",
          "usr/local/bin/test64": ("sym", "../go/src/runtime/pprof/testdata/test64")},
         {"Env": ["PATH=/usr/local/bin"]},
         ("/usr/local/go/src/runtime/pprof/testdata/test64", "error", "wrong-machine")),
    Case("npm package test fixtures: a note",
         {"app/node_modules/elfy/test/fixtures/x86.so": "x86"}),
    Case("an application's own tests directory is not a package tree: judged",
         {"app/tests/fixtures/x86.so": "x86"}, {},
         ("/app/tests/fixtures/x86.so", "error", "wrong-machine")),
    Case("a symlink loop on PATH ends the walk",
         {"usr/local/bin/a": ("sym", "b"), "usr/local/bin/b": ("sym", "a"),
          "usr/lib/x86_64-linux-gnu/libz.so.1": "x86"},
         {"Env": ["PATH=/usr/local/bin"], "Entrypoint": ["a"]}),
]


def _files(case: Case) -> dict[str, bytes | tuple[str, str | None]]:
    out: dict[str, bytes | tuple[str, str | None]] = {}
    for p, v in {**GLIBC, **case.files}.items():
        if v == "arm":
            out[p] = elf(EM_AARCH64)
        elif v == "x86":
            out[p] = elf(EM_X86_64)
        elif isinstance(v, tuple):
            out[p] = v
        else:
            out[p] = v.encode()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_what_runs_is_judged(case: Case, tmp_path: Path) -> None:
    lay = OCILayout(write_oci_layout(tmp_path, [("linux/arm64", [(*make_layer(_files(case)),
                                                                  "gzip")])],
                                     run={"linux/arm64": case.run}))
    res = verify_source(lay, ARM, cache=None).platforms[0]
    found = [(f.path, f.severity, f.kind) for f in res.findings if f.severity != "info"]
    if case.expect is None:
        assert found == [], res.findings
        return
    assert found == [case.expect], res.findings
    msg = next(f.message for f in res.findings if f.path == case.expect[0])
    assert case.says in msg


def test_notes_name_inert_and_test_data_binaries(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name.startswith("Go source tree"))
    lay = OCILayout(write_oci_layout(tmp_path, [("linux/arm64", [(*make_layer(_files(case)),
                                                                  "gzip")])],
                                     run={"linux/arm64": case.run}))
    res = verify_source(lay, ARM, cache=None).platforms[0]
    (note,) = [f for f in res.findings if f.kind == "test-data"]
    assert note.severity == "info" and note.message.startswith("2 binaries of another machine")
    assert sorted(res.test_data) == [
        "/usr/local/go/src/debug/elf/testdata/go-relocation-test-gcc930.obj",
        "/usr/local/go/src/runtime/pprof/testdata/test64"]
    assert res.to_json()["test_data_binaries"] == res.test_data


def _fs(files: dict[str, str | None]) -> Filesystem:
    """Symlinks (target) and plain files (None)."""
    return Filesystem({p: FinalFile(p, 0, "sha256:x", None, link=t) for p, t in files.items()})


def test_the_path_walk_follows_links_in_every_component() -> None:
    fs = _fs({"/bin": "usr/bin", "/usr/bin/node": "../lib/node/bin/node",
              "/usr/lib/node": "/opt/node-v20", "/opt/node-v20/bin/node": None,
              "/loop/a": "b", "/loop/b": "/loop/a"})
    r = Reach(fs, Launch.of({"config": {"Env": ["PATH=/bin"]}}))
    assert r.resolve("/bin/node") == "/opt/node-v20/bin/node"
    # ".." after a symlink is the parent of its target, as in the kernel's walk.
    assert r.resolve("/usr/lib/node/../node/bin/node") == "/opt/node/bin/node"
    assert r.resolve("/loop/a") is None
    assert r.lookup("node") == "/opt/node-v20/bin/node"
    assert r.why("/opt/node-v20/bin/node") == (
        "in /bin, a directory of the config's PATH, through /usr/bin/node")


def test_the_runtime_default_path_applies_without_one_in_the_config() -> None:
    launch = Launch.of({"config": {"Env": ["HOME=/root"], "Cmd": ["app"]}})
    assert launch.path == ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                           "/sbin", "/bin")
    assert Launch.of(None).entrypoint == () and Launch.of({"config": None}).cmd == ()


@pytest.mark.parametrize("config", [
    {"config": {"Env": "PATH=/x", "Entrypoint": "/bin/app", "Cmd": 7, "WorkingDir": 1}},
    {"config": {"Env": [None, 3, "PATH="], "Entrypoint": [1, None]}},
    {"config": []}, {"other": 1},
])
def test_odd_configs_read_as_far_as_they_make_sense(config: dict[str, Any]) -> None:
    launch = Launch.of(config)
    assert launch.workdir == "/"
    r = Reach(_fs({"/bin/app": None}), launch)  # nothing raises
    assert r.why("/nothing") is None
