"""buildx's build flags (--secret, --ssh, --network, --ulimit, --attest, --cache-from/-to,
--shm-size, --insecure-registry), --smoke, tag-spec priorities, SOURCE_DATE_EPOCH and
POLYARCH_REGISTRY_TIMEOUT through ``publish --dry-run``, and [[image]] value types: a
malformed value is exit 2 with one line before anything runs, never exit 70, and a dry
run refuses what a real run would."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import Outcome, assert_clean, invoke
from .strategies import env_text

TAG = "127.0.0.1:5000/fuzz/app:1"

FLAGS = ["--secret", "--ssh", "--network", "--ulimit", "--attest", "--cache-from",
         "--cache-to", "--shm-size", "--insecure-registry", "--smoke"]
_WORDS = ["type", "id", "src", "env", "ref", "dest", "mode", "registry", "local", "inline",
          "sbom", "provenance", "default", "nofile", "host", "none", "=", ",", ":", '"', "-1",
          "9" * 40, "http://", "/nonexistent", ""]
spec_like = st.lists(st.sampled_from(_WORDS) | env_text, max_size=6).map("".join)


def dry_run(cwd: Path, *extra: str, env: dict[str, str] | None = None) -> Outcome:
    (cwd / "Dockerfile").write_text("FROM scratch\n")
    return invoke(["publish", "--dry-run", "-t", TAG, *extra, "."], cwd=cwd, env=env)


@given(flag=st.sampled_from(FLAGS), value=spec_like)
def test_build_flag_values(tmp_path: Path, flag: str, value: str) -> None:
    assert_clean(dry_run(tmp_path, flag, value))


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--secret", "garbage,,,=", "'garbage' is not KEY=VALUE"),
    ("--secret", "id=x,bogus=1", "unknown key 'bogus'"),
    ("--secret", "type=env", "names no id, src or env"),
    ("--ssh", "=,=", "no ID before '='"),
    ("--ssh", "default=", "an empty path"),
    ("--network", "bogus", "network 'bogus' is not one of"),
    ("--ulimit", "nofile=2048:1024", "soft limit 2048 is above the hard limit 1024"),
    ("--ulimit", "nofile=-1:1024", "soft limit -1 is above the hard limit 1024"),
    ("--ulimit", "nofile=" + "9" * 5000, "is not NAME=SOFT[:HARD]"),
    ("--attest", "type=bogus", "type must be provenance or sbom"),
    ("--attest", "mode=max", "type must be provenance or sbom"),
    ("--cache-from", "type=registry", "type=registry needs ref=..."),
    ("--cache-from", "type=local", "type=local needs src=..."),
    ("--cache-from", "type=inline", "type must be one of"),
    ("--cache-to", "type=local,src=/x", "type=local needs dest=..."),
    ("--shm-size", "9" * 40, "is not a size"),
    ("--shm-size", "9" * 5000, "is not a size"),
    ("--insecure-registry", "http://x", "without http:// or https://"),
    ("--insecure-registry", "", "an empty registry name"),
    ("--insecure-registry", "host:70000", "is not a registry HOST[:PORT]"),
    ("--smoke", '"unterminated', "is not valid shell words"),
])
def test_bad_build_flag_is_refused_by_a_dry_run(tmp_path: Path, flag: str, value: str,
                                                needle: str) -> None:
    o = dry_run(tmp_path, flag, value)
    assert o.code == 2, o.err
    lines = o.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyarch: error: ") and needle in lines[0], \
        lines


@pytest.mark.parametrize(("flag", "value"), [
    ("--secret", "id=npmrc,src=.npmrc"), ("--secret", "id=t,env=TOKEN"),
    ("--secret", '"id=a,src=b"'), ("--ssh", "default"), ("--network", "none"),
    ("--network", "container:abc"), ("--ulimit", "nofile=1024:2048"),
    ("--ulimit", "nofile=-1:-1"), ("--ulimit", "core=0"), ("--attest", "type=sbom"),
    ("--attest", "type=provenance,mode=max"), ("--cache-from", "127.0.0.1:5000/a/b:cache"),
    ("--cache-from", "type=local,src=/c"), ("--cache-to", "type=inline"),
    ("--cache-to", "type=registry,ref=r/c,mode=max"), ("--shm-size", "2g"),
    ("--shm-size", "1.5GiB"), ("--insecure-registry", "registry.lan:5000"),
    ("--insecure-registry", "[::1]:5000"), ("--smoke", "app --version 'a b'"),
])
def test_good_build_flag_is_accepted(tmp_path: Path, flag: str, value: str) -> None:
    (tmp_path / ".npmrc").write_text("registry=https://registry.example/\n")
    o = dry_run(tmp_path, flag, value)
    assert o.code in (None, 0), o.err


@given(digits=st.integers(19, 6000), sign=st.sampled_from(["", "-"]))
def test_tag_spec_priority_with_many_digits(tmp_path: Path, digits: int, sign: str) -> None:
    o = invoke(["tags", "--tag-spec", f"type=raw,value=a,priority={sign}{'9' * digits}"],
               cwd=tmp_path)
    assert_clean(o)
    assert o.code == 2 and "priority=" in o.err, o.err


@given(command=st.text(max_size=40))
def test_any_smoke_command_ends_cleanly(tmp_path: Path, command: str) -> None:
    assert_clean(dry_run(tmp_path, "--smoke", command))


@pytest.mark.parametrize(("name", "value"), [
    ("SOURCE_DATE_EPOCH", "abc"), ("SOURCE_DATE_EPOCH", "9" * 40),
    ("POLYARCH_REGISTRY_TIMEOUT", "abc"), ("POLYARCH_REGISTRY_TIMEOUT", "-1"),
    ("POLYARCH_REGISTRY_TIMEOUT", "0"),
])
def test_environment_refused_by_a_dry_run_without_git_tags(tmp_path: Path, name: str,
                                                           value: str) -> None:
    o = dry_run(tmp_path, env={name: value})
    assert o.code == 2 and f"{name}=" in o.err, o.err


@pytest.mark.parametrize(("entry", "needle"), [
    ("build-args = { A = 1 }", "'build-args' must be a table of strings"),
    ("labels = { A = true }", "'labels' must be a table of strings"),
    ('depends-on = "a"', "'depends-on' must be a list of strings"),
    ('prebuild = "echo"', "'prebuild' must be a list of strings"),
    ("prebuild = [1]", "'prebuild' must be a list of strings"),
])
def test_project_value_types(tmp_path: Path, entry: str, needle: str) -> None:
    (tmp_path / "polyarch.toml").write_text(
        f'[[image]]\nname = "a"\ntags = ["{TAG}"]\n{entry}\n')
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    o = invoke(["publish", "--dry-run"], cwd=tmp_path)
    assert o.code == 2 and needle in o.err, o.err
