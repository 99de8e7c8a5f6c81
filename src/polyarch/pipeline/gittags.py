"""Tags, labels and index annotations from git state (docker/metadata-action rules)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from polyarch.config import Options
from polyarch.errors import RegistryError
from polyarch.session import Session


def apply_git_tags(s: Session, *, lookup_existing: bool = True,
                   cwd: Path | None = None) -> tuple[Options, dict[str, str]]:
    """Add the tags and OCI labels computed from git state for ``opts.images``.

    Returns the new options and the index annotations. With ``latest=auto`` the tags
    already in the registry are read, so that ``latest`` only moves forward.
    """
    opts, rep = s.opts, s.rep
    if not opts.images:
        return opts, {}
    from polyarch.tags import GitContext, build_time, compute, parse_image_names

    names = parse_image_names(opts.images)
    if not names:  # every image line says enable=false
        return opts, {}
    env = dict(os.environ)
    ctx = GitContext.detect(cwd or Path.cwd(), env)
    existing: list[str] | None = None
    if lookup_existing:
        try:
            existing = s.client.list_tags(names[0])
        except RegistryError as e:
            rep.warn(f"cannot list the tags of {names[0]} ({e.message}); 'latest' follows"
                     " metadata-action's rule")
    now = build_time(env)
    plan = compute(opts.tag_specs, opts.flavor, ctx, existing_tags=existing, meta=opts.meta,
                   now=now)
    for w in plan.warnings:
        rep.warn(w)
    if not plan.tags:
        rep.warn(f"the tag rules give no tag for this git state ({ctx.event} {ctx.ref_name})")
    tags = list(opts.tags)
    for n in names:
        tags.extend(n.with_tag(t) for t in plan.tags if n.with_tag(t) not in tags)
    labels = {**plan.labels, **opts.labels}  # labels given by hand win
    return replace(opts, tags=tuple(tags), labels=labels), dict(plan.annotations)
