"""The built wheel, installed WITHOUT extras in a clean virtual environment, runs every
command once. A module the code imports but pyproject.toml does not declare fails here
(the test extras would otherwise hide it: they pull in packaging, pyyaml and more)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_images import make_layer, write_oci_layout

ROOT = Path(__file__).resolve().parents[2]

# An ELF header of each machine, enough for verify's machine check.
ELF_X86_64 = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00" + b"\0" * 44
ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\xb7\x00" + b"\0" * 44


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The polyarch program of a clean virtual environment holding only the wheel and
    its declared dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "--disable-pip-version-check", "-w", str(work / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheels = list((work / "dist").glob("polyarch-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    # --without-pip + the outer pip targeting it would also work; a plain venv is closer
    # to what a user makes.
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    inst = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", str(wheels[0])],
                          capture_output=True, text=True, timeout=900)
    assert inst.returncode == 0, inst.stderr
    # The test tools must not have leaked in: this is the environment of a user.
    listed = run([str(venv / "bin/python"), "-m", "pip", "list", "--format=json"], work,
                 dict(os.environ))
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "pytest" not in names and "hypothesis" not in names and "pyyaml" not in names
    yield venv / "bin/polyarch"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("POLYARCH_", "PYTHON"))}
    e["POLYARCH_CACHE_DIR"] = str(tmp_path / "cache")
    return e


def git_repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir()
    for argv in (["git", "init", "-q", "-b", "main"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
                  "--allow-empty", "-m", "one"],
                 ["git", "tag", "v1.2.3"]):
        r = run(argv, path, env)
        assert r.returncode == 0, r.stderr
    return path


def test_every_command_runs_from_the_installed_wheel(installed: Path, env: dict[str, str],
                                                     tmp_path: Path) -> None:
    out = run([str(installed), "--help"], tmp_path, env)
    assert out.returncode == 0 and "publish" in out.stdout, out.stderr
    for cmd in ("build", "doctor", "inspect", "lint", "merge", "publish", "tags", "verify"):
        out = run([str(installed), cmd, "--help"], tmp_path, env)
        assert out.returncode == 0 and out.stdout.startswith("Usage:"), (cmd, out.stderr)


@pytest.mark.parametrize("spec,ref,expected", [
    ("type=semver,pattern={{version}}", "refs/tags/v1.2.3", "1.2.3"),
    ("type=semver,pattern={{major}}.{{minor}}", "refs/tags/v1.2.3", "1.2"),
    ("type=pep440,pattern={{version}}", "refs/tags/v1.2.3", "1.2.3"),
    ("type=match,pattern=v(\\d+),group=1", "refs/tags/v1.2.3", "1"),
    ("type=ref,event=tag", "refs/tags/v1.2.3", "v1.2.3"),
    ("type=ref,event=branch", "refs/heads/main", "main"),
    ("type=ref,event=pr", "refs/pull/5/merge", "pr-5"),
    ("type=edge,branch=main", "refs/heads/main", "edge"),
    ("type=raw,value=stable", "refs/heads/main", "stable"),
    ("type=sha", "refs/heads/main", "sha-"),
])
def test_tags_of_each_type_from_the_installed_wheel(installed: Path, env: dict[str, str],
                                                    tmp_path: Path, spec: str, ref: str,
                                                    expected: str) -> None:
    repo = git_repo(tmp_path / "repo", env)
    for k in [k for k in env if k.startswith(("GITHUB_", "GITLAB_", "CI_"))]:
        del env[k]
    # The event a CI run on that ref would see (semver, pep440, match and ref,event=tag
    # only tag tag events, as in metadata-action).
    env["POLYARCH_GIT_REF"] = ref
    out = run([str(installed), "tags", "--context", str(repo), "--image", "r.example/app",
               "--tag-spec", spec, "--json"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    refs = json.loads(out.stdout)["refs"]
    assert any(t.startswith(f"r.example/app:{expected}") for t in refs), refs


def test_lint_verify_inspect_and_dry_run_from_the_installed_wheel(
        installed: Path, env: dict[str, str], tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM debian:bookworm\nRUN curl -fsSL https://example.com/tool_linux_amd64 -o /t\n")
    lint = run([str(installed), "lint", "--offline", str(ctx / "Dockerfile")], tmp_path, env)
    assert lint.returncode != 0 and "PA001" in lint.stdout + lint.stderr, lint

    good = write_oci_layout(tmp_path / "good", [
        ("linux/amd64", [(*make_layer({"bin/app": ELF_X86_64}), "gzip")]),
        ("linux/arm64", [(*make_layer({"bin/app": ELF_AARCH64}), "gzip")])])
    ver = run([str(installed), "verify", f"oci:{good}"], tmp_path, env)
    assert ver.returncode == 0, ver.stderr
    bad = write_oci_layout(tmp_path / "bad", [
        ("linux/amd64", [(*make_layer({"bin/app": ELF_X86_64}), "gzip")]),
        ("linux/arm64", [(*make_layer({"bin/app": ELF_X86_64}), "gzip")])])
    ver = run([str(installed), "verify", f"oci:{bad}"], tmp_path, env)
    assert ver.returncode == 5, ver.stderr
    assert ver.stderr.strip().splitlines()[-1].startswith("polyarch: error:"), ver.stderr

    ins = run([str(installed), "inspect", "--json", f"oci:{good}"], tmp_path, env)
    assert ins.returncode == 0, ins.stderr
    assert {m["platform"] for m in json.loads(ins.stdout)["platforms"]} == {
        "linux/amd64", "linux/arm64"}

    dry = run([str(installed), "build", "--dry-run", "--platform", "linux/amd64,linux/arm64",
               str(ctx)], tmp_path, env)
    assert dry.returncode == 0, dry.stderr
    assert "buildx" in dry.stdout + dry.stderr
