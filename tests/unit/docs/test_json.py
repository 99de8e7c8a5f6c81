"""docs/json.md against the real ``--json`` documents: each section's example has the
fields (and the value types) of the document the code prints, no more and no fewer,
and every field its tables name exists.

The real documents come from the commands themselves where they run without a process
(``inspect``/``verify`` of an OCI layout, through the CLI) and otherwise from the very
``to_json`` of the result objects the commands print (publish, build, merge, the build
descriptor, doctor).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch import cli, config
from polyarch.checks.verify import verify_source
from polyarch.commands.doctor import document as doctor_document
from polyarch.engines import Check, Plan
from polyarch.errors import EnvironmentProblem
from polyarch.pipeline import descriptor as desc
from polyarch.pipeline.build import PlatformBuilt
from polyarch.pipeline.merge import MergeResult
from polyarch.pipeline.merge_plan import MergePlan, Source, build_index
from polyarch.pipeline.push import Pushed
from polyarch.pipeline.result import ImageResult
from polyarch.pipeline.tag import Tagged
from polyarch.pipeline.verify import Verified
from polyarch.platforms import EM_X86_64, parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import OCILayout

PAGE = Path(__file__).resolve().parents[3] / "docs/json.md"
D = "sha256:" + "a" * 64
#: Objects whose keys are data (annotation keys, platforms, option names), not fields.
FREE_FORM = {"annotations", "sources", "manifests", "modes"}


def section(title: str) -> str:
    text = PAGE.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m is not None, f"docs/json.md has no section {title!r}"
    return m.group(1)


def example(title: str) -> Any:
    m = re.search(r"^```json\n(.*?)^```", section(title), re.S | re.M)
    assert m is not None, f"docs/json.md, {title}: no JSON example"
    return json.loads(m.group(1))


def documented_names(title: str) -> set[str]:
    """Field names a section's tables and bullet lists give (last path component)."""
    names: set[str] = set()
    for line in section(title).splitlines():
        m = re.match(r"^\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|", line) or re.match(
            r"^- ((?:`[^`]+`(?:,\s*)?)+)\s*:", line)
        if m:
            for name in re.findall(r"`([^`]+)`", m.group(1)):
                names.add(re.split(r"[.\]]", name)[-1])
    return names


def _type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def shape_problems(doc: Any, real: Any, path: str = "") -> list[str]:
    if doc is None or real is None:
        return []  # a nullable field: either may show null
    if _type(doc) != _type(real):
        return [f"{path or '.'}: documented {_type(doc)}, printed {_type(real)}"]
    out: list[str] = []
    if isinstance(doc, dict):
        if path.rsplit(".", 1)[-1] in FREE_FORM:
            return []
        shown = set(doc) - {"…"}
        out += [f"{path}.{k}: documented, not printed" for k in sorted(shown - set(real))]
        if "…" not in doc:
            out += [f"{path}.{k}: printed, not documented" for k in sorted(set(real) - shown)]
        for k in sorted(shown & set(real)):
            out += shape_problems(doc[k], real[k], f"{path}.{k}")
    elif isinstance(doc, list) and doc and real:
        out += shape_problems(doc[0], real[0], f"{path}[]")
    return out


