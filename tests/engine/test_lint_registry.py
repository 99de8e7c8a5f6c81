"""polyarch lint's base-image check (PA005) against the real loopback registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from polyarch.cli import run


def write(tmp_path: Path, text: str, name: str = "Dockerfile") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------------------


def _push(ctx: Path, ref: str, platforms: str) -> None:
    r = subprocess.run(["docker", "buildx", "build", "--platform", platforms, "-t", ref,
                        "--push", str(ctx)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


def test_base_image_platforms_from_the_registry(hello_context: Path, repo: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    amd64_only = f"{repo}:one-platform"
    both = f"{repo}:both"
    _push(hello_context, amd64_only, "linux/amd64")
    _push(hello_context, both, "linux/amd64,linux/arm64")
    missing_repo = f"{repo}-absent:1"
    text = f"""\
FROM {amd64_only} AS a
RUN true
FROM {both}
COPY --from=a /hello /hello-a
COPY --from={missing_repo} /x /x
"""
    p = write(tmp_path, text)
    capsys.readouterr()
    assert run(["lint", "--json", str(p)]) == 5
    doc = json.loads(capsys.readouterr().out)
    got = [(f["rule"], f["line"], f["severity"]) for f in doc["findings"]]
    assert got == [("PA005", 1, "error"), ("PA006", 5, "note")], doc
    assert "linux/arm64" in doc["findings"][0]["message"]
    # Built only for amd64, the same file passes the base-image check.
    assert run(["lint", "--platform", "linux/amd64", str(p)]) == 0
    # The image with both platforms alone is clean; --offline only notes it.
    clean = write(tmp_path, f"FROM {both}\nRUN true\n", "Dockerfile.clean")
    capsys.readouterr()
    assert run(["lint", "--json", str(clean)]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert run(["lint", "--json", "--offline", str(clean)]) == 0
    assert [f["rule"] for f in json.loads(capsys.readouterr().out)["findings"]] == ["PA006"]
