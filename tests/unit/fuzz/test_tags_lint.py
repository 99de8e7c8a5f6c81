"""Tag specs, flavors and SOURCE_DATE_EPOCH (polyarch tags), and Dockerfiles (polyarch lint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import assert_clean, invoke
from .strategies import env_text

# A tag push on GitHub Actions: git state without git (the harness has none).
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/tags/v1.2.3",
          "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_EVENT_NAME": "push"}

_TYPES = ["schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha"]
_ATTRS = ["pattern", "value", "group", "enable", "priority", "prefix", "suffix", "event",
          "branch", "format"]
spec_like = st.builds(
    lambda t, kv: ",".join([f"type={t}", *(f"{k}={v}" for k, v in kv)]),
    st.sampled_from(_TYPES) | env_text,
    st.lists(st.tuples(st.sampled_from(_ATTRS) | env_text,
                       env_text | st.sampled_from(["{{version}}", "{{major}}.{{minor}}",
                                                   "{{date 'YYYYMMDD'}}", "{{ raw }}",
                                                   "{{sha}}", "v(.*)", "{{is_default_branch}}"])),
             max_size=4),
)


@given(specs=st.lists(spec_like | env_text, min_size=1, max_size=3),
       flavor=st.lists(env_text, max_size=2))
def test_any_tag_spec_and_flavor_ends_cleanly(tmp_path: Path, specs: list[str], flavor: list[str]) -> None:
    args = ["tags", "--json"]
    for s in specs:
        args += ["--tag-spec", s]
    for f in flavor:
        args += ["--flavor", f]
    assert_clean(invoke(args, cwd=tmp_path, env=GITHUB))


@given(image=env_text)
def test_tag_image_names(tmp_path: Path, image: str) -> None:
    assert_clean(invoke(["tags", "--image", image], cwd=tmp_path, env=GITHUB))


@given(epoch=st.integers(-10**40, 10**40).map(str) | env_text)
def test_source_date_epoch(tmp_path: Path, epoch: str) -> None:
    assert_clean(invoke(["tags", "--tag-spec", "type=schedule,pattern={{date 'YYYYMMDD'}}"],
                        cwd=tmp_path, env={**GITHUB, "SOURCE_DATE_EPOCH": epoch}))


@pytest.mark.parametrize("epoch", ["99999999999999999999", "9" * 400, "١٢٣", "-1", "1e9"])
def test_source_date_epoch_refused(tmp_path: Path, epoch: str) -> None:
    o = invoke(["tags"], cwd=tmp_path, env={**GITHUB, "SOURCE_DATE_EPOCH": epoch})
    assert o.code == 2 and "SOURCE_DATE_EPOCH" in o.err, o.err


@given(epoch=st.sampled_from(["99999999999999999999", "١٢٣"]))
def test_source_date_epoch_in_publish_tags(tmp_path: Path, epoch: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    o = invoke(["publish", "--dry-run", "--image", "127.0.0.1:5000/fuzz/app",
                "--tag-spec", "type=ref,event=tag", "."],
               cwd=tmp_path, env={**GITHUB, "SOURCE_DATE_EPOCH": epoch})
    assert o.code == 2 and "SOURCE_DATE_EPOCH" in o.err, o.err


_KEYWORDS = ["FROM", "RUN", "COPY", "ADD", "ARG", "ENV", "WORKDIR", "CMD", "ENTRYPOINT",
             "LABEL", "USER", "SHELL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME",
             "STOPSIGNAL", "MAINTAINER", "# syntax=", "# escape=", "#"]
_ARGS = st.sampled_from([
    "--platform=$BUILDPLATFORM golang:1.22 AS build", "scratch", "--from=build /a /b",
    "--chmod=755 ./x /x", '["/bin/sh", "-c", "echo"]', "[", '["a",', "$TARGETARCH",
    "${TARGETPLATFORM:-linux/amd64}", "${A:?}", "${", "--mount=type=cache,target=/x make",
    "<<EOF\nhello\nEOF", "\\", "`", "arm64v8/alpine", "--platform=linux/arm64 alpine:3.20",
    "uname -m > /x", "TARGETARCH", "A=1 B=2", "amd64/node:20", "${A%%/*}",
]) | st.text(max_size=30)
dockerfiles = st.lists(st.tuples(st.sampled_from(_KEYWORDS), _ARGS), max_size=12).map(
    lambda lines: "\n".join(f"{k} {a}" for k, a in lines) + "\n")


@given(text=dockerfiles)
def test_lint_of_any_dockerfile_text_ends_cleanly(tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_clean(invoke(["lint", "--offline", "Dockerfile"], cwd=tmp_path))


@given(data=st.binary(max_size=300))
def test_lint_of_any_dockerfile_bytes_ends_cleanly(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "Dockerfile").write_bytes(data)
    assert_clean(invoke(["lint", "--offline", "Dockerfile"], cwd=tmp_path))


@given(text=st.text(max_size=200))
def test_lint_of_any_stdin_ends_cleanly(tmp_path: Path, text: str) -> None:
    assert_clean(invoke(["lint", "--offline", "-"], cwd=tmp_path,
                        stdin=text.encode("utf-8", "surrogatepass")))


@given(platform=env_text)
def test_lint_with_any_platform_ends_cleanly(tmp_path: Path, platform: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM --platform=$BUILDPLATFORM scratch\n")
    assert_clean(invoke(["lint", "--offline", "--platform", platform, "Dockerfile"], cwd=tmp_path))


@given(payload=st.binary(max_size=200) | st.integers(1, 5000).map(
    lambda n: ('{"pull_request": ' + "[" * n + "]" * n + "}").encode()))
def test_github_event_payload(tmp_path: Path, payload: bytes) -> None:
    (tmp_path / "event.json").write_bytes(payload)
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/5/merge",
           "GITHUB_EVENT_PATH": str(tmp_path / "event.json")}
    assert_clean(invoke(["tags", "--json"], cwd=tmp_path, env=env))


@given(depth=st.integers(1, 3000), kind=st.sampled_from(["default", "json", "continuation"]))
def test_lint_deep_dockerfiles(tmp_path: Path, depth: int, kind: str) -> None:
    if kind == "default":  # ${A:-${A:-...}} nested in a FROM line
        text = "ARG A\nFROM " + "${A:-" * depth + "alpine" + "}" * depth + "\n"
    elif kind == "json":  # an exec-form CMD nested as deep as JSON goes
        text = "FROM scratch\nCMD " + "[" * depth + "]" * depth + "\n"
    else:  # a RUN continued over many lines
        text = "FROM scratch\nRUN true" + " \\\n  && true" * depth + "\n"
    (tmp_path / "Dockerfile").write_text(text)
    assert_clean(invoke(["lint", "--offline", "Dockerfile"], cwd=tmp_path))


@given(depth=st.integers(1, 3000),
       template=st.sampled_from(["type=raw,value={open}x{close}",
                                 "type=match,pattern={open}v{close}",
                                 "type=semver,pattern={open}{{{{version}}}}{close}",
                                 "type=schedule,pattern={{{{date '{open}YYYY{close}'}}}}"]),
       brackets=st.sampled_from([("{{", "}}"), ("(", ")"), ("[", "]"), ("${", "}")]))
def test_tag_specs_nested_deep(tmp_path: Path, depth: int, template: str,
                               brackets: tuple[str, str]) -> None:
    spec = template.format(open=brackets[0] * depth, close=brackets[1] * depth)
    assert_clean(invoke(["tags", "--tag-spec", spec], cwd=tmp_path, env=GITHUB))
