"""Hostile OCI layouts: files that are not files, documents too large or nested too
deeply. Each ends with one ``polyarch: error:`` line and exit 4 (the layout cannot be
read) or 5 (what it holds is malformed), never exit 70 or a hang."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from oci_images import make_layer, write_oci_layout

from polyarch.cli import run as cli_run
from polyarch.registry import OCILayout
from polyarch.registry.media import MAX_DEPTH, DocumentError, load_json, too_deep

ARGS = ["--platform", "linux/amd64"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYARCH_CACHE_DIR", str(tmp_path / "cache"))


def one_platform(tmp_path: Path) -> Path:
    layer = make_layer({"etc/hostname": b"box\n"}, "gzip")
    return write_oci_layout(tmp_path / "L", [("linux/amd64", [(*layer, "gzip")])])


def run_verify(d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_run(["verify", f"oci:{d}", *ARGS])
    _out, err = capsys.readouterr()
    return code, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("polyarch: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def manifest_of(d: Path) -> tuple[dict[str, object], Path]:
    """The platform manifest (index.json -> index -> manifest) and its blob file."""
    digest = OCILayout(d).root().json["manifests"][0]["digest"]
    path = d / "blobs" / "sha256" / str(digest).split(":")[1]
    return json.loads(path.read_bytes()), path


def put_blob(d: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (d / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def repoint(d: Path, manifest: dict[str, object]) -> None:
    """Make index.json list ``manifest`` (written as a blob) as its only platform."""
    data = json.dumps(manifest).encode()
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put_blob(d, data), "size": len(data),
        "platform": {"os": "linux", "architecture": "amd64"}}]}))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 200 + "]" * 200])
def test_index_json_nested_beyond_the_limit(tmp_path: Path, text: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    (d / "index.json").write_text(text)
    code, err = run_verify(d, capsys)
    assert code == 4
    assert "index.json is nested too deeply (arrays or objects more than 100 deep)" in error_line(err)


def test_a_100_mb_index_json_is_refused_before_it_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    with (d / "index.json").open("r+b") as f:
        f.truncate(100 << 20)  # sparse: nothing written, 100 MB long
    code, err = run_verify(d, capsys)
    assert code == 4
    assert "index.json is larger than 4 MiB (104857600 bytes)" in error_line(err)


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "directory"])
def test_index_json_that_is_not_a_file(tmp_path: Path, what: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    (d / "index.json").unlink()
    if what == "fifo":
        os.mkfifo(d / "index.json")
    elif what == "dev-zero":
        (d / "index.json").symlink_to("/dev/zero")
    else:
        (d / "index.json").mkdir()
    code, err = run_verify(d, capsys)
    assert code == 4
    kind = {"fifo": "a FIFO", "dev-zero": "a character device", "directory": "a directory"}
    assert f"index.json is not a regular file ({kind[what]})" in error_line(err)


@pytest.mark.parametrize("blob", ["manifest", "config", "layer"])
@pytest.mark.parametrize("what", ["fifo", "dev-zero"])
def test_a_blob_that_is_a_fifo_or_a_device(tmp_path: Path, blob: str, what: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    manifest, mpath = manifest_of(d)
    if blob == "manifest":
        path = mpath
    else:
        desc = manifest["config"] if blob == "config" else manifest["layers"][0]  # type: ignore[index]
        path = d / "blobs" / "sha256" / str(desc["digest"]).split(":")[1]  # type: ignore[index]
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    code, err = run_verify(d, capsys)
    assert code == 4
    kind = "a FIFO" if what == "fifo" else "a character device"
    assert f"is not a regular file ({kind})" in error_line(err)


def test_oci_path_that_is_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "image.tar")
    code, err = run_verify(tmp_path / "image.tar", capsys)
    assert code == 2
    assert "not a directory or a regular file" in error_line(err)


def test_manifest_nested_too_deeply_fails_verification(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    manifest, _ = manifest_of(d)
    deep: object = "x"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    repoint(d, {**manifest, "annotations": {"a": deep}})
    code, err = run_verify(d, capsys)
    assert code == 5
    assert "manifest is nested too deeply (arrays or objects more than 100 deep)" in error_line(err)


@pytest.mark.parametrize("config", [b"[" * 100_000, b'{"config":' * 50_000,
                                    b'{"os": "linux", "x": "' + b"a" * (5 << 20) + b'"}'])
def test_config_nested_too_deeply_or_too_large(tmp_path: Path, config: bytes,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    manifest, _ = manifest_of(d)
    manifest["config"] = {**manifest["config"], "digest": put_blob(d, config),  # type: ignore[dict-item]
                          "size": len(config)}
    repoint(d, manifest)
    code, err = run_verify(d, capsys)
    line = error_line(err)
    if len(config) > 4 << 20:
        assert code == 4
        assert "too large for a manifest or config" in line
    else:
        assert code == 5
        assert "image config" in line
        assert "is nested too deeply (arrays or objects more than 100 deep)" in line


def test_inspect_of_a_nested_index_json(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    d = one_platform(tmp_path)
    (d / "index.json").write_text("[" * 100_000)
    assert cli_run(["inspect", f"oci:{d}"]) == 4
    assert "nested too deeply" in error_line(capsys.readouterr().err)


def test_brackets_inside_strings_do_not_count() -> None:
    deep_text = json.dumps({"k": "[" * 5000, "l": ["{" * 300, "\\\"[[[["]})
    assert not too_deep(deep_text.encode())
    assert load_json(deep_text, "doc")["k"] == "[" * 5000
    nested = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert too_deep(nested.encode())
    assert not too_deep(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode())
    with pytest.raises(DocumentError, match="not JSON"):
        load_json(b'{"a": "unterminated', "doc")
