"""Projects with several images: dependency order, digest pinning, sandbox parity."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import registry_tags, unpack_busybox

from polyarch.errors import ConfigError
from polyarch.pipeline.project import ImageSpec, load_project, order, resolve_tags

BASE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN echo "base built on $(uname -m)" > /etc/base-release
"""

SERVICE = """\
FROM base
ARG SERVICE
RUN echo "$SERVICE on $(cat /etc/base-release)" > /srv.txt
CMD ["cat", "/srv.txt"]
"""


def write_project(root: Path, registry_repo: str) -> Path:
    (root / "base").mkdir(parents=True)
    for a in ("amd64", "arm64"):
        unpack_busybox(a, root / "base" / f"rootfs-{a}")
    (root / "base/Dockerfile").write_text(BASE)
    for s in ("api", "worker"):
        (root / s).mkdir()
        (root / s / "Dockerfile").write_text(SERVICE)
    (root / "polyarch.toml").write_text(f"""
platforms = ["linux/amd64", "linux/arm64"]

[[image]]
name = "base"
context = "base"
tags = ["{registry_repo}/base:1"]

[[image]]
name = "api"
context = "api"
depends-on = ["base"]
tags = ["{registry_repo}/api:1"]
build-args = {{ SERVICE = "api" }}

[[image]]
name = "worker"
context = "worker"
depends-on = ["base"]
tags = ["{registry_repo}/worker:1"]
build-args = {{ SERVICE = "worker" }}
""")
    return root


def config_labels(ref: str, arch: str = "arm64") -> dict[str, str]:
    out = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                          "--override-arch", arch, f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out)["config"].get("Labels") or {})


@pytest.mark.engine
def test_base_and_two_services(tmp_path: Path, repo: str, registry: str) -> None:
    root = write_project(tmp_path / "proj", repo)
    run = polyarch("publish", "--json", "--output-file", "out/images.txt", cwd=root)
    assert run.code == 0, run.err
    doc = run.json()
    assert [i["name"] for i in doc["images"]] == ["base", "api", "worker"]
    base_digest = doc["images"][0]["index"]["digest"]
    for svc in ("api", "worker"):
        labels = config_labels(f"{repo}/{svc}:1")
        assert labels["org.opencontainers.image.base.digest"] == base_digest
        assert labels["io.polyarch.depends.base"] == f"{repo}/base@{base_digest}"
        out = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform",
                              "linux/arm64", f"{repo}/{svc}:1"], capture_output=True, text=True)
        assert out.stdout.strip() == f"{svc} on base built on aarch64", out.stderr
    lines = (root / "out/images.txt").read_text().splitlines()
    assert lines[0] == f"base={repo}/base:1@{base_digest}"
    assert [ln.split("=")[0] for ln in lines] == ["base", "api", "worker"]

    # One image and what it depends on, not the rest.
    repo2 = repo + "-b"
    write_project(tmp_path / "proj2", repo2)
    run = polyarch("publish", "api", "--json", cwd=tmp_path / "proj2")
    assert run.code == 0, run.err
    assert [i["name"] for i in run.json()["images"]] == ["base", "api"]
    name = repo2.split("/", 1)[1]
    assert registry_tags(registry, f"{name}/worker") == []


SANDBOX_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
ARG CLI_VERSION
COPY rootfs-${TARGETARCH}/ /
COPY dist/cli.sh /bin/sandbox-cli
RUN echo "$CLI_VERSION" > /etc/cli-version
"""


@pytest.mark.engine
def test_sandbox_parity(tmp_path: Path, registry: str, repo: str) -> None:
    root = tmp_path / "sandbox"
    root.mkdir()
    for a in ("amd64", "arm64"):
        unpack_busybox(a, root / f"rootfs-{a}")
    (root / "Dockerfile").write_text(SANDBOX_DOCKERFILE)
    name = f"{repo}/sandbox"  # registry with a port: 'host:port/x' must not split on ':'
    (root / "package.json").write_text(json.dumps(
        {"name": "sandbox-cli", "version": "0.56.0", "config": {"sandboxImageUri": name}}))
    (root / "polyarch.toml").write_text("""
