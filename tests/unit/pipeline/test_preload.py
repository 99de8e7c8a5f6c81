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


def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **sources: str) -> None:
    """Modules named after the keywords, with these sources, importable and not loaded."""
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_text(text)
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_modules_are_imported_and_named_functions_called(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules(tmp_path, monkeypatch, pa_preload_a="CALLS = []\ndef warm():\n    CALLS.append(1)\n",
            pa_preload_b="X = 1\n")
    preload(["pa_preload_a:warm", "pa_preload_b"]).join(10)
    assert sys.modules["pa_preload_a"].CALLS == [1]
    assert "pa_preload_b" in sys.modules


def test_a_failure_stops_the_preloading_quietly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules(tmp_path, monkeypatch, pa_preload_bad="def warm():\n    raise RuntimeError('x')\n",
            pa_preload_after="X = 1\n")
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
    modules(tmp_path, monkeypatch, pa_preload_later="X = 1\n")
    started = threading.Event()
    t = preload(["pa_preload_later"], after=started)
    t.join(0.2)
    assert t.is_alive() and "pa_preload_later" not in sys.modules
    started.set()
    t.join(10)
    assert "pa_preload_later" in sys.modules


def test_late_modules_load_only_beside_a_build_still_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.pipeline import build

    monkeypatch.setattr(build, "LATE_AFTER", 2.0)
    modules(tmp_path, monkeypatch, pa_preload_now="X = 1\n", pa_preload_short="X = 1\n",
            pa_preload_long="X = 1\n")
    # A build that ends first: what comes late is left to the step that needs it.
    built = threading.Event()
    t = preload(["pa_preload_now"], late=["pa_preload_short"], unless=built)
    built.set()
    t.join(10)
    assert "pa_preload_now" in sys.modules and "pa_preload_short" not in sys.modules
    # A build still running after LATE_AFTER: loaded beside it, not before.
    running = threading.Event()
    t = preload([], late=["pa_preload_long"], unless=running)
    t.join(0.1)
    assert t.is_alive() and "pa_preload_long" not in sys.modules
    t.join(10)
    assert "pa_preload_long" in sys.modules
