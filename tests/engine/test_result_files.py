"""What a publish writes at its end (--output-file, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY,
the dotenv report): checked before the build (a read-only or full disk stops the run
before anything is pushed), and when a write still fails after the tags moved, the run
says exactly that, names the file, and exits 6 (never "usage error")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import Fault, FaultProxy, LocalRegistry

from .helpers import COPY_ONLY, assert_registry_empty, echoed_build, fill

GH = {"GITHUB_ACTIONS": "true", "CI": "true"}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("results") / "ctx", dockerfile=COPY_ONLY,
                        arches=("amd64",))




def test_output_file_on_a_full_disk_is_refused_before_the_build(
        tiny_dir: Path, small: Path, own_registry: LocalRegistry) -> None:
    fill(tiny_dir)
    out = tiny_dir / "ref.txt"
    run = polyarch("publish", "--platform", "linux/amd64", "--output-file", str(out),
                   "-t", f"{own_registry.address}/team/app:1", str(small))
    assert run.code == 3, run.text
    assert last_error_line(run) == (f"polyarch: error: --output-file {out}: the disk is full"
                                    " (free space there, or choose another place)")
    assert echoed_build(run.err) is None
    assert_registry_empty(own_registry, "team/app")


def test_github_output_in_a_read_only_directory_is_refused_before_the_build(
        read_only_dir: Path, small: Path, own_registry: LocalRegistry, tmp_path: Path) -> None:
    out = read_only_dir / "output"
    run = polyarch("publish", "--platform", "linux/amd64", "-t",
                   f"{own_registry.address}/team/app:1", str(small),
                   env={**GH, "GITHUB_OUTPUT": str(out),
                        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    assert run.code == 3, run.text
    line = last_error_line(run)
    assert line.startswith(f"polyarch: error: GITHUB_OUTPUT {out}: cannot write there"), line
    assert echoed_build(run.err) is None
    assert_registry_empty(own_registry, "team/app")
    assert not (tmp_path / "summary.md").exists()


def test_github_output_that_fails_after_the_tags_moved_says_so_and_exits_6(
        small: Path, own_registry: LocalRegistry, tmp_path: Path) -> None:
    # /dev/full takes an open for appending and fails every write with ENOSPC: it passes
    # the check before the build and fails where a disk that filled up in the meantime
    # would.
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    ref = f"{own_registry.address}/team/app:1"
    run = polyarch("publish", "--platform", "linux/amd64", "-t", ref, str(small),
                   env={**GH, "GITHUB_OUTPUT": "/dev/full", "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 6, run.text
    line = last_error_line(run)
    assert line.startswith(f"polyarch: error: published {ref}@sha256:"), line
    assert f"and moved its tags ({ref}), but could not write" in line, line
    assert "GITHUB_OUTPUT /dev/full (No space left on device)" in line, line
    assert "GITHUB_STEP_SUMMARY" not in line  # that one was written
    assert "Traceback" not in run.err
    assert registry_tags(own_registry.address, "team/app") == ["1"]
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "### polyarch publish" in text


def test_output_file_on_a_disk_that_fills_during_the_run(
        tiny_dir: Path, small: Path, own_registry: LocalRegistry, tmp_path: Path) -> None:
    """The disk has room when the run starts; a prebuild command fills it: the tags move,
    the reference file cannot be written, and the run says exactly that. No half-written
    file is left."""
    project = tmp_path / "project"
    project.mkdir()
    out = tiny_dir / "ref.txt"
    (project / "polyarch.toml").write_text(
        'platforms = ["linux/amd64"]\n'
        "[[image]]\n"
        'name = "app"\n'
        f'context = "{small}"\n'
        f'tags = ["{own_registry.address}/team/app:1"]\n'
        f'prebuild = ["dd if=/dev/zero of={tiny_dir}/filler bs=4k || true"]\n')
    summary = tmp_path / "summary.md"
    run = polyarch("publish", "--output-file", str(out), cwd=project,
                   env={**GH, "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 6, run.text
    line = last_error_line(run)
    assert f"and moved its tags ({own_registry.address}/team/app:1)" in line, line
    assert f"could not write --output-file {out} (No space left on device)" in line, line
    assert registry_tags(own_registry.address, "team/app") == ["1"]
    assert sorted(p.name for p in tiny_dir.iterdir()) == ["filler"]  # no partial file
    assert "### polyarch publish" in summary.read_text()  # the other outputs were written


def test_dotenv_report_written_whole_and_replaced_atomically(
        small: Path, own_registry: LocalRegistry, tmp_path: Path) -> None:
    dotenv = tmp_path / "polyarch.env"
    dotenv.write_text("OLD=1\n")
    ref = f"{own_registry.address}/team/app:1"
    run = polyarch("publish", "--platform", "linux/amd64", "-t", ref, str(small),
                   env={"POLYARCH_DOTENV": str(dotenv)})
    assert run.code == 0, run.text
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["POLYARCH_TAGS"] == ref and "OLD" not in values
    assert [p.name for p in tmp_path.iterdir() if "polyarch-tmp" in p.name] == []


def _publish_into_a_pipe(args: list[str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "POLYARCH_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "polyarch", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def test_json_into_a_closed_pipe_is_refused_before_the_build(
        small: Path, own_registry: LocalRegistry) -> None:
    p = _publish_into_a_pipe(["publish", "--json", "--platform", "linux/amd64", "-t",
                              f"{own_registry.address}/team/app:1", str(small)])
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader has gone before polyarch starts
    err = p.stderr.read().decode()
    assert p.wait(120) == 3, err
    assert err.strip().splitlines()[-1] == (
        "polyarch: error: stdout is a pipe whose reader has gone: the result could not be"
        " shown; nothing was built (run it again with stdout open (or redirected to a file))")
    assert_registry_empty(own_registry, "team/app")


def test_json_into_a_pipe_closed_while_tags_move_says_the_tags_moved(
        small: Path, own_registry: LocalRegistry) -> None:
    with FaultProxy(own_registry.address) as proxy:
        # The tag's write is held a moment: the reader goes away meanwhile.
        proxy.add(Fault.delay(3), times=1, method="PUT", match="/team/app/manifests/1")
        ref = f"{proxy.address}/team/app:1"
        p = _publish_into_a_pipe(["publish", "--json", "--platform", "linux/amd64", "-t",
                                  ref, str(small)])
        assert p.stdout is not None and p.stderr is not None
        lines: list[str] = []
        for raw in p.stderr:
            lines.append(raw.decode().rstrip("\n"))
            if lines[-1].startswith("==> tag"):
                p.stdout.close()
                break
        lines += p.stderr.read().decode().splitlines()
        assert p.wait(120) == 6, "\n".join(lines)
    last = lines[-1]
    assert last.startswith(f"polyarch: error: published {ref}@sha256:"), last
    assert last.endswith(", but could not write the output on stdout (Broken pipe: its reader"
                         " has gone) (the image is published and nothing needs to be undone;"
                         " its reference is on this line)"), last
    assert registry_tags(own_registry.address, "team/app") == ["1"]
