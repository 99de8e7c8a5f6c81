"""Tags, labels and annotations in docker/metadata-action's grammar.

``specs`` reads tag specs, flavor and image lines; ``template`` evaluates ``{{...}}``
expressions; ``versions`` reads semantic and PEP 440 versions; ``gitinfo`` finds the git
state (CI variables or the working tree, which ``worktree`` asks git about); ``compute``
turns them into a :class:`TagPlan`, with ``latest`` deciding whether ``latest`` moves
and ``labels`` the OCI labels.
"""

from polyarch.epoch import build_time
from polyarch.tags.compute import TagPlan, compute, sanitize_tag
from polyarch.tags.gitinfo import GitContext
from polyarch.tags.labels import META_KEYS
from polyarch.tags.specs import (
    Flavor,
    Image,
    TagSpec,
    parse_flavor,
    parse_image_names,
    parse_images,
    parse_spec,
    parse_specs,
)

__all__ = [
    "META_KEYS", "Flavor", "GitContext", "Image", "TagPlan", "TagSpec", "build_time", "compute",
    "parse_flavor", "parse_image_names", "parse_images", "parse_spec", "parse_specs",
    "sanitize_tag",
]
