"""Bad input that once ended in exit 70, through the real CLI against the real engine and
registry: each is refused with one line and exit 2 before anything is built or pushed.
(The in-process property tests in tests/unit/fuzz/ cover the space; these are the cases
as a user meets them.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Run, last_error_line, polyarch
from conftest import registry_catalog, registry_tags

DIGEST = "sha256:" + "ab" * 32


def refused(run: Run, *needles: str) -> str:
    assert run.code == 2, f"exit {run.code}\n{run.err}"
    assert "Traceback" not in run.text and "internal error" not in run.text
    line = last_error_line(run)
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    return d


def test_config_not_utf8(ctx: Path, repo: str, registry: str) -> None:
    (ctx / "polyarch.toml").write_bytes(b'platforms = ["linux/amd64\xff"]\n')
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "polyarch.toml", "not UTF-8")
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_config_nested_too_deeply(ctx: Path, repo: str) -> None:
    (ctx / "polyarch.toml").write_text("labels = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "nested too deeply")


def test_nul_in_a_build_arg(ctx: Path, repo: str, registry: str) -> None:
    (ctx / "polyarch.toml").write_text('build-args = { A = "x\\u0000y" }\n')
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "'build-args' contains a NUL")
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_nodes_json_nested_too_deeply(ctx: Path, repo: str) -> None:
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx,
                     env={"POLYARCH_NODES": "[" * 50_000 + "]" * 50_000}),
            "POLYARCH_NODES", "nested too deeply")


@pytest.mark.parametrize(("tag", "needle"), [
    ("127.0.0.1:70618/x/y:1", "port 70618 is not in 1-65535"),
    ("127.0.0.1:5000/x/y:1\nz", "control characters"),
])
def test_references(ctx: Path, tag: str, needle: str) -> None:
    refused(polyarch("publish", "-t", tag, ".", cwd=ctx), needle)


def test_merge_to_a_port_that_would_wrap(registry: str) -> None:
    # 70618 is 5082 modulo 65536: the tag must not land on another registry.
    before = registry_catalog(registry)
    refused(polyarch("merge", "-t", "127.0.0.1:70618/x/y:1", f"{registry}/x/y@{DIGEST}"),
            "port 70618 is not in 1-65535")
    assert registry_catalog(registry) == before


def test_source_date_epoch_out_of_range(ctx: Path, registry: str) -> None:
    run = polyarch("publish", "--image", f"{registry}/fuzz/epoch", "--tag-spec",
                   "type=schedule,pattern={{date 'YYYYMMDD'}}", ".", cwd=ctx,
                   env={"SOURCE_DATE_EPOCH": "9" * 30})
    refused(run, "SOURCE_DATE_EPOCH", "out of range")
    assert registry_tags(registry, "fuzz/epoch") == []


def test_descriptor_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "part.json").write_bytes(b'{"kind": "polyarch-build", "builder": "\xff"}')
    refused(polyarch("merge", "-t", "127.0.0.1:5000/x/y:1", "part.json", cwd=tmp_path),
            "part.json", "not JSON")


def test_descriptor_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "part.json").write_text('{"kind": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(polyarch("merge", "-t", "127.0.0.1:5000/x/y:1", "part.json", cwd=tmp_path),
            "part.json", "nested too deeply")


def test_depends_on_cycle_1200_long(ctx: Path) -> None:
    n = 1200
    (ctx / "polyarch.toml").write_text("\n".join(
        f'[[image]]\nname = "i{i}"\ntags = ["127.0.0.1:5000/p/i{i}:1"]\n'
        f'depends-on = ["i{(i + 1) % n}"]\n' for i in range(n)))
    line = refused(polyarch("publish", cwd=ctx), "depends-on cycle: i0 -> i1")
    assert len(line) < 400


def test_version_from_a_list(ctx: Path) -> None:
    (ctx / "polyarch.toml").write_text(
        '[[image]]\nname = "app"\nversion = { from = ["package.json"] }\n'
        'tags = ["127.0.0.1:5000/p/app:{version}"]\n')
    refused(polyarch("publish", cwd=ctx), "'version' must be a string")


def test_package_json_nested_too_deeply(ctx: Path) -> None:
    (ctx / "package.json").write_text('{"version": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (ctx / "polyarch.toml").write_text(
        '[[image]]\nname = "app"\nversion = { from = "package.json" }\n'
        'tags = ["127.0.0.1:5000/p/app:{version}"]\n')
    refused(polyarch("publish", cwd=ctx), "package.json", "nested too deeply")


def test_bad_timeout_setting(ctx: Path, repo: str) -> None:
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx,
                     env={"POLYARCH_COMMAND_TIMEOUT": "-1"}),
            "POLYARCH_COMMAND_TIMEOUT")


def test_json_env_value_in_json_mode(ctx: Path, repo: str) -> None:
    run = polyarch("publish", "--json", "-t", f"{repo}:1", ".", cwd=ctx,
                   env={"POLYARCH_BUILD_ARGS": json.dumps({"A": [1, {"b": None}]})})
    assert run.code in (0, 2), run.err
    assert "Traceback" not in run.text
