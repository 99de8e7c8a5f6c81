"""The examples in examples/, published for linux/amd64 and linux/arm64 and run.

Their base images (Debian minbase and Node.js, both platforms) are made from Debian
packages by scripts/make-base, once per session; it caches what it made and skips
what the registry already holds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import polyarch

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ELF_MACHINE = {"linux/amd64": 62, "linux/arm64": 183}  # EM_X86_64, EM_AARCH64


def docker(*args: str, timeout: float = 300) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"docker {' '.join(args)}:\n{r.stderr}"
    return r.stdout.strip()


def run_image(ref: str, platform: str, *cmd: str) -> str:
    return docker("run", "--rm", "--pull", "always", "--platform", platform, ref, *cmd)


def file_from_image(ref: str, platform: str, path: str, dest: Path) -> bytes:
    cid = docker("create", "--pull", "always", "--platform", platform, ref)
    try:
        docker("cp", f"{cid}:{path}", str(dest))
    finally:
        docker("rm", cid)
    return dest.read_bytes()


def image_config(ref: str, platform: str) -> Any:
    out = docker("buildx", "imagetools", "inspect", ref, "--format",
                 f'{{{{json (index .Image "{platform}").Config}}}}')
    return json.loads(out)


def publish_json(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    run = polyarch("publish", "--json", *args, cwd=cwd, env=env, timeout=1200)
    assert run.code == 0, run.err[-4000:]
    return run.json()


def test_cross_compile_example_runs_a_static_binary_per_platform(base_images: dict[str, str], repo: str,
                                                                 tmp_path: Path) -> None:
    ref = f"{repo}:1"
    doc = publish_json("-t", ref, "--build-arg", f"BASE={base_images['debian']}",
                       str(EXAMPLES / "cross-compile"))
    assert sorted(p["platform"] for p in doc["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert doc["verification"]["ok"] is True

    assert run_image(ref, "linux/arm64").splitlines()[0] == \
        "hello from a program built for aarch64, running on aarch64"
    assert run_image(ref, "linux/amd64").splitlines()[0] == \
        "hello from a program built for x86_64, running on x86_64"
    for platform, machine in ELF_MACHINE.items():
        elf = file_from_image(ref, platform, "/hello", tmp_path / f"hello-{machine}")
        assert elf[:4] == b"\x7fELF"
        assert int.from_bytes(elf[18:20], "little") == machine, platform
        # Statically linked: no program interpreter (PT_INTERP) to find in a scratch image.
        assert b"/lib/ld-linux" not in elf and b"/lib64/ld-linux" not in elf


def test_base_and_service_by_hand(base_images: dict[str, str], repo: str) -> None:
    """The service's `FROM base` resolved by a named build context pinned by digest."""
    example = EXAMPLES / "base-and-service"
    base_ref = f"{repo}-base:1"
    doc = publish_json("-t", base_ref, "--build-arg", f"BASE={base_images['node']}",
                       str(example / "base"))
    base_digest = str(doc["index"]["digest"])

    svc_ref = f"{repo}-service:1"
    docker("buildx", "build", "--platform", "linux/amd64,linux/arm64", "--provenance=false",
           "--build-context", f"base=docker-image://{repo}-base@{base_digest}",
           "--build-arg", f"NODE={base_images['node']}", "--push", "-t", svc_ref,
           str(example / "service"), timeout=900)

    assert run_image(svc_ref, "linux/arm64", "node", "/app/server.js", "--once") == \
        "hello from aarch64"
    assert run_image(svc_ref, "linux/amd64", "node", "/app/server.js", "--once") == \
        "hello from x86_64"
    # The final image is the base plus the service: its config file and user are there,
    # and node_modules was copied in from the builder stage (a real copy, not a link).
    assert run_image(svc_ref, "linux/arm64", "sh", "-c",
                     "id -un; cat /etc/app/app.conf | grep -c =;"
                     " test -f /app/node_modules/greeting/index.js && echo copied") == \
        "app\n2\ncopied"


def test_base_and_service_project(base_images: dict[str, str], repo: str, tmp_path: Path) -> None:
    """`polyarch publish` with the example's polyarch.toml: base first, the service pinned
    to the base digest built in the same run."""
    work = tmp_path / "base-and-service"
    shutil.copytree(EXAMPLES / "base-and-service", work)
    toml = (work / "polyarch.toml").read_text()
    toml = toml.replace("127.0.0.1:5000/demo/app-base:0.1.0", f"{repo}-base:1")
    toml = toml.replace("127.0.0.1:5000/demo/app-service:0.1.0", f"{repo}-service:1")
    (work / "polyarch.toml").write_text(toml)
    for d in ("base", "service"):
        df = work / d / "Dockerfile"
        df.write_text(df.read_text().replace("127.0.0.1:5000/polyarch/node:bookworm",
                                             base_images["node"]))

    doc = publish_json("--output-file", str(tmp_path / "images.txt"), cwd=work)
    images = {i["name"]: i for i in doc["images"]}
    assert list(images) == ["base", "service"]
    base_digest = images["base"]["index"]["digest"]
    for i in images.values():
        assert i["verification"]["ok"] is True
        assert i["verification"]["smoke"]
    labels = image_config(f"{repo}-service:1", "linux/arm64")["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == base_digest
    assert labels["io.polyarch.depends.base"] == f"{repo}-base@{base_digest}"
    assert (tmp_path / "images.txt").read_text().splitlines() == [
        f"base={repo}-base:1@{base_digest}",
        f"service={repo}-service:1@{images['service']['index']['digest']}",
    ]


def test_hello_example_runs_on_each_platform_as_the_demo_publishes_it(repo: str, tmp_path: Path) -> None:
    """examples/busybox-base and examples/hello, as scripts/demo publishes them."""
    base_ctx = tmp_path / "busybox-base"
    shutil.copytree(EXAMPLES / "busybox-base", base_ctx,
                    ignore=shutil.ignore_patterns("rootfs-*"))
    subprocess.run([str(ROOT / "scripts/make-rootfs"), str(base_ctx)], check=True)
    base = f"{repo}/busybox:latest"
    run = polyarch("publish", "-t", base, str(base_ctx))
    assert run.code == 0, run.err
    ref = f"{repo}/hello:1.0"
    run = polyarch("publish", "-t", ref, "--build-arg", f"BASE={base}", str(EXAMPLES / "hello"))
    assert run.code == 0, run.err
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        out = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform",
                              platform, ref], capture_output=True, text=True, timeout=300)
        assert out.stdout.split() == ["hello", "from", machine, "running", "on", machine], out
