"""Input that once crashed or was silently misread, and redaction of printed commands.
The CLI runs in process (no engine is needed to refuse bad input)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from polyarch import config, redact
from polyarch.engines.buildx_progress import RawJsonProgress, build_failure
from polyarch.errors import BuildError, EnvironmentProblem, RegistryError, UsageError

DIGEST = "sha256:" + "a" * 64


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture
def cli_run(monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        from polyarch import cli

        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            for k, v in (env or {}).items():
                m.setenv(k, v)
            capsys.readouterr()
            code = cli.run(list(args))
            cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)
    return run


def last_error_line(run: Result) -> str:
    lines = [ln for ln in run.err.splitlines() if ln.startswith("polyarch: error:")]
    assert len(lines) == 1, run.err
    return lines[0]


def test_tag_with_a_digest_is_refused(tmp_path: Path) -> None:
    for tag in (f"127.0.0.1:5000/x/y:1@{DIGEST}", f"127.0.0.1:5000/x/y@{DIGEST}"):
        with pytest.raises(UsageError, match="names a digest"):
            config.load({"tags": (tag,)}, env={}, cwd=tmp_path)


def test_secret_specs_from_the_environment_keep_their_commas(tmp_path: Path) -> None:
    o = config.load({}, env={"POLYARCH_SECRETS": "id=npmrc,src=.npmrc\nid=gh,env=GH_TOKEN"},
                    cwd=tmp_path)
    assert o.secrets == ("id=npmrc,src=.npmrc", "id=gh,env=GH_TOKEN")


@pytest.mark.parametrize("text", ['tool = "x"\n', "[tool]\npolyarch = 5\n"])
def test_odd_tool_tables_are_config_errors(cli_run: Any, tmp_path: Path, text: str) -> None:
    (tmp_path / "polyarch.toml").write_text(text)
    run = cli_run("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", ".", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err and "internal error" not in run.err
    assert "polyarch.toml" in last_error_line(run)


@pytest.mark.parametrize("entry", [
    'version = { from = "package.json", field = 5 }',
    "name-from = { file = 5 }",
])
def test_bad_project_value_types(cli_run: Any, tmp_path: Path, entry: str) -> None:
    (tmp_path / "polyarch.toml").write_text(f'[[image]]\nname = "a"\n{entry}\n')
    run = cli_run("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "internal error" not in run.err
    assert "image 'a'" in last_error_line(run)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("build_seconds", "abc", "'build_seconds' must be a number"),
    # A descriptor of the staging era (schema 1) is refused, not misread.
    ("schema", 1, "descriptor schema 1 is not supported (this polyarch reads schema 2)"),
    ("platforms", ["linux/arm65"], "unknown platform 'linux/arm65'"),
])
def test_bad_descriptor_fields(cli_run: Any, tmp_path: Path, field: str, value: object, needle: str) -> None:
    doc = {"kind": "polyarch-build", "schema": 2, "repository": "127.0.0.1:5000/a/b",
           "digest": DIGEST, "platforms": ["linux/amd64"], field: value}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    run = cli_run("merge", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(path))
    assert run.code == 2, run.err
    assert needle in last_error_line(run)


def test_images_of_a_project_may_not_share_a_tag(cli_run: Any, tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        'tags = ["127.0.0.1:5000/x/shared:1"]\n[[image]]\nname = "a"\n[[image]]\nname = "b"\n')
    run = cli_run("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "images 'a' and 'b' would both be published as" in last_error_line(run)


def test_a_bad_value_in_the_last_image_stops_before_the_first(cli_run: Any, tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ntags = ["127.0.0.1:5000/x/a:1"]\nprebuild = ["touch ran"]\n'
        '[[image]]\nname = "b"\ntags = ["127.0.0.1:5000/x/b:1"]\nverify = 3\n')
    run = cli_run("publish", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "'verify' must be true or false" in last_error_line(run)
    assert not (tmp_path / "ran").exists()  # image a's prebuild never ran


def test_secret_values_are_masked_in_commands() -> None:
    assert redact.argv(["x", "--build-arg=A_TOKEN=v", "hunter2-hunter2"],
                       env={"DEPLOY_PASSWORD": "hunter2-hunter2"}) == [
        "x", "--build-arg=A_TOKEN=***", "***"]


def _failure(*lines: str) -> Exception:
    p = RawJsonProgress(None)
    for ln in lines:
        p.feed(ln)
    return build_failure(p)


def test_build_failures_are_classified() -> None:
    assert isinstance(_failure("ERROR: failed to dial gRPC: cannot connect to the docker"
                               " daemon"), EnvironmentProblem)
    assert isinstance(_failure("ERROR: failed to solve: failed to push r/a:1: connection"
                               " refused"), RegistryError)
    failed_run = ["{", '  "vertexes": [{"digest": "d1", "name": "[2/2] RUN make",'
                  ' "started": "2026-01-01T00:00:00Z", "completed": "2026-01-01T00:00:01Z",'
                  ' "error": "exit code: 2"}]', "}",
                  "ERROR: failed to solve: process did not complete successfully: exit code: 2"]
    e = _failure(*failed_run)
    assert isinstance(e, BuildError) and "RUN make" in str(e)


def test_loopback_means_an_address_not_a_name() -> None:
    from polyarch.refs import is_loopback_host, parse_ref

    for host in ("127.0.0.1:5000", "127.3.4.5", "localhost:5000", "[::1]:5000", "::1"):
        assert is_loopback_host(host), host
    for host in ("127.attacker.example:443", "127.0.0.1.nip.io", "ghcr.io", "localhost.example"):
        assert not is_loopback_host(host), host
    assert not parse_ref("127.0.0.1.nip.io/a/b:1").is_loopback


def test_only_sha256_digests() -> None:
    from polyarch.refs import ReferenceError, parse_ref

    with pytest.raises(ReferenceError, match="expected sha256"):
        parse_ref("r.io/a@sha512:" + "ab" * 64)


def test_an_attestation_claiming_a_platform_is_a_platform_entry() -> None:
    from polyarch.registry.media import is_attestation

    ann = {"vnd.docker.reference.type": "attestation-manifest"}
    assert is_attestation({"annotations": ann, "platform": {"os": "unknown",
                                                            "architecture": "unknown"}})
    assert is_attestation({"annotations": ann})
    assert not is_attestation({"annotations": ann, "platform": {"os": "linux",
                                                                "architecture": "arm64"}})


def test_a_layer_that_is_not_a_tar_fails_verification_cleanly(cli_run: Any, tmp_path: Path) -> None:
    import gzip
    import hashlib

    from faultproxy import make_layer, write_oci_layout

    good = make_layer({"etc/os-release": b"ID=test\n"})
    junk = gzip.compress(b"this is not a tar archive\n" * 40)
    bad = (junk, "sha256:" + hashlib.sha256(gzip.decompress(junk)).hexdigest(), "gzip")
    layout = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*good, "gzip")]),
                                                  ("linux/arm64", [bad])])
    run = cli_run("verify", f"oci:{layout}", "--platform", "linux/amd64,linux/arm64", "--json")
    assert run.code == 5, run.err
    assert "internal error" not in run.err
    arm = next(p for p in run.json()["platforms"] if p["platform"] == "linux/arm64")
    assert arm["checks"]["binaries"] == "fail"


def test_a_bad_node_port_is_a_config_error(cli_run: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    nodes = '[{"platforms": ["linux/arm64"], "endpoint": "tcp://127.0.0.1:99999"}]'
    run = cli_run("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(tmp_path),
                   env={"POLYARCH_NODES": nodes})
    assert run.code == 2, run.err
    assert "bad port" in last_error_line(run)


@pytest.mark.parametrize("text", ["FROM debian:12\nRUN true\n\\", "FROM debian:12\n\\\n\n"])
def test_lint_survives_a_lone_line_continuation(cli_run: Any, tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    run = cli_run("lint", "--offline", str(tmp_path / "Dockerfile"))
    assert run.code == 0, run.err
