"""What the run options do where they are read: --repository on name-from images,
smoke-entrypoint on the smoke command, --force on --output-file, sources in doctor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyarch import config
from polyarch.cli import run
from polyarch.pipeline.images import image_options, load_project
from polyarch.pipeline.verify import smoke_run_argv
from polyarch.platforms import parse_platforms

AMD64 = parse_platforms("linux/amd64")[0]


def sandbox_project(tmp_path: Path) -> Path:
    # The shape of gemini-cli's sandbox job: the image name comes from package.json.
    (tmp_path / "package.json").write_text(json.dumps({
        "name": "@google/gemini-cli", "version": "0.1.1",
        "config": {"sandboxImageUri": "us-docker.pkg.dev/gemini-code-dev/gemini-cli/sandbox:0.1.1"}}))
    (tmp_path / "polyarch.toml").write_text("""
[[image]]
name = "sandbox"
name-from = { file = "package.json", field = "config.sandboxImageUri" }
tag-env = "GEMINI_SANDBOX_IMAGE_TAG"

[[image]]
name = "tools"
tags = ["ghcr.io/o/tools:1"]
""")
    return tmp_path


@pytest.mark.parametrize(("env", "want"), [
    ({}, "us-docker.pkg.dev/gemini-code-dev/gemini-cli/sandbox:0.1.1"),
    ({"POLYARCH_REPOSITORY": "127.0.0.1:5000"},
     "127.0.0.1:5000/gemini-code-dev/gemini-cli/sandbox:0.1.1"),
    ({"POLYARCH_REPOSITORY": "127.0.0.1:5000/mirror/sandbox", "GEMINI_SANDBOX_IMAGE_TAG": "dev"},
     "127.0.0.1:5000/mirror/sandbox:dev"),
])
def test_repository_rehomes_name_from_images(tmp_path: Path, env: dict[str, str],
                                            want: str) -> None:
    root = sandbox_project(tmp_path)
    project = load_project(cwd=root)
    assert project is not None
    base = config.load({}, env=env, cwd=root)
    sandbox = image_options(project.get("sandbox"), base, root, env, {})
    assert [str(t) for t in sandbox.tags] == [want]
    # Explicit tags are not moved.
    tools = image_options(project.get("tools"), base, root, env, {})
    assert [str(t) for t in tools.tags] == ["ghcr.io/o/tools:1"]


def test_image_entry_values_name_their_entry(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text('shm-size = "1g"\n[[image]]\nname = "a"\n'
                                            'tags = ["r.example/a:1"]\nnetwork = "none"\n')
    project = load_project(cwd=tmp_path)
    assert project is not None
    opts = image_options(project.get("a"), config.load({}, env={}, cwd=tmp_path), tmp_path,
                         {}, {})
    assert opts.value("network") == "none" and opts.origin("network").endswith("image 'a'")
    assert opts.value("shm_size") == "1g" and opts.origin("shm_size").startswith("file ")


def fake_run_argv(ref: str, platform: object, command: object, *,
                  entrypoint: str | None = None) -> list[str]:
    return ["run", *(["--entrypoint", entrypoint] if entrypoint is not None else []), ref,
            *list(command)]  # type: ignore[call-overload]


def test_smoke_entrypoint_replaces_the_images_for_the_smoke_command_only() -> None:
    argv = smoke_run_argv(fake_run_argv, "/bin/sh")
    want = ["run", "--entrypoint", "/bin/sh", "img", "-c", "true"]
    assert argv("img", AMD64, ["-c", "true"]) == want
    assert argv("img", AMD64, ["-c", "true"], entrypoint=None) == want
    # The uname check names its own entrypoint and keeps it.
    assert argv("img", AMD64, ["-m"], entrypoint="uname") == ["run", "--entrypoint", "uname",
                                                              "img", "-m"]
    assert smoke_run_argv(fake_run_argv, None) is fake_run_argv


def test_output_file_is_not_overwritten_without_force(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "image-ref.txt"
    out.write_text("keep me\n")
    code = run(["publish", "-t", "127.0.0.1:5000/a/b:1", "--output-file", str(out), "."])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (f"polyarch: error: --output-file {out} exists (remove it, or pass"
                           " --force to overwrite it)")
    assert out.read_text() == "keep me\n"


@pytest.mark.parametrize(("key", "value", "words"), [
    ("engine", '"podman"', "'engine' applies to the whole run, not one image"),
    ("shm-sise", '"1g"', "unknown key 'shm-sise' (did you mean 'shm-size'?)"),
])
def test_image_entry_keys(tmp_path: Path, key: str, value: str, words: str) -> None:
    from polyarch.errors import ConfigError

    (tmp_path / "polyarch.toml").write_text(f'[[image]]\nname = "a"\n{key} = {value}\n')
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path)
    assert words in e.value.line() and e.value.exit_code == 2


def test_repository_without_name_from_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = run(["publish", "-t", "127.0.0.1:5000/a/b:1", "--repository", "127.0.0.1:5000", "."])
    err = capsys.readouterr().err
    assert code == 2 and "--repository (command line) moves the images whose name" in err
    (tmp_path / "polyarch.toml").write_text('[[image]]\nname = "a"\ntags = ["r.example/a:1"]\n')
    monkeypatch.setenv("POLYARCH_REPOSITORY", "127.0.0.1:5000")
    code = run(["publish", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--repository (environment POLYARCH_REPOSITORY)" in err and "no image of" in err


def test_empty_smoke_means_the_uname_check_only(tmp_path: Path) -> None:
    from polyarch.commands._common import cli_values

    assert config.load(cli_values({"smoke": ""}), env={}, cwd=tmp_path).smoke == ""
    assert config.load({}, env={}, cwd=tmp_path).smoke is None
    (tmp_path / "polyarch.toml").write_text('smoke = ""\n')
    assert config.load({}, env={}, cwd=tmp_path).smoke == ""
