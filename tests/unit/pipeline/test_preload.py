"""What the build step loads while the engine builds (pipeline.build.preload): modules
imported, functions named after a colon called, a failure left for the step that needs
the module."""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

import pytest

from polyarch.pipeline.build import AFTER_BUILD, BEFORE_VERIFY, preload


def test_modules_are_imported_and_named_functions_called(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pa_preload_a.py").write_text("CALLS = []\ndef warm():\n    CALLS.append(1)\n")
    (tmp_path / "pa_preload_b.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for m in ("pa_preload_a", "pa_preload_b"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    preload(["pa_preload_a:warm", "pa_preload_b"]).join(10)
    assert sys.modules["pa_preload_a"].CALLS == [1]
    assert "pa_preload_b" in sys.modules


def test_a_failure_stops_the_preloading_quietly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pa_preload_bad.py").write_text("def warm():\n    raise RuntimeError('x')\n")
    (tmp_path / "pa_preload_after.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for m in ("pa_preload_bad", "pa_preload_after"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    t = preload(["pa_preload_bad:warm", "pa_preload_after"])
    t.join(10)
    assert not t.is_alive() and "pa_preload_after" not in sys.modules


@pytest.mark.parametrize("name", AFTER_BUILD + BEFORE_VERIFY)
def test_what_the_build_step_preloads_exists(name: str) -> None:
    # A renamed module or function would make the preloading a silent no-op.
    module, _, function = name.partition(":")
    loaded = importlib.import_module(module)
    assert not function or callable(getattr(loaded, function))


def test_preloading_waits_for_the_builds_command_to_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pa_preload_later.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pa_preload_later", raising=False)
    started = threading.Event()
    t = preload(["pa_preload_later"], after=started)
    t.join(0.2)
    assert t.is_alive() and "pa_preload_later" not in sys.modules
    started.set()
    t.join(10)
    assert "pa_preload_later" in sys.modules