[[image]]
name = "sandbox"
prebuild = [
  "mkdir -p dist",
  "echo building the cli",
  "printf '#!/bin/sh\\necho sandbox-cli 0.56.0\\n' > dist/cli.sh",
  "chmod +x dist/cli.sh",
]
version = { from = "package.json", field = "version" }
name-from = { file = "package.json", field = "config.sandboxImageUri" }
tag-env = "SANDBOX_IMAGE_TAG"
build-args = { CLI_VERSION = "{version}" }
smoke = "sandbox-cli --version"
""")
    run = polyarch("publish", "--json", "--output-file", "uri.txt", cwd=root,
                   env={"SANDBOX_IMAGE_TAG": ""})
    assert run.code == 0, run.err
    # Each prebuild command is named; its output goes to a log file (shown on failure).
    assert "==> sandbox: prebuild: echo building the cli" in run.err.splitlines()
    assert "building the cli" not in run.err.splitlines()
    img = run.json()["images"][0]
    assert img["tags"] == [f"{name}:0.56.0"]
    smoke = {p["platform"]: p["checks"]["smoke"] for p in img["verification"]["platforms"]}
    assert smoke == {"linux/amd64": "pass", "linux/arm64": "pass"}
    # One image: the bare reference, as the script's output file held.
    assert (root / "uri.txt").read_text() == f"{name}:0.56.0@{img['index']['digest']}\n"

    # The environment variable overrides the tag.
    run = polyarch("publish", "--json", cwd=root, env={"SANDBOX_IMAGE_TAG": "pr-17"})
    assert run.code == 0, run.err
    assert run.json()["images"][0]["tags"] == [f"{name}:pr-17"]
    assert "undefined" not in registry_tags(registry, name.split("/", 1)[1])


@pytest.mark.engine
def test_failing_prebuild_stops_with_its_output(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "polyarch.toml").write_text(f"""
[[image]]
name = "app"
tags = ["{repo}:1"]
prebuild = ["echo npm ERR! missing script: pack >&2; exit 3"]
""")
    run = polyarch("publish", cwd=root)
    assert run.code == 1, run.err
    # The command's own output is shown (not just the echo of the command line).
    assert "npm ERR! missing script: pack" in [ln.strip() for ln in run.err.splitlines()]
    assert "prebuild command" in last_error_line(run) and "exit status 3" in last_error_line(run)


def spec(**kw: object) -> ImageSpec:
    return ImageSpec(name="x", where="test", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("uri", "version", "env", "expected"), [
    ("localhost:5000/x:1", None, "", "localhost:5000/x:1"),
    ("localhost:5000/x", "0.56.0", "", "localhost:5000/x:0.56.0"),
    ("localhost:5000/x", None, "", "localhost:5000/x:latest"),
    ("us-docker.pkg.dev/p/r/sandbox:0.56.0", "1.0.0", "", "us-docker.pkg.dev/p/r/sandbox:0.56.0"),
    ("us-docker.pkg.dev/p/r/sandbox:0.56.0", None, "nightly", "us-docker.pkg.dev/p/r/sandbox:nightly"),
    ("127.0.0.1:5000/a/b", "2.0.0", "feature-x", "127.0.0.1:5000/a/b:feature-x"),
])
def test_reference_parsing(tmp_path: Path, uri: str, version: str | None, env: str,
                           expected: str) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"config": {"uri": uri}}))
    s = spec(name_from={"file": "package.json", "field": "config.uri"}, tag_env="TAG")
    refs = resolve_tags(s, tmp_path, version, {"TAG": env} if env else {})
    assert [str(r) for r in refs] == [expected]


def test_bad_tag_env_and_missing_version(tmp_path: Path) -> None:
    from polyarch.errors import UsageError

    with pytest.raises(UsageError, match="environment variable TAG: invalid tag"):
        resolve_tags(spec(tags=("r.io/a",), tag_env="TAG"), tmp_path, None, {"TAG": "bad tag"})
    with pytest.raises(ConfigError, match=r"uses \{version\} but no 'version' is set"):
        resolve_tags(spec(tags=("r.io/a:{version}",)), tmp_path, None, {})


def test_config_errors(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ndepends-on = ["b"]\n[[image]]\nname = "b"\ndepends-on = ["a"]\n')
    with pytest.raises(ConfigError, match="depends-on cycle: a -> b -> a"):
        load_project(cwd=tmp_path)
    (tmp_path / "polyarch.toml").write_text('[[image]]\nname = "a"\ndepends-on = ["bse"]\n'
                                            '[[image]]\nname = "base"\n')
    with pytest.raises(ConfigError, match="not an image of this project"):
        load_project(cwd=tmp_path)
    (tmp_path / "polyarch.toml").write_text('[[image]]\nname = "a"\ndepnds-on = ["b"]\n')
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path)
    assert "unknown key 'depnds-on'" in e.value.line()
    assert "did you mean 'depends-on'?" in e.value.line()


def test_order_puts_dependencies_first(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "svc"\ndepends-on = ["mid"]\n[[image]]\nname = "mid"\n'
        'depends-on = ["base"]\n[[image]]\nname = "base"\n[[image]]\nname = "other"\n')
    proj = load_project(cwd=tmp_path)
    assert proj is not None
    assert [i.name for i in order(proj, [])] == ["base", "mid", "svc", "other"]
    assert [i.name for i in order(proj, ["svc"])] == ["base", "mid", "svc"]
    shutil.rmtree(tmp_path)


def test_cli_cycle_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ndepends-on = ["a"]\n')
    run = polyarch("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2
    assert "cycle" in last_error_line(run)
