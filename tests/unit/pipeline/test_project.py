"""Projects with several images: tag resolution, configuration errors and dependency
order (pure logic; the CLI in process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from polyarch import cli
from polyarch.errors import ConfigError
from polyarch.pipeline.images import ImageSpec, load_project, order, resolve_tags

from ..inprocess import error_line


def spec(**kw: object) -> ImageSpec:
    return ImageSpec(name="x", where="test", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("uri", "version", "env", "expected"), [
    ("localhost:5000/x:1", None, "", "localhost:5000/x:1"),
    ("localhost:5000/x", "0.56.0", "", "localhost:5000/x:0.56.0"),
    ("localhost:5000/x", None, "", "localhost:5000/x:latest"),
    ("us-docker.pkg.dev/p/r/sandbox:0.56.0", "1.0.0", "", "us-docker.pkg.dev/p/r/sandbox:0.56.0"),
    ("us-docker.pkg.dev/p/r/sandbox:0.56.0", None, "nightly", "us-docker.pkg.dev/p/r/sandbox:nightly"),
    ("127.0.0.1:5000/a/b", "2.0.0", "feature-x", "127.0.0.1:5000/a/b:feature-x"),
])
def test_image_reference_from_name_file_version_and_tag_env(tmp_path: Path, uri: str, version: str | None,
                                                            env: str, expected: str) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"config": {"uri": uri}}))
    s = spec(name_from={"file": "package.json", "field": "config.uri"}, tag_env="TAG")
    refs = resolve_tags(s, tmp_path, version, {"TAG": env} if env else {})
    assert [str(r) for r in refs] == [expected]


def test_bad_tag_env_and_missing_version(tmp_path: Path) -> None:
    from polyarch.errors import UsageError

    with pytest.raises(UsageError, match="environment variable TAG: invalid tag"):
        resolve_tags(spec(tags=("r.io/a",), tag_env="TAG"), tmp_path, None, {"TAG": "bad tag"})
    with pytest.raises(ConfigError, match=r"uses \{version\} but no 'version' is set"):
        resolve_tags(spec(tags=("r.io/a:{version}",)), tmp_path, None, {})


def test_cycles_unknown_images_and_unknown_keys_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ndepends-on = ["b"]\n[[image]]\nname = "b"\ndepends-on = ["a"]\n')
    with pytest.raises(ConfigError, match="depends-on cycle: a -> b -> a"):
        load_project(cwd=tmp_path)
    (tmp_path / "polyarch.toml").write_text('[[image]]\nname = "a"\ndepends-on = ["bse"]\n'
                                            '[[image]]\nname = "base"\n')
    with pytest.raises(ConfigError, match="not an image of this project"):
        load_project(cwd=tmp_path)
    (tmp_path / "polyarch.toml").write_text('[[image]]\nname = "a"\ndepnds-on = ["b"]\n')
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path)
    assert "unknown key 'depnds-on'" in e.value.line()
    assert "did you mean 'depends-on'?" in e.value.line()


def test_order_puts_dependencies_first(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "svc"\ndepends-on = ["mid"]\n[[image]]\nname = "mid"\n'
        'depends-on = ["base"]\n[[image]]\nname = "base"\n[[image]]\nname = "other"\n')
    proj = load_project(cwd=tmp_path)
    assert proj is not None
    assert [i.name for i in order(proj, [])] == ["base", "mid", "svc", "other"]
    assert [i.name for i in order(proj, ["svc"])] == ["base", "mid", "svc"]
    shutil.rmtree(tmp_path)


def test_cli_cycle_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ndepends-on = ["a"]\n')
    monkeypatch.chdir(tmp_path)
    assert cli.run(["publish", "--dry-run"]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("polyarch: error:")]
    assert len(errors) == 1 and "cycle" in errors[0]


@pytest.mark.parametrize("entry", [
    'version = { from = "package.json", field = 5 }',
    "name-from = { file = 5 }",
])
def test_bad_project_value_types(run_cli: Any, tmp_path: Path, entry: str) -> None:
    (tmp_path / "polyarch.toml").write_text(f'[[image]]\nname = "a"\n{entry}\n')
    run = run_cli("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "internal error" not in run.err
    assert "image 'a'" in error_line(run)


def test_images_of_a_project_may_not_share_a_tag(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        'tags = ["127.0.0.1:5000/x/shared:1"]\n[[image]]\nname = "a"\n[[image]]\nname = "b"\n')
    run = run_cli("publish", "--dry-run", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "images 'a' and 'b' would both be published as" in error_line(run)


def test_a_bad_value_in_the_last_image_stops_before_the_first(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(
        '[[image]]\nname = "a"\ntags = ["127.0.0.1:5000/x/a:1"]\nprebuild = ["touch ran"]\n'
        '[[image]]\nname = "b"\ntags = ["127.0.0.1:5000/x/b:1"]\nverify = 3\n')
    run = run_cli("publish", cwd=tmp_path)
    assert run.code == 2, run.err
    assert "'verify' must be true or false" in error_line(run)
    assert not (tmp_path / "ran").exists()  # image a's prebuild never ran
