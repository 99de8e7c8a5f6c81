"""podman names an image it reads from ``oci:PATH`` after PATH (``localhost/PATH``) and
refuses a PATH that is not a valid reference, such as the default cache directory
``~/.cache/polyarch/...``: smoke runs and --load go through a link at a valid path."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import pytest

from polyarch.engines.podman import PodmanEngine, reference_safe, reference_safe_link


@pytest.mark.parametrize(("path", "ok"), [
    ("/tmp/polyarch-smoke-0a1b2c", True),
    ("/var/lib/polyarch/builds/20261126-001902-sandbox-276513", True),
    ("/root/.cache/polyarch/builds/20261126-001902-sandbox-276513", False),  # '.cache'
    ("/Users/me/Library/Caches/polyarch/x", False),  # capitals
    ("/tmp/a__b/c-d/e.f", True),
    ("/tmp/trailing_", False),
    ("/", False),
])
def test_reference_safe(path: str, ok: bool) -> None:
    assert reference_safe(Path(path)) is ok


def test_a_layout_under_a_dot_directory_is_linked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tmpdir = Path("/tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    layout = tmp_path / ".cache" / "layout"
    layout.mkdir(parents=True)
    (layout / "index.json").write_text("{}")
    tag = secrets.token_hex(6)
    engine = PodmanEngine()
    ref = engine.runnable(layout, f"polyarch-smoke-{tag}:latest")
    link = tmpdir / f"polyarch-smoke-{tag}"
    assert ref == f"oci:{link}"
    assert link.is_symlink() and (link / "index.json").read_text() == "{}"
    # A path podman can name the image after is used as it is.
    clean = reference_safe_link(tmpdir, "unused")
    assert clean == tmpdir
    link.unlink()
    assert engine._links == {f"polyarch-smoke-{tag}:latest": link}
