"""The index annotations of a merge: what the source indexes and the build descriptors
agree on (a one-platform build has no index of its own, so its descriptor says them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polyarch.errors import UsageError
from polyarch.output import Reporter
from polyarch.pipeline import descriptor as desc
from polyarch.pipeline.merge_plan import Source, common_annotations
from polyarch.refs import parse_ref
from polyarch.registry import Manifest
from polyarch.registry.media import OCI_INDEX, OCI_MANIFEST

from ..inprocess import error_line

DIGEST = "sha256:" + "c" * 64


def source(root: dict[str, Any], media_type: str,
           annotations: dict[str, str] | None = None, *, descriptor: bool = True) -> Source:
    d = desc.make(repository="127.0.0.1:5000/t/app", digest=DIGEST, media_type=media_type,
                  platforms=["linux/amd64"], manifests={}, modes={}, build_seconds=1.0,
                  engine="docker", verified=True, annotations=annotations)
    # Through the file format, as merge reads it.
    d = desc.Descriptor.from_json(json.loads(json.dumps(d.to_json())), "test")
    return Source("x.json", parse_ref("127.0.0.1:5000/t/app").with_digest(DIGEST),
                  Manifest.from_bytes(json.dumps(root).encode(), media_type),
                  d if descriptor else None)


MANIFEST = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}


def test_descriptors_of_one_platform_builds_give_the_index_their_annotations(
        capsys: pytest.CaptureFixture[str]) -> None:
    a = source(MANIFEST, OCI_MANIFEST, {"rev": "1", "created": "t1", "title": "app"})
    b = source(MANIFEST, OCI_MANIFEST, {"rev": "1", "created": "t2", "title": "app"})
    assert common_annotations([a, b], Reporter()) == {"rev": "1", "title": "app"}
    assert "index annotation created differs between sources" in capsys.readouterr().err
    # Keys merge sets itself are not warned about.
    assert common_annotations([a, b], Reporter(), ["created"]) == {"rev": "1", "title": "app"}
    assert "differs" not in capsys.readouterr().err


def test_an_index_source_and_a_descriptor_source_are_intersected() -> None:
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
             "annotations": {"rev": "1", "only-index": "x"}}
    a = source(index, OCI_INDEX, None, descriptor=False)
    b = source(MANIFEST, OCI_MANIFEST, {"rev": "1"})
    assert common_annotations([a, b], Reporter()) == {"rev": "1"}
    # A single manifest given by reference says nothing about the index.
    c = source(MANIFEST, OCI_MANIFEST, None, descriptor=False)
    assert common_annotations([a, c], Reporter()) == {"rev": "1", "only-index": "x"}


def test_descriptor_annotations_are_optional_but_must_be_strings(tmp_path: Path) -> None:
    doc = desc.make(repository="127.0.0.1:5000/t/app", digest=DIGEST, media_type=OCI_MANIFEST,
                    platforms=["linux/amd64"], manifests={}, modes={}, build_seconds=1.0,
                    engine="docker", verified=True).to_json()
    assert doc["annotations"] == {}
    del doc["annotations"]
    assert desc.Descriptor.from_json(doc, "d").annotations is None
    doc["annotations"] = {"k": 1}
    with pytest.raises(UsageError, match="'annotations' must be an object of strings"):
        desc.Descriptor.from_json(doc, "d")


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("build_seconds", "abc", "'build_seconds' must be a number"),
    # A descriptor of the staging era (schema 1) is refused, not misread.
    ("schema", 1, "descriptor schema 1 is not supported (this polyarch reads schema 2)"),
    ("platforms", ["linux/arm65"], "unknown platform 'linux/arm65'"),
])
def test_bad_descriptor_fields(run_cli: Any, tmp_path: Path, field: str, value: object, needle: str) -> None:
    doc = {"kind": "polyarch-build", "schema": 2, "repository": "127.0.0.1:5000/a/b",
           "digest": DIGEST, "platforms": ["linux/amd64"], field: value}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    run = run_cli("merge", "--dry-run", "-t", "127.0.0.1:5000/a/b:1", str(path))
    assert run.code == 2, run.err
    assert needle in error_line(run)
