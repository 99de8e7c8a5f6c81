"""The command examples of the README and docs/, run as written against the local
engine and registry (``tests/doc_examples.py`` lists them, with the placeholders it
replaces, and says why the others are not run here).

Each page's examples run in page order, in one directory holding a small build
context, as a reader following the page would; each must exit 0, and what it made is
looked at (``docker run`` of the published image, ``polyarch inspect``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import IN_CI, make_context
from doc_examples import EXAMPLES, Example, substitute

RUNNABLE = [e for e in EXAMPLES if e.runs]
PAGES = sorted({e.page for e in RUNNABLE})


def _sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200, stdin=subprocess.DEVNULL)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def needs(request: pytest.FixtureRequest) -> dict[str, str]:
    """What the page's examples need, as environment variables."""
    wanted = {n for e in RUNNABLE if e.page == request.node.callspec.params["page"]
              for n in e.needs}
    env: dict[str, str] = {}
    if "podman" in wanted and shutil.which("podman") is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed (scripts/engine up installs it)")
        pytest.skip("podman is not installed; run scripts/engine up")
    if "engine2" in wanted:
        env["E2"] = request.getfixturevalue("engine2")
    return env


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str, needs: dict[str, str], registry: str,
                           tmp_path: Path) -> None:
    examples = [e for e in RUNNABLE if e.page == page]
    work = make_context(tmp_path / "work")
    uid = uuid.uuid4().hex[:10]
    repo, local = f"{registry}/docs-{uid}/app", f"polyarch-docs-{uid}"
    env = {**os.environ, **needs, "POLYARCH_CACHE_DIR": str(tmp_path / "cache"),
           # The checkout's polyarch, as the README's `pip install -e .` gives it.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k in ("POLYARCH_DEBUG", "GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_REF", "CI_COMMIT_TAG"):
        env.pop(k, None)
    if any("git-tag" in e.needs for e in examples):
        # tags.md's example: a release build, HEAD at tag v1.2.3.
        _git(work, "init", "-q", "-b", "main")
        _git(work, "add", ".")
        _git(work, "commit", "-qm", "release")
        _git(work, "tag", "v1.2.3")
        _git(work, "checkout", "-q", "--detach", "v1.2.3")
    try:
        for e in examples:
            _run(e, work, env, repo, local)
    finally:
        if any("app:dev" in e.command for e in examples):
            subprocess.run(["docker", "image", "rm", "--force", f"{local}:dev"],
                           capture_output=True, timeout=120)


def _run(e: Example, work: Path, env: dict[str, str], repo: str, local: str) -> None:
    for step in e.setup:
        r = _sh(substitute(step, repo, local), work, env)
        assert r.returncode == 0, f"{e.page}: setup {step!r}: exit {r.returncode}\n{r.stderr}"
    command = substitute(e.command, repo, local)
    r = _sh(command, work, env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{e.page}: {e.command!r}: exit {r.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out
    for text in e.expect:
        assert text in out, f"{e.page}: {e.command!r}: {text!r} not in the output\n{out}"
    for check, text in e.then:
        c = _sh(substitute(check, repo, local), work, env)
        assert c.returncode == 0, f"{e.page}: after {e.command!r}, {check!r}: {c.stderr}"
        assert text in c.stdout, f"{e.page}: after {e.command!r}, {check!r}: {c.stdout!r}"
