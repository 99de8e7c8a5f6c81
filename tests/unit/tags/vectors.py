"""Running docker/metadata-action's own test cases (tests/data/metadata-action) through
polyarch: the inputs as metadata-action's tests give them, the outputs it expects."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from polyarch.tags import TagPlan, compute, parse_images
from polyarch.tags.gitinfo import GitContext, github_context

DATA = Path(__file__).parent.parent.parent / "data" / "metadata-action"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


META = load("meta.json")
CLOCK = datetime.fromisoformat(META["clock"].replace("Z", "+00:00"))
REPO = META["repo"]


def context(case: dict[str, Any]) -> GitContext:
    """The git state the case runs under. metadata-action's tests pin every clock reading
    (build time and commit time) to the same instant, and read the default branch for
    ``type=edge`` from the repository (here: the payload's, else the repository facts)."""
    fixture = META["fixtures"][case["fixture"]]
    env = {**fixture["env"], **case.get("env", {})}
    ctx = github_context(env, fixture["payload"])
    return replace(ctx, commit_time=CLOCK,
                   default_branch=ctx.default_branch or REPO["default_branch"])


def metadata_action_flavor(flavor: list[str]) -> list[str]:
    """The case's flavor with metadata-action's own ``latest`` rule (its ``auto``)."""
    return ["latest=metadata-action",
            *(f.replace("latest=auto", "latest=metadata-action") for f in flavor)]


def run(case: dict[str, Any], *, flavor: list[str] | None = None) -> TagPlan:
    inputs = case["inputs"]
    meta = {"title": REPO["name"], "description": REPO["description"],
            "licenses": REPO["license"], "url": REPO["html_url"], "source": REPO["html_url"]}
    return compute(inputs.get("tags", []),
                   metadata_action_flavor(inputs.get("flavor", [])) if flavor is None else flavor,
                   context(case), meta=meta, labels=inputs.get("labels", []),
                   annotations=inputs.get("annotations", []), now=CLOCK)


def image_tags(case: dict[str, Any], plan: TagPlan) -> list[str]:
    names = [i.name for i in parse_images(case["inputs"].get("images", [])) if i.enable]
    return [r for n in names for r in plan.refs(n)] if names else list(plan.tags)


def pairs(d: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in d.items()]
