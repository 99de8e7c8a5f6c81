"""Image references (-t, merge sources) and platform strings."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from polyarch.refs import ReferenceError, parse_ref

from .harness import assert_clean, invoke
from .strategies import env_text

DIGEST = "sha256:" + "ab" * 32

hosts = st.sampled_from(["127.0.0.1", "localhost", "ghcr.io", "[::1]", "r.example.com", "a-b.c",
                         "", "UPPER.io", "1.2.3.4.5", "host_name"])
ports = st.integers(-5, 200_000).map(str) | st.sampled_from(["", "05000", "0x50", " 5000"])
paths = st.lists(st.sampled_from(["a", "b", "app", "A", "a--b", "a..b", "_a", "x" * 40, ""])
                 | env_text, min_size=1, max_size=3).map("/".join)
tags = st.sampled_from(["1", "latest", "v1.2.3", "-x", ".x", "a" * 129, ""]) | env_text
ref_like = st.builds(
    lambda h, p, path, t, sep: f"{h}{':' + p if p else ''}/{path}{sep}{t}",
    hosts, ports, paths, tags, st.sampled_from([":", "@", "@sha256:", "", ":\n", "\n"]),
) | env_text


@given(text=ref_like)
def test_parse_ref_is_total(text: str) -> None:
    """Either a reference that prints and parses back to itself, with a port in range and
    no control characters, or a ReferenceError whose message is one line."""
    try:
        ref = parse_ref(text)
    except ReferenceError as e:
        assert str(e) and "\n" not in str(e)
        return
    printed = str(ref)
    assert parse_ref(printed) == ref
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in printed)
    host = ref.registry.rsplit("]", 1)[-1]
    if ":" in host:
        assert 1 <= int(host.rsplit(":", 1)[1]) <= 65535


@given(text=ref_like)
def test_any_publish_tag_ends_cleanly(tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert_clean(invoke(["publish", "--dry-run", "-t", text, "."], cwd=tmp_path))


@given(tag=ref_like, source=ref_like)
def test_any_merge_tag_and_source_end_cleanly(tmp_path: Path, tag: str, source: str) -> None:
    assert_clean(invoke(["merge", "--dry-run", "-t", tag, source, f"127.0.0.1:5000/a@{DIGEST}"],
                        cwd=tmp_path))


def test_merge_refuses_a_port_that_would_wrap(tmp_path: Path) -> None:
    o = invoke(["merge", "--dry-run", "-t", "127.0.0.1:70618/x:1", f"127.0.0.1:5000/a@{DIGEST}"],
               cwd=tmp_path)
    assert o.code == 2 and "port 70618 is not in 1-65535" in o.err, o.err


platform_like = st.lists(
    st.sampled_from(["linux", "windows", "darwin", "amd64", "arm64", "arm", "v7", "v8", "v9",
                     "riscv64", "s390x", "386", "", "Linux", "x86_64", "aarch64", "armhf",
                     "ppc64le", "mips64le", "local", "all"]) | env_text,
    min_size=1, max_size=4).map("/".join)


@given(platforms=st.lists(platform_like, min_size=1, max_size=3).map(",".join))
def test_any_publish_platform_list_ends_cleanly(tmp_path: Path, platforms: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert_clean(invoke(["publish", "--dry-run", "-t", "127.0.0.1:5000/a:1", "--platform",
                         platforms, "."], cwd=tmp_path))


@given(platforms=st.lists(platform_like, min_size=1, max_size=3).map(",".join))
def test_any_merge_platform_list_ends_cleanly(tmp_path: Path, platforms: str) -> None:
    assert_clean(invoke(["merge", "--dry-run", "-t", "127.0.0.1:5000/a:1", "--platform",
                         platforms, f"127.0.0.1:5000/a@{DIGEST}"], cwd=tmp_path))


@given(text=ref_like, command=st.sampled_from(["inspect", "verify"]))
def test_inspect_and_verify_references(tmp_path: Path, text: str, command: str) -> None:
    assert_clean(invoke([command, text], cwd=tmp_path))


@given(text=ref_like)
def test_build_stage_tag(tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert_clean(invoke(["build", "--dry-run", "-t", text, "."], cwd=tmp_path))
