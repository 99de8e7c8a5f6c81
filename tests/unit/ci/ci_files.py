"""The CI files polyarch ships (the composite GitHub Action, the GitLab template and the
workflow examples in docs/ci/), found and read the way their CI systems read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
ACTION = ROOT / "action.yml"
GITLAB_TEMPLATE = ROOT / "templates" / "gitlab-ci.yml"
DOCS_CI = ROOT / "docs" / "ci.md"


def workflow_examples() -> list[Path]:
    """docs/ci/*.yml but the GitLab ones: GitHub workflows."""
    return sorted(p for p in (ROOT / "docs" / "ci").glob("*.yml") if not p.name.startswith("gitlab"))


def gitlab_files() -> list[Path]:
    """The GitLab template and docs/ci/gitlab*.yml."""
    return [GITLAB_TEMPLATE, *sorted((ROOT / "docs" / "ci").glob("gitlab*.yml"))]


class GitLabLoader(yaml.SafeLoader):
    """YAML as GitLab writes it: ``!reference [.job, key]`` (a custom tag) loads as the
    list of its names, as check-jsonschema's ``gitlab-ci`` data transform loads it."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!reference takes a list ([.job, key, ...])", node.start_mark)
    return [item.value for item in node.value]


GitLabLoader.add_constructor("!reference", _reference)


def load_gitlab(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(), Loader=GitLabLoader)  # a SafeLoader
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def load_action() -> dict[str, Any]:
    doc = yaml.safe_load(ACTION.read_text())
    assert isinstance(doc, dict)
    return doc
