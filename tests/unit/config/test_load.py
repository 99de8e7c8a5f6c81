import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from polyarch import config
from polyarch.errors import ConfigError, UsageError

from ..inprocess import error_line

DIGEST = "sha256:" + "a" * 64


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_no_file_and_no_env_give_the_defaults(tmp_path: Path) -> None:
    o = config.load({}, env={}, cwd=tmp_path)
    assert [str(p) for p in o.platforms] == ["linux/amd64", "linux/arm64"]
    assert o.tags == () and o.verify is True and o.source == "defaults"
    assert o.dockerfile == Path("./Dockerfile")


def test_cascade_file_env_cli(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
[project]
name = "x"
[tool.polyarch]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
tags = ["localhost:5000/a/b:file"]
build-args = { A = "file", B = "file" }
builder = "from-file"
provenance = false
""")
    o = config.load({}, env={}, cwd=tmp_path)
    assert [str(p) for p in o.platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert [str(t) for t in o.tags] == ["localhost:5000/a/b:file"]
    assert o.build_args == {"A": "file", "B": "file"}
    assert o.provenance is False
    assert o.source.endswith("pyproject.toml")

    env = {"POLYARCH_PLATFORMS": "arm64", "POLYARCH_BUILDER": "from-env",
           "POLYARCH_BUILD_ARGS": "A=env"}
    o = config.load({}, env=env, cwd=tmp_path)
    assert [str(p) for p in o.platforms] == ["linux/arm64"]
    assert o.builder == "from-env"
    assert o.build_args == {"A": "env"}  # a whole value replaces, it does not merge

    o = config.load({"builder": "from-cli", "platforms": ("amd64",), "tags": (),
                     "provenance": None}, env=env, cwd=tmp_path)
    assert o.builder == "from-cli"
    assert [str(p) for p in o.platforms] == ["linux/amd64"]
    assert [str(t) for t in o.tags] == ["localhost:5000/a/b:file"]  # empty CLI value: not given
    assert o.provenance is False


def test_polyarch_toml_preferred(tmp_path: Path) -> None:
    write(tmp_path / "polyarch.toml", 'platforms = ["arm64"]\n')
    write(tmp_path / "pyproject.toml", '[tool.polyarch]\nplatforms = ["amd64"]\n')
    o = config.load({}, env={}, cwd=tmp_path)
    assert [str(p) for p in o.platforms] == ["linux/arm64"]


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    f = write(tmp_path / "polyarch.toml", 'platfroms = ["arm64"]\n')
    with pytest.raises(ConfigError) as e:
        config.load({}, env={}, cwd=tmp_path)
    assert str(f) in e.value.line()
    assert "unknown key 'platfroms'" in e.value.line()
    assert "did you mean 'platforms'?" in e.value.line()
    assert e.value.exit_code == 2


def test_a_value_of_the_wrong_type_names_key_and_type(tmp_path: Path) -> None:
    write(tmp_path / "polyarch.toml", 'verify = "maybe"\n')
    with pytest.raises(ConfigError, match=r"polyarch.toml: 'verify' must be true or false"):
        config.load({}, env={}, cwd=tmp_path)
    write(tmp_path / "polyarch.toml", "tags = 5\n")
    with pytest.raises(ConfigError, match=r"'tags' must be a list of image references, not int 5"):
        config.load({}, env={}, cwd=tmp_path)


@pytest.mark.parametrize(("line", "message"), [
    ('no-cache = "yes"', "'no-cache' must be true or false, not str 'yes'"),
    ('verify = "off"', "'verify' must be true or false, not str 'off'"),
    ('platforms = "linux/amd64"', "'platforms' must be a list of platforms, not str"),
    ('tags = "r.example/a:1"', "'tags' must be a list of image references, not str"),
    ('build-args = "A=1"', "'build-args' must be a table of strings, not str"),
    ('annotations = "index:a=b"', "'annotations' must be a list of strings, not str"),
])
def test_a_file_value_must_have_its_toml_type(tmp_path: Path, line: str, message: str) -> None:
    """docs/configuration.md: lists are TOML arrays and booleans TOML booleans in the file;
    the string forms are the environment's ("yes", "a,b"), and a file using them is
    refused rather than read another way (no-cache = "yes" once turned the cache off)."""
    write(tmp_path / "polyarch.toml", line + "\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        config.load({}, env={}, cwd=tmp_path)
    assert e.value.exit_code == 2
    # The same string in the environment is its documented form.
    key = line.split(" = ")[0]
    env = {"POLYARCH_" + key.upper().replace("-", "_"): line.split(" = ")[1].strip('"')}
    config.load({}, env=env, cwd=tmp_path / "nowhere")


def test_an_image_entry_value_must_have_its_toml_type(tmp_path: Path) -> None:
    from polyarch.pipeline.images import image_options, load_project

    write(tmp_path / "polyarch.toml", '[[image]]\nname = "a"\nplatforms = "linux/amd64"\n'
          'tags = ["r.example/a:1"]\n')
    proj = load_project(tmp_path / "polyarch.toml")
    with pytest.raises(ConfigError, match="'platforms' must be a list of platforms"):
        image_options(proj.images[0], config.load({}, env={}, cwd=tmp_path / "nowhere"),
                      tmp_path, {}, {})


def test_bad_values_name_the_source(tmp_path: Path) -> None:
    write(tmp_path / "polyarch.toml", 'platforms = ["linux/arm65"]\n')
    with pytest.raises(ConfigError, match=r"polyarch.toml: 'platforms': unknown platform"):
        config.load({}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"environment variable POLYARCH_TAGS: 'tags': invalid tag"):
        config.load({}, env={"POLYARCH_TAGS": "a/b:bad tag"}, cwd=tmp_path / "nowhere")
    with pytest.raises(UsageError, match=r"'build-args': entry 'NOEQUALS' is not KEY=VALUE"):
        config.load({"build-args": ("NOEQUALS",)}, env={}, cwd=tmp_path / "nowhere")


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / "polyarch.toml", "platforms = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load({}, env={}, cwd=tmp_path)


def test_explicit_config_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load({}, env={}, config_path=tmp_path / "nope.toml")


def test_loaded_options_cannot_be_changed(tmp_path: Path) -> None:
    o = config.load({}, env={}, cwd=tmp_path)
    with pytest.raises(AttributeError):
        o.verify = False  # type: ignore[misc]


def test_engine_option_in_the_cascade(tmp_path: Path) -> None:
    assert config.load({}, env={}, cwd=tmp_path).engine == "docker"
    assert config.load({}, env={"POLYARCH_ENGINE": "podman"}, cwd=tmp_path).engine == "podman"
    (tmp_path / "polyarch.toml").write_text('engine = "auto"\n')
    assert config.load({}, env={}, cwd=tmp_path).engine == "auto"
    assert config.load({"engine": "docker"}, env={"POLYARCH_ENGINE": "podman"},
                       cwd=tmp_path).engine == "docker"
    (tmp_path / "polyarch.toml").write_text('engine = "rkt"\n')
    with pytest.raises(ConfigError, match="'engine': must be one of docker, podman, auto"):
        config.load({}, env={}, cwd=tmp_path)


def test_tag_with_a_digest_is_refused(tmp_path: Path) -> None:
    for tag in (f"127.0.0.1:5000/x/y:1@{DIGEST}", f"127.0.0.1:5000/x/y@{DIGEST}"):
        with pytest.raises(UsageError, match="names a digest"):
            config.load({"tags": (tag,)}, env={}, cwd=tmp_path)


def test_secret_specs_from_the_environment_keep_their_commas(tmp_path: Path) -> None:
    o = config.load({}, env={"POLYARCH_SECRETS": "id=npmrc,src=.npmrc\nid=gh,env=GH_TOKEN"},
                    cwd=tmp_path)
    assert o.secrets == ("id=npmrc,src=.npmrc", "id=gh,env=GH_TOKEN")


@pytest.mark.parametrize("text", ['tool = "x"\n', "[tool]\npolyarch = 5\n"])
def test_odd_tool_tables_are_config_errors(run_cli: Any, tmp_path: Path, text: str) -> None:
    (tmp_path / "polyarch.toml").write_text(text)
    run = run_cli("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", ".", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err and "internal error" not in run.err
    assert "polyarch.toml" in error_line(run)


def test_a_pyproject_that_never_says_polyarch_is_not_parsed(tmp_path: Path) -> None:
    """Its syntax is its own tools' business (here broken): the defaults apply. One that
    names the table, even through a unicode escape in a quoted key, is read."""
    write(tmp_path / "pyproject.toml", '[project\nname = "x"\n')
    assert config.load({}, env={}, cwd=tmp_path).source == "defaults"
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool."\\u0070olyarch"]\n'
          'platforms = ["linux/arm64"]\n')
    o = config.load({}, env={}, cwd=tmp_path)
    assert [str(p) for p in o.platforms] == ["linux/arm64"]
    # A polyarch.toml is always parsed.
    write(tmp_path / "polyarch.toml", "platforms = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load({}, env={}, cwd=tmp_path)


def test_a_config_file_is_parsed_once_per_process_until_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    load_mod = importlib.import_module("polyarch.config.load")

    parsed: list[str] = []
    real = tomllib.loads

    def counting(text: str) -> Any:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(tomllib, "loads", counting)
    f = write(tmp_path / "polyarch.toml", 'platforms = ["linux/amd64"]\n')
    first = load_mod.read_config(None, tmp_path)
    assert first is not None
    first[1]["platforms"].append("changed by a caller")  # callers get copies
    again = load_mod.read_config(None, tmp_path)
    assert again is not None and again[1] == {"platforms": ["linux/amd64"]}
    assert len(parsed) == 1
    # Changed in place, same size (whatever the clock's granularity): read again.
    write(f, 'platforms = ["linux/arm64"]\n')
    assert load_mod.read_config(None, tmp_path)[1]["platforms"] == ["linux/arm64"]  # type: ignore[index]
    assert len(parsed) == 2


def test_a_config_file_over_the_limit_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    load_mod = importlib.import_module("polyarch.config.load")

    monkeypatch.setattr(load_mod, "MAX_CONFIG", 100)
    # A pyproject.toml that never says polyarch is not ours, whatever its size...
    write(tmp_path / "pyproject.toml", "# " + "x" * 200 + "\n")
    assert config.load({}, env={}, cwd=tmp_path).source == "defaults"
    # ...one that does, and a polyarch.toml, must be under the limit.
    write(tmp_path / "pyproject.toml", "[tool.polyarch]\n# " + "x" * 200 + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        config.load({}, env={}, cwd=tmp_path)
    write(tmp_path / "polyarch.toml", "# " + "x" * 200 + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        config.load({}, env={}, cwd=tmp_path)