def all_keys(doc: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(doc, dict) and path.rsplit(".", 1)[-1] not in FREE_FORM:
        for k, v in doc.items():
            out.add(k)
            out |= all_keys(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for v in doc:
            out |= all_keys(v, path)
    return out


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 2, machine, 1) + b"\0" * 99


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """linux/arm64 carrying an x86-64 binary: a binaries finding."""
    blob, diff = make_layer({"bin/app": elf(EM_X86_64)})
    return write_oci_layout(tmp_path / "layout", [("linux/arm64", [(blob, diff, "gzip")])])


def cli_json(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> Any:
    capsys.readouterr()
    got = cli.run(list(args))
    out = capsys.readouterr()
    assert got == code, out.err
    return json.loads(out.out)


def verify_report(layout: Path) -> Verified:
    lay = OCILayout(layout)
    return Verified(verify_source(lay, parse_platforms("linux/arm64"), cache=None), 0.4)


def publish_result(layout: Path, *, tagged: bool = True) -> ImageResult:
    return ImageResult(
        D, "application/vnd.oci.image.index.v1+json", ("r.example/team/app:1",),
        (PlatformBuilt("linux/arm64", D, "emulated", 669),), 41.2, verify_report(layout),
        Pushed(("r.example/team/app",), D, 6, 4, 0, 48213377, 1.9),
        Tagged(("r.example/team/app:1",), 0.05) if tagged else None)


def real_documents(layout: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    index = build_index([], {})
    src = Source("polyarch-build-linux-arm64.json",
                 parse_ref("r.example/team/app").with_digest(index.digest), index)
    plan = MergePlan([src], [], tuple(parse_platforms("linux/arm64")), index)
    doctor_plan = Plan(checks=[
        Check("engine", True, "Docker 26.1.5 (linux/x86_64)"),
        Check("platform linux/s390x", False, "no native node and no emulator",
              "install QEMU user emulation", EnvironmentProblem)])
    return {
        "inspect": cli_json(capsys, "inspect", f"oci:{layout}", "--json"),
        "verify": cli_json(capsys, "verify", f"oci:{layout}", "--platform", "linux/arm64",
                           "--json", code=5),
        "publish": publish_result(layout).to_json(),
        "doctor": doctor_document(doctor_plan, config.load({}, env={}, cwd=layout)),
        "build descriptor": desc.make(
            repository="r.example/team/app", digest=D, media_type="m", platforms=["linux/arm64"],
            manifests={"linux/arm64": D}, modes={"linux/arm64": "native"}, build_seconds=41.2,
            engine="docker", verified=True, annotations={"k": "v"}).to_json(),
        "merge": MergeResult(publish_result(layout), plan, 0.14).to_json(),
    }


SECTIONS = ("inspect", "verify", "publish", "doctor", "build descriptor", "merge")


@pytest.fixture
def real(layout: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return real_documents(layout, capsys)


@pytest.mark.parametrize("title", SECTIONS)
def test_the_example_has_the_printed_fields(title: str, real: dict[str, Any]) -> None:
    doc = real[title]
    problems = shape_problems(example(title), doc)
    assert not problems, f"docs/json.md, {title}:\n" + "\n".join(problems)


@pytest.mark.parametrize("title", SECTIONS)
def test_the_example_has_the_printed_schema_and_kinds(title: str, real: dict[str, Any]) -> None:
    """Values a program keys on: the schema number, and a finding's kind (a binary of the
    wrong machine was once documented with kind null)."""
    doc = example(title)
    if "schema" in doc:
        assert doc["schema"] == real[title]["schema"], f"docs/json.md, {title}: schema"
    if title == "verify":
        def binaries(d: dict[str, Any]) -> list[Any]:
            return [f["kind"] for p in d["platforms"] for f in p["findings"]
                    if f["check"] == "binaries" and f["severity"] == "error"]
        assert binaries(doc) and binaries(doc) == binaries(real[title])


@pytest.mark.parametrize("title", SECTIONS)
def test_every_documented_field_is_printed(title: str, real: dict[str, Any]) -> None:
    keys = all_keys(real[title])
    if title == "merge":  # the section adds to publish's document
        keys |= all_keys(real["publish"])
    missing = sorted(n for n in documented_names(title) if n not in keys)
    assert not missing, f"docs/json.md, {title}: documents fields nothing prints: {missing}"


def test_the_checker_sees_a_difference() -> None:
    assert shape_problems({"a": 1, "b": {"c": "x"}}, {"a": 1, "b": {"c": "x", "d": 2}}) == [
        ".b.d: printed, not documented"]
    assert shape_problems({"a": [{"k": None}]}, {"a": [{"k": "wrong-machine"}]}) == []
    assert shape_problems({"a": "1"}, {"a": 1}) == [".a: documented str, printed number"]
    assert documented_names("build descriptor") >= {"kind", "schema", "annotations"}
