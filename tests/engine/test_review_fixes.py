"""Redaction in a real dry run (preflight runs the engine) and blobs read through a
compressing proxy."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import polyarch


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
