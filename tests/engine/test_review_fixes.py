"""Input that once crashed or was silently misread, and redaction of printed commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch

from polyarch import config, redact
from polyarch.engines.buildx import RawJsonProgress, build_failure
from polyarch.errors import BuildError, EnvironmentProblem, RegistryError, UsageError

DIGEST = "sha256:" + "a" * 64


def test_tag_with_a_digest_is_refused(tmp_path: Path) -> None:
    for tag in (f"127.0.0.1:5000/x/y:1@{DIGEST}", f"127.0.0.1:5000/x/y@{DIGEST}"):
        with pytest.raises(UsageError, match="names a digest"):
            config.load({"tags": (tag,)}, env={}, cwd=tmp_path)


def test_secret_specs_from_the_environment_keep_their_commas(tmp_path: Path) -> None:
    o = config.load({}, env={"POLYARCH_SECRETS": "id=npmrc,src=.npmrc\nid=gh,env=GH_TOKEN"},
                    cwd=tmp_path)
    assert o.secrets == ("id=npmrc,src=.npmrc", "id=gh,env=GH_TOKEN")


@pytest.mark.parametrize("text", ['tool = "x"\n', "[tool]\npolyarch = 5\n"])
def test_odd_tool_tables_are_config_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "polyarch.toml").write_text(text)
    run = polyarch("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", ".", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err and "internal error" not in run.err
    assert "polyarch.toml" in last_error_line(run)


@pytest.mark.parametrize("entry", [
    'version = { from = "package.json", field = 5 }',
    "name-from = { file = 5 }",
])
def test_bad_project_value_types(tmp_path: Path, entry: str) -> None:
    (tmp_path / "polyarch.toml").write_text(f'[[image]]\nname = "a"\n{entry}\n')
    run = polyarch("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "internal error" not in run.err
    assert "image 'a'" in last_error_line(run)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("build_seconds", "abc", "'build_seconds' must be a number"),
    ("platforms", ["linux/arm65"], "unknown platform 'linux/arm65'"),
])
def test_bad_descriptor_fields(tmp_path: Path, field: str, value: object, needle: str) -> None:
    doc = {"kind": "polyarch-build", "schema": 1, "repository": "127.0.0.1:5000/a/b",
           "digest": DIGEST, "platforms": ["linux/amd64"], field: value}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    run = polyarch("merge", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(path))
    assert run.code == 2, run.err
    assert needle in last_error_line(run)


def test_images_of_a_project_may_not_share_a_tag(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        'tags = ["127.0.0.1:5000/x/shared:1"]\n[[image]]\nname = "a"\n[[image]]\nname = "b"\n')
    run = polyarch("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "images 'a' and 'b' would both be published as" in last_error_line(run)


def test_a_bad_value_in_the_last_image_stops_before_the_first(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ntags = ["127.0.0.1:5000/x/a:1"]\nprebuild = ["touch ran"]\n'
        '[[image]]\nname = "b"\ntags = ["127.0.0.1:5000/x/b:1"]\nverify = 3\n')
    run = polyarch("publish", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "'verify' must be true or false" in last_error_line(run)
    assert not (tmp_path / "ran").exists()  # image a's prebuild never ran


def test_secret_build_args_are_masked(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    secret = "npm_0123456789abcdef"
    run = polyarch("publish", "--dry-run", "--json", "-t", "127.0.0.1:5000/a/b:1",
                   "--build-arg", f"NPM_TOKEN={secret}", "--build-arg", "VERSION=1.2",
                   str(tmp_path), env={"DEPLOY_PASSWORD": "hunter2-hunter2"})
    assert run.code == 0, run.err
    assert secret not in run.text
    assert "NPM_TOKEN=***" in run.json()["commands"][0]
    assert "VERSION=1.2" in run.json()["commands"][0]
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


def test_a_layer_that_is_not_a_tar_fails_verification_cleanly(tmp_path: Path) -> None:
    import gzip
    import hashlib

    from faultproxy import make_layer, write_oci_layout

    good = make_layer({"etc/os-release": b"ID=test\n"})
    junk = gzip.compress(b"this is not a tar archive\n" * 40)
    bad = (junk, "sha256:" + hashlib.sha256(gzip.decompress(junk)).hexdigest(), "gzip")
    layout = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*good, "gzip")]),
                                                  ("linux/arm64", [bad])])
    run = polyarch("verify", f"oci:{layout}", "--platform", "linux/amd64,linux/arm64", "--json")
    assert run.code == 5, run.err
    assert "internal error" not in run.err
    arm = next(p for p in run.json()["platforms"] if p["platform"] == "linux/arm64")
    assert arm["checks"]["binaries"] == "fail"


def test_a_bad_node_port_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    nodes = '[{"platforms": ["linux/arm64"], "endpoint": "tcp://127.0.0.1:99999"}]'
    run = polyarch("publish", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(tmp_path),
                   env={"POLYARCH_NODES": nodes})
    assert run.code == 2, run.err
    assert "bad port" in last_error_line(run)


@pytest.mark.parametrize("text", ["FROM debian:12\nRUN true\n\\", "FROM debian:12\n\\\n\n"])
def test_lint_survives_a_lone_line_continuation(tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    run = polyarch("lint", "--offline", str(tmp_path / "Dockerfile"))
    assert run.code == 0, run.err


@pytest.mark.engine
def test_blobs_through_a_compressing_proxy(hello_context: Path, repo: str) -> None:
    """A proxy or CDN that gzips responses when allowed must not break the digest check:
    blobs are asked for with identity encoding."""
    from conftest import REGISTRY
    from faultproxy import FaultProxy

    run = polyarch("publish", "-t", f"{repo}:gz", str(hello_context))
    assert run.code == 0, run.err
    with FaultProxy(REGISTRY, gzip_blobs=True) as proxy:
        via = f"{proxy.address}/{repo.split('/', 1)[1]}:gz"
        check = polyarch("verify", via, "--json")
        blob_gets = [r for r in proxy.log if r.method == "GET" and "/blobs/" in r.path]
    assert check.code == 0, check.err
    assert blob_gets and all("identity" in r.headers.get("Accept-Encoding", "")
                             for r in blob_gets)
