"""type=pep440, semver match=, the two latest rules, and labels/annotations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from polyarch.tags import compute, parse_image_names
from polyarch.tags.gitinfo import GitContext

from .vectors import META, image_tags, run

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
NOW = datetime(2020, 1, 10, 0, 30, tzinfo=UTC)
L = "org.opencontainers.image."


def tag_ctx(tag: str, **kw: Any) -> GitContext:
    return GitContext.from_ref(f"refs/tags/{tag}", SHA, default_branch="main", **kw)


@pytest.mark.parametrize(("tag", "pattern", "out", "latest"), [
    ("1.2.3", "{{version}}", "1.2.3", True),
    ("v1.2.3", "{{raw}}", "v1.2.3", True),
    ("1.2", "{{major}}.{{minor}}.{{patch}}", "1.2.0", True),
    ("1!2.3", "{{version}}", "1-2.3", True),             # epoch: '!' is sanitised
    ("1.0+ubuntu.1", "{{version}}", "1.0-ubuntu.1", True),  # local version
    ("1.1beta2", "{{major}}", "1.1b2", False),           # pre-release: the normalised version
    ("1.1beta2", "{{raw}}", "1.1beta2", False),
    ("1.2post1", "{{major}}", "1.2.post1", False),       # post-release: no latest either
    ("1.0dev4", "{{version}}", "1.0.dev4", False),
])
def test_pep440_versions_give_tags_and_latest(tag: str, pattern: str, out: str, latest: bool) -> None:
    plan = compute([f"type=pep440,pattern={pattern}"], ["latest=metadata-action"],
                   tag_ctx(tag), now=NOW)
    assert plan.tags == [out, "latest"] if latest else [out]


def test_pep440_invalid_is_skipped_with_a_warning() -> None:
    plan = compute(["type=pep440,pattern={{version}}", "type=ref,event=tag"], [],
                   tag_ctx("release-x"), now=NOW)
    assert plan.tags == ["release-x", "latest"]
    assert any("PEP 440" in w for w in plan.warnings)


def test_semver_match_takes_the_first_group() -> None:
    specs = [r"type=semver,pattern={{major}}.{{minor}},match=app-v(\d+\.\d+\.\d+)$"]
    assert compute(specs, [], tag_ctx("app-v1.4.2"), now=NOW).tags == ["1.4", "latest"]
    # No match: the whole tag is tried (and here it is no version: skipped, warned).
    plan = compute(specs, [], tag_ctx("other-1.0.0"), now=NOW)
    assert plan.tags == [] and any("does not match" in w for w in plan.warnings)


def test_latest_auto_differs_from_metadata_action_only_for_pre_releases() -> None:
    differing = []
    for case in META["cases"]:
        ours = run(case, flavor=case["inputs"].get("flavor", []))
        theirs = case["expected"]["tags"]
        got = image_tags(case, ours)
        if got != theirs:
            differing.append(case["name"])
            # Same tags, less 'latest', and only because the ref is a pre-release.
            assert got == [t for t in theirs if t.rpartition(":")[2] != "latest"]
            assert "pre-release" in ours.latest_reason
    assert differing  # the vectors do contain pre-release refs that take latest there


@pytest.mark.parametrize(("tag", "existing", "latest"), [
    ("1.9.1", ["2.0.0", "2.0", "latest"], False),
    ("2.1", ["2.0.0", "1.9"], True),
    ("1.0.post1", [], False),
])
def test_latest_auto_with_pep440_releases(tag: str, existing: list[str], latest: bool) -> None:
    plan = compute(["type=pep440,pattern={{version}}"], [], tag_ctx(tag),
                   existing_tags=existing, now=NOW)
    assert plan.latest is latest, plan.latest_reason
    # metadata-action's rule ignores the registry.
    ma = compute(["type=pep440,pattern={{version}}"], ["latest=metadata-action"], tag_ctx(tag),
                 existing_tags=existing, now=NOW)
    assert ma.latest is (".post" not in tag)


def test_labels_and_annotations_as_metadata_action_sets_them() -> None:
    ctx = tag_ctx("v1.0.0", repo_url="https://github.com/o/App", repo_name="App")
    plan = compute(["type=ref,event=tag"], [], ctx, now=NOW,
                   labels=["maintainer=Me", L + "title=T-{{tag}}", "novalue", "empty="],
                   annotations=[L + "description=d=e"])
    assert list(plan.labels) == ["empty", "maintainer", L + "created", L + "description",
                                 L + "licenses", L + "revision", L + "source", L + "title",
                                 L + "url", L + "version"]
    assert plan.labels[L + "title"] == "T-v1.0.0"      # expressions; given lines win
    assert plan.labels[L + "description"] == ""         # empty values are kept
    assert plan.labels["empty"] == ""
    assert "novalue" not in plan.labels and any("novalue" in w for w in plan.warnings)
    assert plan.annotations[L + "description"] == "d=e"
    assert plan.annotations[L + "title"] == "App" and "maintainer" not in plan.annotations


def test_image_names_are_lower_cased() -> None:
    refs = parse_image_names(["ghcr.io/MyUser/MyApp", "name=Other/App,enable=false"])
    assert [str(r) for r in refs] == ["ghcr.io/myuser/myapp"]
