"""``polyarch build -o``: destinations that cannot be written are refused before anything
is built (exit 2, one error line). Run in process: the unit-test guard fails any process
start, so a refusal here proves no engine was asked to build."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyarch import cli
from polyarch.errors import UsageError
from polyarch.pipeline.outputs import OutputPlan, parse_output


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    monkeypatch.setenv("POLYARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return ctx


def build(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = cli.run(["build", *args])
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.startswith("polyarch: error:")]


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> str:
    code, errors = build(capsys, *args)
    assert code == 2, errors
    assert len(errors) == 1, errors
    # Nothing was built: no build directory was even made in the cache.
    builds = tmp_path / "cache" / "builds"
    assert not builds.exists() or not any(builds.iterdir())
    return errors[0]


def test_into_a_missing_directory(context: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for dest in (tmp_path / "missing" / "app.tar", tmp_path / "missing" / "layout"):
        line = refused(capsys, tmp_path, "-o", f"oci:{dest}", str(context))
        assert f"the directory {tmp_path / 'missing'} does not exist" in line
        assert "(create it first" in line
    assert not (tmp_path / "missing").exists()


def test_onto_an_existing_regular_file(context: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    line = refused(capsys, tmp_path, "-o", f"oci:{notes}", str(context))
    assert f"oci:{notes}: exists and is not a directory" in line
    # A file named .tar that is not an OCI archive is not overwritten either.
    fake = tmp_path / "app.tar"
    fake.write_text("not a tar archive\n")
    line = refused(capsys, tmp_path, "-o", f"oci:{fake}", str(context))
    assert "exists and is not an OCI archive" in line
    assert notes.read_text() == "keep me\n" and fake.read_text() == "not a tar archive\n"


def test_onto_a_non_empty_directory_that_is_no_layout(context: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("alias x=y\n")
    line = refused(capsys, tmp_path, "-o", f"oci:{home}", str(context))
    assert "not empty and is not an OCI layout" in line
    assert (home / ".bashrc").read_text() == "alias x=y\n"
    # A directory where an archive is asked for.
    tar_dir = tmp_path / "out.tar"
    tar_dir.mkdir()
    line = refused(capsys, tmp_path, "-o", f"oci:{tar_dir}", str(context))
    assert "is a directory, not an archive" in line


def test_load_and_push_need_a_name(context: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert "--load needs a name" in refused(capsys, tmp_path, "--load", str(context))
    assert "--push needs a name" in refused(capsys, tmp_path, "--push", str(context))


def test_an_unknown_output_type_is_refused(context: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, tmp_path, "-o", "type=registry", str(context))
    assert "-o type=registry: unknown output" in line


@pytest.mark.parametrize(("spec", "path", "archive"), [
    ("oci:app.tar", "app.tar", True),
    ("oci:out/layout", "out/layout", False),
    ("type=oci,dest=app.tar", "app.tar", True),
    ("type=oci,tar=false,dest=layout", "layout", False),
])
def test_output_specs_parse_to_a_path_and_archive_kind(spec: str, path: str, archive: bool) -> None:
    got = parse_output(spec)
    assert got == Path(path)
    assert OutputPlan(oci=got).archive is archive


def test_parse_output_refuses_a_buildx_archive_without_tar_suffix() -> None:
    with pytest.raises(UsageError, match="archive only to a PATH ending in .tar"):
        parse_output("type=oci,dest=image")
    assert parse_output(None) is None
