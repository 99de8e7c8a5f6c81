"""What real ``polyarch`` processes load before doing their work, through the program's
entry: ``--help`` and ``--version`` neither the HTTP stack, nor rich, nor the pipeline,
nor the engines; ``tags`` none of them
(its tables are printed without rich off a terminal); ``inspect`` (and ``--json``) the
registry client but neither rich nor the pipeline nor the checks nor the tag machinery.
(tests/unit/cli/test_startup.py checks the in-process side of it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import LocalRegistry, make_layer, write_oci_layout

from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout

#: Runs the CLI in a fresh interpreter, then writes the names of the modules it loaded
#: (a None entry is an import refused, not loaded) to $MODULES_OUT.
SCRIPT = """
import atexit, json, os, sys
def dump():
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump([k for k, v in sys.modules.items() if v is not None], f)
atexit.register(dump)
sys.argv = ["polyarch", *sys.argv[1:]]
from polyarch.__main__ import main  # the program's entry, as the console script runs it
main()
"""

HEAVY = ("httpx", "httpcore", "h11", "rich", "polyarch.pipeline", "polyarch.checks.verify",
         "polyarch.engines", "polyarch.lint")


def loaded_by(args: list[str], tmp_path: Path, cwd: Path | None = None) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POLYARCH_", "GITHUB_", "GITLAB", "CI"))}
    r = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=cwd or tmp_path,
                       env={**env, "MODULES_OUT": str(out)}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return set(json.loads(out.read_text())), r.stdout


def heavy(mods: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    def under(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return sorted(m for m in mods if under(m, HEAVY) and not under(m, allowed))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["publish", "--help"],
                                  ["inspect", "--help"], ["verify", "--help"]],
                         ids=" ".join)
def test_help_loads_no_http_rich_or_pipeline(args: list[str], tmp_path: Path) -> None:
    mods, out = loaded_by(args, tmp_path)
    assert out.startswith(("Usage: polyarch", "polyarch, version"))
    assert heavy(mods) == []


def test_tags_in_a_working_tree_loads_nothing_heavy(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    repo = tmp_path / "proj"
    repo.mkdir()
    for cmd in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True, capture_output=True)
    mods, out = loaded_by(["tags"], tmp_path, cwd=repo)
    assert "git (git): refs/heads/main" in out and "org.opencontainers.image.revision" in out
    assert "┃ label" in out
    assert heavy(mods) == []


def test_inspect_json_loads_the_registry_client_only(tmp_path: Path,
                                                     own_registry: LocalRegistry) -> None:
    a = make_layer({"bin/a": b"\x7fELF amd64"})
    b = make_layer({"bin/b": b"\x7fELF arm64"})
    lay = OCILayout(write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*a, "gzip")]),
                                                        ("linux/arm64", [(*b, "gzip")])]))
    ref = f"{own_registry.address}/team/app:1"
    with RegistryClient() as client:
        res = push_layout(client, lay, parse_ref(ref))
        client.put_manifest(parse_ref(ref), lay.root().data, res.media_type)
    mods, out = loaded_by(["inspect", "--json", ref], tmp_path)
    assert [p["platform"] for p in json.loads(out)["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert "polyarch.registry.client" in mods and "httpx" in mods
    assert heavy(mods, allowed=("httpx", "httpcore", "h11")) == []
    mods, out = loaded_by(["inspect", ref], tmp_path)
    assert "│ linux/arm64 │" in out and "signed by:  not signed" in out
    assert heavy(mods, allowed=("httpx", "httpcore", "h11")) == []
    assert sorted(m for m in mods if m.startswith("polyarch.tags")) == []
    # Signatures are looked up by polyarch's own client: nothing of cosign's runner or of
    # the process runner is loaded (or subprocess, which nothing else here needs).
    assert "polyarch.signing.check" in mods
    assert sorted(m for m in mods if m in ("polyarch.signing.cosign", "polyarch.proc",
                                           "subprocess")) == []
