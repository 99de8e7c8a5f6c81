"""config sits below the pipeline: it imports only the modules under it (read from
the source, so that no import state is touched)."""

from __future__ import annotations

import ast
from pathlib import Path

import polyarch

SRC = Path(polyarch.__file__).parent
# checks.allow is the one leaf of checks config reads (the PLATFORM=GLOB syntax of
# --allow); it imports nothing of polyarch, which the last test checks.
# polyarch.settings is the settings object the table's SETTINGS resolve into; it too
# imports nothing of polyarch.
ALLOWED = {"polyarch.config", "polyarch.errors", "polyarch.platforms", "polyarch.refs",
           "polyarch.nodespec", "polyarch.checks.allow", "polyarch.settings"}


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("polyarch")}


def test_config_imports_nothing_above_it() -> None:
    files = [*(SRC / "config").glob("*.py"), SRC / "nodespec.py"]
    assert len(files) >= 6
    for f in files:
        bad = {m for m in imports(f) if not any(m == a or m.startswith(a + ".") for a in ALLOWED)}
        assert not bad, (f.name, bad)
    assert imports(SRC / "nodespec.py") <= {"polyarch.platforms"}


def test_the_allow_syntax_module_is_a_leaf() -> None:
    assert imports(SRC / "checks" / "allow.py") == set()


def test_the_settings_module_is_a_leaf() -> None:
    # The lowest layers (proc, registry, workspace, tags) read it.
    assert imports(SRC / "settings.py") == set()
