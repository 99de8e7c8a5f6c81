"""Config files (polyarch.toml, pyproject.toml) and POLYARCH_* environment values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import assert_clean, invoke
from .strategies import (
    ENV_NAMES,
    FILE_KEYS,
    any_text,
    deep_json,
    deep_toml,
    env_text,
    json_values,
    toml_nested,
    toml_table,
    toml_values,
)

TAG = "127.0.0.1:5000/fuzz/app:1"


def publish_dry_run(cwd: Path, env: dict[str, str] | None = None, *extra: str) -> None:
    (cwd / "Dockerfile").write_text("FROM scratch\n")
    assert_clean(invoke(["publish", "--dry-run", "-t", TAG, *extra, "."], cwd=cwd, env=env))


@given(data=st.binary(max_size=400))
def test_config_file_bytes(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "polyarch.toml").write_bytes(data)
    publish_dry_run(tmp_path)


@given(table=st.dictionaries(st.sampled_from(FILE_KEYS) | any_text, toml_values, max_size=4))
def test_config_file_values(tmp_path: Path, table: dict[str, object]) -> None:
    (tmp_path / "polyarch.toml").write_text(toml_table(table), encoding="utf-8")
    publish_dry_run(tmp_path)


@given(key=st.sampled_from(FILE_KEYS), value=deep_toml)
def test_config_file_nesting(tmp_path: Path, key: str, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.polyarch]\n{key} = {value}\n")
    publish_dry_run(tmp_path)


@pytest.mark.parametrize("data", [
    b'platforms = ["linux/amd64\xff"]\n',          # invalid UTF-8
    b"\xfe\xff\x00p\x00l",                          # UTF-16 with a byte-order mark
    b"build-args = " + toml_nested(100_000, "array").encode() + b"\n",
    b"labels = " + toml_nested(100_000, "table").encode() + b"\n",
    b"[" + b"a." * 5000 + b"b]\nx = 1\n",          # a deep table header
    b'build-args = { A = "x\\u0000y" }\n',          # a NUL in a build arg
    b'labels = { "k\\u0000" = "v" }\n',
    b'secrets = ["id=a\\u0000,src=/x"]\n',
    b'tags = ["127.0.0.1:70618/x:1"]\n',           # a port that would wrap to 5082
    b'tags = ["127.0.0.1:5000/x:1\\nother"]\n',
    b"platforms = 1e999\n",
    b'insecure-registries = ["127.0.0.1:70618"]\n',
])
def test_config_file_cases(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "polyarch.toml").write_bytes(data)
    publish_dry_run(tmp_path)


@given(name=st.sampled_from(ENV_NAMES),
       value=env_text | json_values.map(json.dumps) | deep_json)
def test_any_env_setting_value_ends_cleanly(tmp_path: Path, name: str, value: str) -> None:
    publish_dry_run(tmp_path, {name: value})


@pytest.mark.parametrize(("name", "value"), [
    ("POLYARCH_NODES", "[" * 100_000 + "]" * 100_000),
    ("POLYARCH_NODES", '{"a":' * 5000 + "1" + "}" * 5000),
    ("POLYARCH_NODES", '[{"platform": "linux/arm64", "endpoint": "ssh://h:70618"}]'),
    ("POLYARCH_BUILD_ARGS", "A=1\nB"),
    ("POLYARCH_TAGS", "127.0.0.1:5000/a:1,127.0.0.1:99999/a:1"),
    ("POLYARCH_PLATFORMS", "linux/amd64," * 2000),
])
def test_huge_and_malformed_env_settings_end_cleanly(tmp_path: Path, name: str, value: str) -> None:
    publish_dry_run(tmp_path, {name: value})


@given(key=any_text, value=any_text)
def test_build_args_in_a_file(tmp_path: Path, key: str, value: str) -> None:
    (tmp_path / "polyarch.toml").write_text(toml_table({"build-args": {key: value}}),
                                            encoding="utf-8")
    publish_dry_run(tmp_path)


@given(arg=env_text)
def test_build_arg_on_the_command_line(tmp_path: Path, arg: str) -> None:
    publish_dry_run(tmp_path, None, "--build-arg", arg)


@given(epoch=st.integers(-10**40, 10**40).map(str) | env_text)
def test_source_date_epoch_publish(tmp_path: Path, epoch: str) -> None:
    publish_dry_run(tmp_path, {"SOURCE_DATE_EPOCH": epoch})


@pytest.mark.parametrize(("data", "needle"), [
    (b'platforms = ["linux/amd64\xff"]\n', "not UTF-8"),
    (b"labels = " + toml_nested(100_000, "table").encode() + b"\n", "nested too deeply"),
    (b'build-args = { A = "x\\u0000y" }\n', "'build-args' contains a NUL character"),
    (b'tags = ["127.0.0.1:70618/x:1"]\n', "port 70618 is not in 1-65535"),
    (b'tags = ["127.0.0.1:5000/x:1\\nother"]\n', "control characters"),
])
def test_config_file_refused_with_a_reason(tmp_path: Path, data: bytes, needle: str) -> None:
    (tmp_path / "polyarch.toml").write_bytes(data)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    o = invoke(["publish", "--dry-run", "-t", TAG, "."], cwd=tmp_path)
    assert o.code == 2, o.err
    line = o.err.rstrip().splitlines()[-1]
    assert line.startswith("polyarch: error: ") and "polyarch.toml" in line and needle in line, line


def test_nodes_env_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    o = invoke(["publish", "--dry-run", "-t", TAG, "."], cwd=tmp_path,
               env={"POLYARCH_NODES": "[" * 100_000 + "]" * 100_000})
    assert o.code == 2 and "POLYARCH_NODES" in o.err and "nested too deeply" in o.err, o.err


@pytest.mark.parametrize(("where", "needle"), [
    ("out-dir", "is a directory"),
    ("file-as-parent/out.txt", "is not a directory"),
    ("/proc/polyarch-out.txt", "cannot write there"),
])
def test_output_file_checked_before_the_build(tmp_path: Path, where: str, needle: str) -> None:
    (tmp_path / "out-dir").mkdir()
    (tmp_path / "file-as-parent").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for extra in ([], ["--dry-run"]):
        o = invoke(["publish", *extra, "--output-file", where, "-t", TAG, "."], cwd=tmp_path)
        assert o.code == 2 and "--output-file" in o.err and needle in o.err, o.err


# Relative: the check makes (and removes) a probe file where the path points.
@given(where=env_text.map(lambda s: "out/" + s))
def test_output_file_paths(tmp_path: Path, where: str) -> None:
    publish_dry_run(tmp_path, None, "--output-file", where)


@given(where=env_text.map(lambda s: "out/" + s))
def test_any_descriptor_path_ends_cleanly(tmp_path: Path, where: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert_clean(invoke(["build", "--dry-run", "--descriptor", where, "-t", TAG, "."],
                        cwd=tmp_path))


@given(name=st.sampled_from(FILE_KEYS),
       value=st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | deep_json)
def test_config_load_from_any_mapping(tmp_path: Path, name: str, value: str) -> None:
    """config.load with an environment mapping that no OS could pass (NUL bytes
    included): an Options object or a ConfigError, nothing else."""
    from polyarch import config
    from polyarch.errors import ConfigError

    env = {config.ENV_PREFIX + name.upper().replace("-", "_"): value}
    try:
        config.load({}, env=env, cwd=tmp_path)
    except ConfigError as e:
        assert e.exit_code == 2 and e.line()


@given(name=st.sampled_from(ENV_NAMES), value=env_text | deep_json)
def test_env_values_doctor(tmp_path: Path, name: str, value: str) -> None:
    assert_clean(invoke(["doctor", "--json"], cwd=tmp_path, env={name: value}))
