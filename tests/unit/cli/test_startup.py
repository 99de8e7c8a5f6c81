"""What a command costs before it does anything: the command tree loads a command's
module when that command runs, and ``--help`` (of polyarch and of every command), the
version and ``tags`` load neither the HTTP stack (httpx), nor rich, nor the pipeline;
``inspect`` loads the registry client only (and runs no process: not even the process
runner is loaded). Off a terminal, tables are printed without
rich (tests/unit/output/test_tables.py: in rich's own bytes).

Each case imports polyarch again, in this process, with every module of polyarch,
httpx and rich taken out of ``sys.modules`` first, and puts the originals back after it.
(tests/engine/test_startup.py checks the same of real ``polyarch`` processes.)"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from oci_images import make_layer, write_oci_layout

#: Packages a command must not load unless it talks to a registry, prints a table or
#: runs the pipeline (the linter: unless it lints).
HEAVY = ("httpx", "httpcore", "h11", "rich", "polyarch.pipeline", "polyarch.checks.verify",
         "polyarch.registry.client", "polyarch.engines.buildx", "polyarch.lint")
_FRESH = ("polyarch", "httpx", "httpcore", "h11", "rich")


def _ours(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@contextmanager
def fresh_import() -> Iterator[set[str]]:
    """polyarch, httpx and rich imported anew while the block runs; yields the set the
    names of the modules loaded meanwhile are added to (when the block ends)."""
    saved = {k: v for k, v in sys.modules.items() if _ours(k, _FRESH)}
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for k in saved:
        del sys.modules[k]
    loaded: set[str] = set()
    try:
        yield loaded
    finally:
        # (a None entry is an import refused: polyarch.registry refuses httpx._main)
        loaded.update(k for k, v in sys.modules.items() if _ours(k, _FRESH) and v is not None)
        for k in list(sys.modules):
            if _ours(k, _FRESH):
                del sys.modules[k]
        sys.modules.update(saved)
        for s, h in handlers.items():
            signal.signal(s, h)


def _heavy(loaded: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(k for k in loaded if _ours(k, HEAVY) and not _ours(k, allowed))


def run_fresh(args: list[str], cwd: Path, env: Mapping[str, str] | None = None
              ) -> tuple[int, str, str]:
    """``polyarch ARGS`` in this process through the polyarch.cli imported now (inside
    :func:`fresh_import`): exit code, stdout, stderr."""
    cli = importlib.import_module("polyarch.cli")
    scrub: dict[str, str | None] = {k: None for k in os.environ
                                    if k.startswith(("POLYARCH_", "GITHUB_", "GITLAB", "CI"))}
    old = os.getcwd()
    with CliRunner().isolation(env={**scrub, **(env or {})}) as (out, err, _):
        os.chdir(cwd)
        try:
            code = cli.run(args)
        finally:
            os.chdir(old)
        return code, out.getvalue().decode(), err.getvalue().decode()


COMMANDS = ["publish", "build", "merge", "inspect", "verify", "tags", "lint", "doctor"]


@pytest.mark.parametrize("args", [["--help"], ["--version"],
                                  *([c, "--help"] for c in COMMANDS)],
                         ids=lambda a: " ".join(a))
def test_help_and_version_load_no_http_rich_or_pipeline(args: list[str], tmp_path: Path) -> None:
    with fresh_import() as loaded:
        code, out, err = run_fresh(args, tmp_path)
        assert code == 0, err
        assert out.startswith(("Usage: ", "polyarch, version"))
    assert "polyarch.cli" in loaded
    assert _heavy(loaded, allowed=("polyarch.lint",) if args[0] == "lint" else ()) == []


def _github_push(tmp_path: Path) -> dict[str, str]:
    """GitHub Actions variables that say everything tags needs (no git runs)."""
    sha = "860c1904a1ce19322e91ac35af1ab07466440c37"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"},
                                 "head_commit": {"id": sha,
                                                 "timestamp": "2020-01-09T23:59:00Z"}}))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_SHA": sha,
            "GITHUB_REPOSITORY": "octo/app", "GITHUB_EVENT_PATH": str(event)}


def test_tags_off_a_terminal_prints_its_tables_without_loading_rich(tmp_path: Path) -> None:
    with fresh_import() as loaded:
        code, out, err = run_fresh(["tags"], tmp_path, _github_push(tmp_path))
        assert code == 0, err
        assert "v1.2.3" in out.splitlines() and "org.opencontainers.image.version" in out
        assert "┃ label" in out  # the labels' table
    assert _heavy(loaded) == []


def test_inspect_loads_the_registry_client_only(tmp_path: Path) -> None:
    """Neither rich (off a terminal), nor the pipeline, the checks or the linter, nor the
    tag machinery (SOURCE_DATE_EPOCH is checked by polyarch.epoch alone), nor the
    result-file writer; nor, for a layout on disk, the signature look-up."""
    a = make_layer({"bin/a": b"\x7fELF amd64"})
    b = make_layer({"bin/b": b"\x7fELF arm64"})
    lay = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*a, "gzip")]),
                                              ("linux/arm64", [(*b, "gzip")])])
    with fresh_import() as loaded:
        code, out, err = run_fresh(["inspect", f"oci:{lay}"], tmp_path)
        assert code == 0, err
        assert "┃ PLATFORM" in out and "│ linux/arm64 │" in out
    assert "polyarch.registry.client" in loaded
    assert _heavy(loaded, allowed=("httpx", "httpcore", "h11", "polyarch.registry.client")) == []
    assert [k for k in loaded if _ours(k, ("polyarch.tags", "polyarch.resultfiles",
                                           "polyarch.signing", "polyarch.proc"))] == []


def test_tags_json_loads_no_http_rich_or_pipeline(tmp_path: Path) -> None:
    with fresh_import() as loaded:
        code, out, err = run_fresh(["tags", "--json"], tmp_path, _github_push(tmp_path))
        assert code == 0, err
        assert json.loads(out)["tags"] == ["v1.2.3", "latest"]
    assert _heavy(loaded) == []
