"""polyarch tags: print the tags and labels that git state gives (see docs/tags.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import json_option, load_options, reporter, table_options
from polyarch.errors import UsageError
from polyarch.tags import (
    GitContext,
    TagPlan,
    build_time,
    compute,
    parse_image_names,
    parse_images,
)


def plan_document(plan: TagPlan, ctx: GitContext, images: list[str]) -> dict[str, Any]:
    return {
        "schema": 1,
        "version": plan.version,
        "tags": plan.tags,
        "refs": [r for image in images for r in plan.refs(image)],
        "latest": plan.latest,
        "latest_reason": plan.latest_reason,
        "labels": plan.labels,
        "annotations": plan.annotations,
        "git": {
            "source": ctx.source,
            "event": ctx.event,
            "ref": ctx.ref or None,
            "sha": ctx.sha or None,
            "default_branch": ctx.default_branch,
            "pr_number": ctx.pr_number,
            "base_ref": ctx.base_ref,
            "commit_time": ctx.commit_time.isoformat() if ctx.commit_time else None,
            "dirty": ctx.dirty,
        },
        "warnings": plan.warnings,
    }


@click.command("tags")
@table_options("tags")
@click.option("--git-dir", "git_dir",
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              default=None, metavar="DIR",
              help="Directory whose git state to read.  [default: .]")
# The old spelling: --context names a docker context in the build commands.
@click.option("--context", "old_git_dir", hidden=True,
              type=click.Path(path_type=Path, file_okay=False, exists=True), default=None)
@json_option
def command(git_dir: Path | None, old_git_dir: Path | None, json_mode: bool,
            **kw: Any) -> int:
    """Print the tags and OCI labels computed from git state (working tree or CI variables)."""
    rep = reporter(json_mode)
    if old_git_dir is not None:
        if git_dir is not None:
            raise UsageError("--context is the old spelling of --git-dir: give one of them")
        rep.warn("tags --context DIR is deprecated (--context names a docker context"
                 " elsewhere): use --git-dir DIR")
        git_dir = old_git_dir
    context_dir = git_dir if git_dir is not None else Path(".")
    env = dict(os.environ)
    # What is not given here comes from the config cascade (tag-specs, flavor, images, meta).
    opts = load_options(kw)
    parse_image_names(opts.images)  # validates
    names = [i.name for i in parse_images(opts.images) if i.enable]  # as given, lower-cased
    ctx = GitContext.detect(context_dir, env)
    plan = compute(opts.tag_specs, opts.flavor, ctx, meta=opts.meta, labels=opts.tag_labels,
                   annotations=opts.tag_annotations, now=build_time(env))
    if json_mode:
        for w in plan.warnings:
            rep.warn(w)
        rep.emit_json(plan_document(plan, ctx, names))
        return 0
    for w in plan.warnings:
        rep.warn(w)
    from polyarch.commands import _render

    _render.tag_plan(rep, plan, ctx, names)
    return 0
