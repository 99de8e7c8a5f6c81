"""Input grammar: metadata-action's own parse cases for tag specs, flavor and image lines
(tests/data/metadata-action/{tag_specs,flavor,images,raw_statement}.json), then polyarch's
errors for what metadata-action would accept silently."""

from __future__ import annotations

from typing import Any

import pytest

from polyarch.errors import UsageError
from polyarch.tags import parse_flavor, parse_images, parse_spec, parse_specs
from polyarch.tags.compute import _is_raw

from .vectors import load

SPECS = load("tag_specs.json")["cases"]
FLAVORS = load("flavor.json")["cases"]
IMAGES = load("images.json")["cases"]
RAW = load("raw_statement.json")["cases"]


def _as_dict(spec: Any) -> dict[str, Any]:
    return {"type": spec.type, "attrs": dict(spec.attrs)}


@pytest.mark.parametrize("case", SPECS, ids=[str(c["input"]) for c in SPECS])
def test_tag_spec_cases(case: dict[str, Any]) -> None:
    if case["invalid"]:
        with pytest.raises(UsageError):
            if case["kind"] == "transform":
                parse_specs(case["input"])
            else:
                parse_spec(case["input"])
        return
    if case["kind"] == "transform":
        assert [_as_dict(s) for s in parse_specs(case["input"])] == case["expected"]
    else:
        assert _as_dict(parse_spec(case["input"])) == case["expected"]


@pytest.mark.parametrize("case", FLAVORS, ids=[",".join(c["input"]) for c in FLAVORS])
def test_flavor_parses_as_metadata_action_does(case: dict[str, Any]) -> None:
    if case["invalid"]:
        with pytest.raises(UsageError):
            parse_flavor(case["input"])
        return
    f = parse_flavor(case["input"])
    want = case["expected"]
    assert (f.latest, f.prefix, f.prefix_latest, f.suffix, f.suffix_latest) == (
        want["latest"], want["prefix"], want["prefixLatest"], want["suffix"],
        want["suffixLatest"])


@pytest.mark.parametrize("case", IMAGES, ids=[";".join(c["input"]) for c in IMAGES])
def test_images_parse_as_metadata_action_does(case: dict[str, Any]) -> None:
    if case["invalid"]:
        with pytest.raises(UsageError):
            parse_images(case["input"])
        return
    # metadata-action lower-cases the names where it uses them; polyarch as it reads them.
    got = [(i.name, i.enable) for i in parse_images(case["input"])]
    assert got == [(e["name"].lower(), e["enable"]) for e in case["expected"]]


@pytest.mark.parametrize("case", RAW, ids=[c["pattern"] for c in RAW])
def test_raw_statement_cases(case: dict[str, Any]) -> None:
    assert _is_raw(case["pattern"]) is case["raw"]


@pytest.mark.parametrize(("line", "words"), [
    # Accepted by metadata-action and ignored; an error here (a typo would vanish).
    ("type=sha,prefx=a", "did you mean 'prefix'"),
    ("type=raw,value=a,value=b", "given twice"),
    ("type=semver,pattern={{version}},group=1", "unknown attribute 'group'"),
    ("type=match,pattern=/v(.*)/x", "unknown regular expression flag"),
])
def test_specs_metadata_action_would_ignore_are_errors(line: str, words: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_spec(line)
    assert line in e.value.line() and words in e.value.line()


def test_flavor_latest_modes() -> None:
    assert parse_flavor(["latest=metadata-action"]).latest == "metadata-action"
    with pytest.raises(UsageError) as e:
        parse_flavor(["latest=sometimes"])
    assert "latest=metadata-action" in e.value.line()


def test_image_lines_lower_case_skip_comments_and_split() -> None:
    got = parse_images(["ghcr.io/MyUser/MyApp", "# comment", "name=Docker.io/U/App,enable=false"])
    assert [(i.name, i.enable) for i in got] == [("ghcr.io/myuser/myapp", True),
                                                 ("docker.io/u/app", False)]
    assert [i.name for i in parse_images(["a/b, c/d"])] == ["a/b", "c/d"]
    with pytest.raises(UsageError) as e:
        parse_images(["a/b,enable=yes"])
    assert "enable=true or enable=false" in e.value.line()


README = load("readme_tables.json")["cases"]


@pytest.mark.parametrize("case", README,
                         ids=[f"{c['type']}-{c['tag']}-{c['pattern']}" for c in README])
def test_readme_pattern_tables_give_their_tags(case: dict[str, Any]) -> None:
    from polyarch.tags import GitContext, compute

    spec = f'type={case["type"]},"pattern={case["pattern"]}"'
    if case.get("match"):
        spec += f',"match={case["match"]}"'
    if case.get("group"):
        spec += f",group={case['group']}"
    ctx = GitContext.from_ref(f"refs/tags/{case['tag']}", "860c1904a1ce19322e91ac35af1ab07466440c37")
    assert compute([spec], ["latest=false"], ctx).tags == [case["output"]]
