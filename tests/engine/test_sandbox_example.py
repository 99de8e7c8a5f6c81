"""examples/sandbox, published as its README says: the sandbox image of a Node.js CLI
(npm workspace packed by the Dockerfile's builder stage, installed globally as a
non-root user, with tree-sitter-bash's prebuilt addons for six platforms in the tree).

Real engine and the test registry; the base image comes from scripts/make-base. The
prebuild step fetches the vendored packages with the host's npm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Run, polyarch
from conftest import IN_CI, REGISTRY, registry_catalog, registry_tags

from .helpers import echoed_build

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sandbox"
EXAMPLE_BASE = "127.0.0.1:5000/polyarch/node:bookworm"
OTHER = {"linux/amd64": "linux-arm64", "linux/arm64": "linux-x64"}  # a prebuild inert there


@pytest.fixture(scope="module")
def node_base(base_images: dict[str, str]) -> str:
    """The examples' Node.js base image on the test registry (scripts/make-base)."""
    if shutil.which("npm") is None and not IN_CI:
        pytest.skip("npm is not installed (the example's prebuild runs npm pack)")
    return base_images["node"]


def sandbox(tmp_path: Path, node_base: str) -> tuple[Path, str]:
    """A copy of the example publishing to a fresh repository of the test registry:
    (its directory, the repository without tag)."""
    work = tmp_path / "sandbox"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("vendor", "node_modules"))
    path = f"test/sandbox-{uuid.uuid4().hex[:10]}"
    pkg = json.loads((work / "package.json").read_text())
    assert pkg["config"]["sandboxImageUri"] == "127.0.0.1:5000/demo/sandbox:0.1.0"
    pkg["config"]["sandboxImageUri"] = f"{REGISTRY}/{path}:0.1.0"
    (work / "package.json").write_text(json.dumps(pkg, indent=2))
    df = work / "Dockerfile"
    df.write_text(df.read_text().replace(EXAMPLE_BASE, node_base))
    return work, path


def publish(work: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Run, Any]:
    run = polyarch("publish", "--json", *args, cwd=work,
                   env={"SANDBOX_IMAGE_TAG": "", **(env or {})}, timeout=1500)
    doc = json.loads(run.out) if run.out.strip() else None
    return run, doc


