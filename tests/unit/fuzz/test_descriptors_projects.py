"""Build descriptors (merge sources), projects ([[image]] entries, depends-on chains and
cycles) and the files a project reads its version from (package.json, pyproject.toml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import assert_clean, invoke
from .strategies import any_text, deep_json, json_values, toml_table, toml_values

DIGEST = "sha256:" + "cd" * 32
GOOD_DESCRIPTOR: dict[str, Any] = {
    "schema": 1, "kind": "polyarch-build", "repository": "127.0.0.1:5000/fuzz/app",
    "digest": DIGEST, "media_type": "application/vnd.oci.image.index.v1+json",
    "platforms": ["linux/arm64"], "manifests": {"linux/arm64": DIGEST},
    "modes": {"linux/arm64": "native"}, "staging": "", "created": "2025-01-01T00:00:00Z",
    "build_seconds": 1.5, "builder": "x",
}


def merge(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "part.json").write_bytes(content)
    assert_clean(invoke(["merge", "--dry-run", "-t", "127.0.0.1:5000/fuzz/app:1", "part.json"],
                        cwd=tmp_path))


@given(data=st.binary(max_size=300))
def test_any_descriptor_bytes_end_cleanly(tmp_path: Path, data: bytes) -> None:
    merge(tmp_path, data)


@given(text=deep_json)
def test_deeply_nested_descriptors_end_cleanly(tmp_path: Path, text: str) -> None:
    merge(tmp_path, text.encode())


@given(changes=st.dictionaries(st.sampled_from(sorted(GOOD_DESCRIPTOR)) | any_text,
                               json_values | st.integers(-10**400, 10**400), max_size=3))
def test_descriptors_with_odd_fields_end_cleanly(tmp_path: Path, changes: dict[str, Any]) -> None:
    merge(tmp_path, json.dumps({**GOOD_DESCRIPTOR, **changes}).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("content", [
    json.dumps({**GOOD_DESCRIPTOR, "build_seconds": 10**400}).encode(),
    json.dumps({**GOOD_DESCRIPTOR, "repository": "127.0.0.1:70618/fuzz/app"}).encode(),
    json.dumps({**GOOD_DESCRIPTOR, "repository": "127.0.0.1:5000/fuzz/app\n"}).encode(),
    json.dumps({**GOOD_DESCRIPTOR, "manifests": {"linux/arm64": ["x"] * 3}}).encode(),
    json.dumps({**GOOD_DESCRIPTOR, "builder": "é"}).encode("latin-1", "replace") + b"\xff",
    b'{"kind": "polyarch-build", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
])
def test_descriptors_that_once_crashed_end_cleanly(tmp_path: Path, content: bytes) -> None:
    merge(tmp_path, content)


def project(tmp_path: Path, text: str, *args: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "polyarch.toml").write_text(text, encoding="utf-8")
    assert_clean(invoke(["publish", "--dry-run", *args], cwd=tmp_path))


def chain(n: int, *, cycle: bool = False) -> str:
    out = []
    for i in range(n):
        dep = f"i{i + 1}" if i + 1 < n else ("i0" if cycle else None)
        out.append(f'[[image]]\nname = "i{i}"\ntags = ["127.0.0.1:5000/p/i{i}:1"]\n'
                   + (f'depends-on = ["{dep}"]\n' if dep else ""))
    return "\n".join(out)


@pytest.mark.parametrize(("n", "cycle"), [(1200, False), (1200, True), (3000, False),
                                          (2, True), (1, True)])
def test_long_dependency_chains_and_cycles_end_cleanly(tmp_path: Path, n: int, cycle: bool) -> None:
    project(tmp_path, chain(n, cycle=cycle))


@given(n=st.integers(1, 1500), cycle=st.booleans())
def test_project_chain_lengths(tmp_path: Path, n: int, cycle: bool) -> None:
    project(tmp_path, chain(n, cycle=cycle))


@given(edges=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 7)), max_size=12),
       select=st.sampled_from([[], ["i0"], ["i7"], ["nope"]]))
def test_any_dependency_graph_ends_cleanly(tmp_path: Path, edges: list[tuple[int, int]],
                                           select: list[str]) -> None:
    deps: dict[int, list[str]] = {}
    for a, b in edges:
        deps.setdefault(a, []).append(f"i{b}")
    text = "\n".join(f'[[image]]\nname = "i{i}"\ntags = ["127.0.0.1:5000/p/i{i}:1"]\n'
                     f"depends-on = {json.dumps(deps.get(i, []))}\n" for i in range(7))
    project(tmp_path, text, *select)


@given(entry=st.dictionaries(
    st.sampled_from(["name", "depends-on", "prebuild", "version", "name-from", "tag-env",
                     "tags", "platforms", "build-args", "context"]) | any_text,
    toml_values | st.sampled_from([{"from": ["package.json"]}, {"from": "package.json"},
                                   {"from": "git", "field": 1}, {"file": "package.json"},
                                   {"from": {"a": 1}}]),
    max_size=4))
def test_odd_image_entries_end_cleanly(tmp_path: Path, entry: dict[str, Any]) -> None:
    text = toml_table(entry)
    project(tmp_path, "[[image]]\n" + text)


VERSION_FROM = """\
[[image]]
name = "app"
version = { from = "package.json" }
tags = ["127.0.0.1:5000/p/app:{version}"]
"""
NAME_FROM = """\
[[image]]
name = "app"
name-from = { file = "package.json", field = "config.image" }
"""


@given(content=st.binary(max_size=200) | deep_json.map(str.encode)
       | json_values.map(lambda v: json.dumps({"version": v, "config": {"image": v}}).encode()),
       text=st.sampled_from([VERSION_FROM, NAME_FROM]))
def test_any_package_json_for_version_or_name_ends_cleanly(tmp_path: Path, content: bytes, text: str) -> None:
    (tmp_path / "package.json").write_bytes(content)
    project(tmp_path, text)


@pytest.mark.parametrize("version", [
    '{ from = ["package.json"] }', '{ from = { a = 1 } }', '{ from = "pyproject.toml", field = 1 }',
    '{ from = "package.json", field = "" }', '{ from = "package.json", field = "a..b" }',
])
def test_version_from_shapes(tmp_path: Path, version: str) -> None:
    (tmp_path / "package.json").write_text('{"version": "1.0.0"}')
    project(tmp_path, f'[[image]]\nname = "app"\nversion = {version}\n'
                      'tags = ["127.0.0.1:5000/p/app:{version}"]\n')


@given(content=st.binary(max_size=200) | toml_values.map(lambda v: toml_table({"x": v})))
def test_any_pyproject_for_version_ends_cleanly(tmp_path: Path, content: bytes | str) -> None:
    data = content if isinstance(content, bytes) else content.encode()
    (tmp_path / "pyproject.toml").write_bytes(data)
    project(tmp_path, '[[image]]\nname = "app"\nversion = { from = "pyproject.toml" }\n'
                      'tags = ["127.0.0.1:5000/p/app:{version}"]\n')
