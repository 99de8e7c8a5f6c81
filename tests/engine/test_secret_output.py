"""A secret passed as a build argument never reaches polyarch's output.

Real builds (one platform, busybox) with ``--build-arg NPM_TOKEN=npm_...`` used by a
``RUN``: the token must appear nowhere in stdout, stderr, ``--json`` or GitHub
annotations, whether the build succeeds or the step that printed it fails. The image
BuildKit writes records the argument in its history (``RUN |1 NPM_TOKEN=...``), which
:func:`scan_config` finds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import make_context

# Made up, in npm's token format (not a live token).
TOKEN = "npm_Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"
REPO_PASSWORD = "pw-9f8e7d6c5b"
GITHUB = {"GITHUB_ACTIONS": "true", "CI": "true"}

USES_TOKEN = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ARG NPM_TOKEN
ARG REPO_URL
RUN echo "registry token: $NPM_TOKEN from $REPO_URL" \\
    && echo "//r/:_authToken=${NPM_TOKEN}" > /tmp/npmrc && rm /tmp/npmrc
CMD ["/bin/sh", "-c", "echo hi"]
"""

FAILS_WITH_TOKEN = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ARG NPM_TOKEN
RUN echo "npm ERR! 401 for token $NPM_TOKEN" && exit 3
"""


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert TOKEN[4:20] not in text  # no part of the random body either
        assert REPO_PASSWORD not in text


def build_args() -> list[str]:
    return ["--build-arg", f"NPM_TOKEN={TOKEN}",
            "--build-arg", f"REPO_URL=https://bob:{REPO_PASSWORD}@git.acme.dev/x.git"]


def test_successful_build_prints_no_token(tmp_path: Path, repo: str) -> None:
    ctx = make_context(tmp_path / "ctx", USES_TOKEN, arches=("amd64",))
    ref = f"{repo}:1"
    run = polyarch("publish", "--platform", "linux/amd64", "-t", ref, "--json",
                   *build_args(), str(ctx), env=GITHUB)
    assert_clean(run.out, run.err)
    assert "NPM_TOKEN=***" in run.err  # the echoed build command, masked in place
    # BuildKit records the argument in the image's history (RUN |2 NPM_TOKEN=...): the
    # verification finds it there, names the remedy, and nothing is pushed.
    assert run.code == 5, run.err
    doc = run.json()
    assert_clean(json.dumps(doc))
    assert doc["push"] is None and not doc["promoted"]
    found = [f for p in doc["verification"]["platforms"] for f in p["findings"]
             if f["check"] == "secrets"]
    messages = " ".join(f["message"] for f in found)
    assert "npm access token" in messages, messages
    assert "NPM_TOKEN" in messages and "--secret id=NPM_TOKEN" in messages
    # The URL's password is found too: by its format, or as a value given to this build.
    assert "build argument REPO_URL" in messages and "--secret id=REPO_URL" in messages
    assert_clean(messages)
    assert subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{ref}"], capture_output=True, timeout=120).returncode != 0


def test_failed_step_output_and_annotation_masked(tmp_path: Path, repo: str) -> None:
    ctx = make_context(tmp_path / "ctx", FAILS_WITH_TOKEN, arches=("amd64",))
    run = polyarch("publish", "--platform", "linux/amd64", "-t", f"{repo}:1",
                   *build_args(), str(ctx), env=GITHUB)
    assert run.code == 1, run.err
    assert_clean(run.out, run.err)
    # The step's own output is shown (masked), and the failure line and its annotation.
    assert "npm ERR! 401 for token ***" in run.err
    assert any(ln.startswith("::error::build failed") for ln in run.err.splitlines()), run.err
    assert any(ln.startswith("polyarch: error: build failed") for ln in run.err.splitlines())


@pytest.mark.parametrize("json_mode", [False, True])
def test_dry_run_masks_args(tmp_path: Path, repo: str, json_mode: bool) -> None:
    ctx = make_context(tmp_path / "ctx", USES_TOKEN, arches=("amd64",))
    run = polyarch("publish", "--dry-run", "--platform", "linux/amd64", "-t", f"{repo}:1",
                   *(["--json"] if json_mode else []), *build_args(), str(ctx))
    assert run.code == 0, run.err
    assert_clean(run.out, run.err)
    text = run.out + run.err
    assert "NPM_TOKEN=***" in text and "https://bob:***@git.acme.dev/x.git" in text


SECRET_FILE_BODY = "glorb-x7Qm2x7Qm2x7Qm2x7Qm2"  # no known format: only --secret says so

PRINTS_SECRET_FILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN --mount=type=secret,id=npmrc echo "config: $(cat /run/secrets/npmrc)" && exit 3
"""


def test_secret_file_content_is_masked_in_build_output(tmp_path: Path) -> None:
    """A step that prints a build secret passed by file (--secret id=x,src=FILE) shows
    *** in its place, as for a secret passed from the environment."""
    ctx = make_context(tmp_path / "ctx", PRINTS_SECRET_FILE, arches=("amd64",))
    src = tmp_path / "npmrc"
    src.write_text(f"//registry.example/:_authToken={SECRET_FILE_BODY}\n")
    run = polyarch("build", "--platform", "linux/amd64", "--secret", f"id=npmrc,src={src}",
                   str(ctx), env=GITHUB)
    assert run.code == 1, run.err
    assert "config: ***" in run.err
    assert SECRET_FILE_BODY not in run.out + run.err


def test_the_remedy_for_a_secret_build_argument_builds_on_this_engine(tmp_path: Path) -> None:
    """The Dockerfile line the remedy gives works with the engine's own Dockerfile
    frontend (no '# syntax=' image to pull): the step sees the secret, and the image's
    history does not record it."""
    from polyarch.checks.secrets.image import REMEDY_ARG

    remedy = REMEDY_ARG.format(name="NPM_TOKEN")
    run_line = remedy[remedy.index("RUN --mount"):remedy.index(" COMMAND")]
    ctx = make_context(tmp_path / "ctx", (
        "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n"
        # The step checks what it got without naming the token (a Dockerfile line is
        # recorded in the image's history).
        f"{run_line} sh -c 'test ${{#NPM_TOKEN}} = {len(TOKEN)} && test"
        f" \"${{NPM_TOKEN%%_*}}\" = npm'\n"),
        arches=("amd64",))
    out = tmp_path / "app.tar"
    run = polyarch("build", "--platform", "linux/amd64", "--secret",
                   "id=NPM_TOKEN,env=NPM_TOKEN", "-o", f"oci:{out}", str(ctx),
                   env={"NPM_TOKEN": TOKEN})
    assert run.code == 0, run.err  # the step's test passed: it saw the secret
    assert_clean(run.out, run.err)
    assert out.is_file()


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