def findings(image: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {p["platform"]: p["findings"] for p in image["verification"]["platforms"]}


def assert_clean(image: dict[str, Any]) -> None:
    """Verification passed with no error or warning on either platform (notes are fine),
    every check ran, and the smoke command ran on both."""
    v = image["verification"]
    assert v["ok"] is True and v["deep"] is True and v["smoke"] == "info"
    assert sorted(findings(image)) == ["linux/amd64", "linux/arm64"]
    for platform, found in findings(image).items():
        loud = [f for f in found if f["severity"] in ("error", "warning")]
        assert loud == [], (platform, loud)
    for p in v["platforms"]:
        assert p["checks"] == {"coverage": "pass", "labels": "pass", "binaries": "pass",
                               "secrets": "pass", "smoke": "pass"}, p


_PULLED: set[tuple[str, str]] = set()


@pytest.fixture(autouse=True)
def _remove_pulled_images() -> Iterator[None]:
    """The images run_image pulled into the engine's store go again after each test."""
    yield
    while _PULLED:
        engine, ref = _PULLED.pop()
        subprocess.run([engine, "image", "rm", "--force", ref], capture_output=True,
                       timeout=120, check=False)


def run_image(engine: str, ref: str, platform: str, *args: str) -> str:
    argv = [engine, "run", "--rm", "--pull", "always", "--platform", platform]
    if engine == "podman":
        argv.append("--tls-verify=false")
    _PULLED.add((engine, ref))
    r = subprocess.run([*argv, ref, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_publishes_both_platforms_clean(node_base: str, tmp_path: Path) -> None:
    """Prebuild, build, verify, smoke, push: no error or warning for the prebuilds of
    other platforms in the tree, each noted as inert; the output file holds a bare
    reference and is not replaced without --force."""
    work, path = sandbox(tmp_path, node_base)
    out = tmp_path / "image-uri.txt"
    run, doc = publish(work, "--output-file", str(out))
    assert run.code == 0, run.err[-4000:]
    assert sorted(p.name for p in (work / "vendor").iterdir()) == [
        "node-addon-api-8.5.0.tgz", "node-gyp-build-4.8.4.tgz", "tree-sitter-bash-0.25.1.tgz"]
    (image,) = doc["images"]
    name = f"{REGISTRY}/{path}"
    digest = image["index"]["digest"]
    assert image["tags"] == [f"{name}:0.1.0"]
    assert sorted(p["platform"] for p in image["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert_clean(image)

    # The other platform's prebuilt addon is in each variant: inert there, and noted
    # (listed in inert_binaries). Its own platform's addon is not: node loads that one.
    prefix = "/usr/local/share/npm-global/lib/node_modules/tree-sitter-bash/prebuilds"
    for p in image["verification"]["platforms"]:
        other = f"{prefix}/{OTHER[p['platform']]}/tree-sitter-bash.node"
        assert p["inert_binaries"] == [other], p
        notes = [f for f in p["findings"] if other in f["message"]]
        assert notes and {f["severity"] for f in notes} == {"info"}, p["findings"]

    # A bare REF@sha256 (what a CI step reading the file expects), the one pushed.
    assert out.read_text() == f"{name}:0.1.0@{digest}\n"
    assert registry_tags(REGISTRY, path) == ["0.1.0"]

    info = json.loads(run_image("docker", f"{name}:0.1.0", "linux/arm64", "info"))
    assert (info["arch"], info["machine"], info["user"]) == ("arm64", "aarch64", "node")
    assert info["grammar"]["name"] == "bash" and info["grammar"]["nodeTypes"] > 100
    assert run_image("docker", f"{name}:0.1.0", "linux/amd64", "--version") == "0.1.0"

    # The script this replaces refused to overwrite its output file; so does polyarch,
    # before building anything. --force replaces it.
    run, _ = publish(work, "--skip-prebuild", "--output-file", str(out))
    assert run.code == 2 and "exists" in run.err and "--force" in run.err
    assert echoed_build(run.err) is None
    run, doc = publish(work, "--skip-prebuild", "--force", "--output-file", str(out))
    assert run.code == 0, run.err[-4000:]
    assert "prebuild skipped" in run.err
    assert out.read_text() == f"{name}:0.1.0@{doc['images'][0]['index']['digest']}\n"


def test_tag_env_replaces_the_tag(node_base: str, tmp_path: Path) -> None:
    """SANDBOX_IMAGE_TAG (the example's tag-env) replaces the tag of package.json's name;
    --repository publishes the same path and tag to another registry host."""
    work, path = sandbox(tmp_path, node_base)
    run, doc = publish(work, env={"SANDBOX_IMAGE_TAG": "pr-42"})
    assert run.code == 0, run.err[-4000:]
    (image,) = doc["images"]
    assert image["tags"] == [f"{REGISTRY}/{path}:pr-42"]
    assert_clean(image)
    assert registry_tags(REGISTRY, path) == ["pr-42"]  # and not package.json's 0.1.0
    assert run_image("docker", f"{REGISTRY}/{path}:pr-42", "linux/amd64", "--version") == "0.1.0"


def test_wrong_prebuild_fails_and_nothing_is_pushed(node_base: str, tmp_path: Path) -> None:
    """An x86-64 addon under prebuilds/linux-arm64/ is the file node-gyp-build would
    load on arm64: verification fails (exit 5) and the registry never sees the image."""
    work, path = sandbox(tmp_path, node_base)
    # A real x86-64 addon: tree-sitter-bash's own linux-x64 prebuild, from the package
    # the prebuild step fetches (npm pack), placed where an arm64 one belongs.
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(tmp_path),
                    "tree-sitter-bash@0.25.1"], check=True, capture_output=True, timeout=300)
    with tarfile.open(tmp_path / "tree-sitter-bash-0.25.1.tgz") as tar:
        member = tar.extractfile("package/prebuilds/linux-x64/tree-sitter-bash.node")
        assert member is not None
        x64 = member.read()
    assert x64[:4] == b"\x7fELF" and int.from_bytes(x64[18:20], "little") == 62  # EM_X86_64
    wrong = work / "packages/cli/prebuilds/linux-arm64/sandbox-cli.node"
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(x64)
    cli_pkg = work / "packages/cli/package.json"
    pkg = json.loads(cli_pkg.read_text())
    pkg["files"].append("prebuilds")
    cli_pkg.write_text(json.dumps(pkg, indent=2))

    run, doc = publish(work)
    assert run.code == 5, run.err[-4000:]
    assert "verification failed" in run.err and "nothing of the project was pushed" in run.err
    (image,) = doc["images"]
    bad = "/usr/local/share/npm-global/lib/node_modules/sandbox-cli/prebuilds/linux-arm64/" \
          "sandbox-cli.node"
    errors = [f for f in findings(image)["linux/arm64"] if f["severity"] == "error"]
    assert [f["path"] for f in errors] == [bad], errors
    assert "x86-64" in errors[0]["message"]
    assert not [f for f in findings(image)["linux/amd64"] if f["severity"] == "error"]
    # Nothing of it reached the registry: no repository, no tag.
    assert path not in registry_catalog(REGISTRY)
    assert registry_tags(REGISTRY, path) == []


@pytest.fixture
def podman_insecure_conf(tmp_path: Path) -> dict[str, str]:
    """podman pulls the base from the loopback registry over plain HTTP only when
    registries.conf says so (docker does it by itself)."""
    if shutil.which("podman") is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed (scripts/engine up installs it)")
        pytest.skip("podman is not installed; run scripts/engine up")
    host = REGISTRY.split("/")[0]
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    return {"CONTAINERS_REGISTRIES_CONF": str(conf)}


def test_podman_publishes_the_same_job(node_base: str, tmp_path: Path,
                                       podman_insecure_conf: dict[str, str]) -> None:
    """--engine podman (podman build runs the RUN steps, arm64 under QEMU): the same
    clean verification, tag-env and a bare output file."""
    work, path = sandbox(tmp_path, node_base)
    out = tmp_path / "image-uri.txt"
    run, doc = publish(work, "--engine", "podman", "--output-file", str(out),
                       env={**podman_insecure_conf, "SANDBOX_IMAGE_TAG": "podman"})
    assert run.code == 0, run.err[-4000:]
    assert "+ podman build" in run.err
    (image,) = doc["images"]
    name = f"{REGISTRY}/{path}"
    assert image["tags"] == [f"{name}:podman"]
    assert_clean(image)
    assert out.read_text() == f"{name}:podman@{image['index']['digest']}\n"
    assert registry_tags(REGISTRY, path) == ["podman"]
    info = json.loads(run_image("podman", f"{name}:podman", "linux/arm64", "info"))
    assert (info["arch"], info["machine"], info["user"]) == ("arm64", "aarch64", "node")


def test_vendor_tarballs_are_the_only_packages_fetched() -> None:
    """The Dockerfile installs with --offline from the packed workspace and vendor/:
    every package the workspace depends on outside it is vendored by the prebuild."""
    toml = (EXAMPLE / "polyarch.toml").read_text()
    vendored = {spec.rsplit("@", 1)[0]: spec.rsplit("@", 1)[1]
                for line in toml.splitlines() if "npm pack" in line
                for spec in line.strip(' ",').split() if "@" in spec}
    workspace = {json.loads(p.read_text())["name"]
                 for p in EXAMPLE.glob("packages/*/package.json")}
    for p in EXAMPLE.glob("packages/*/package.json"):
        deps = json.loads(p.read_text()).get("dependencies", {})
        for dep, version in deps.items():
            assert dep in workspace or vendored.get(dep) == version, (p, dep, version)
    assert "--offline" in (EXAMPLE / "Dockerfile").read_text()
