"""docker/metadata-action's own cases (tests/data/metadata-action/meta.json): the same
inputs give the same version, tags, labels and annotations."""

from __future__ import annotations

from typing import Any

import pytest

from .vectors import META, image_tags, pairs, run

CASES = [c for c in META["cases"]]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['group']}-{c['name']}" for c in CASES])
def test_metadata_action_case_gives_its_tags_and_labels(case: dict[str, Any]) -> None:
    plan = run(case)
    want = case["expected"]
    assert image_tags(case, plan) == want["tags"]
    if case["group"] == "json":
        assert plan.labels == want["labels"]
        assert pairs(plan.annotations) == want["annotations"]
        assert [t for t in plan.tags] == want["tag_names"]
        return
    version = want["version"]
    assert plan.version == (version["main"] or "")
    assert plan.latest is version["latest"]
    assert [t for t in plan.tags[1:] if not (plan.latest and t == plan.tags[-1])] == \
        version["partial"]
    assert pairs(plan.labels) == want["labels"]
    assert pairs(plan.annotations) == want["annotations"]
