"""Tags, labels and annotations in docker/metadata-action's grammar.

``specs`` reads tag specs, flavor and image lines; ``template`` evaluates ``{{...}}``
expressions; ``versions`` reads semantic and PEP 440 versions; ``gitinfo`` finds the git
state (CI variables or the working tree); ``compute`` turns them into a :class:`TagPlan`,
with ``latest`` deciding whether ``latest`` moves and ``labels`` the OCI labels;
``epoch`` reads ``SOURCE_DATE_EPOCH``.

Names are imported on first use: checking ``SOURCE_DATE_EPOCH`` (every command that
builds does) loads :mod:`polyarch.tags.epoch` alone.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyarch.tags.compute import TagPlan, compute, sanitize_tag
    from polyarch.tags.epoch import build_time
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

_WHERE = {
    "META_KEYS": "labels", "Flavor": "specs", "GitContext": "gitinfo", "Image": "specs",
    "TagPlan": "compute", "TagSpec": "specs", "build_time": "epoch", "compute": "compute",
    "parse_flavor": "specs", "parse_image_names": "specs", "parse_images": "specs",
    "parse_spec": "specs", "parse_specs": "specs", "sanitize_tag": "compute",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'polyarch.tags' has no attribute {name!r}")
    value = getattr(import_module(f"polyarch.tags.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "META_KEYS", "Flavor", "GitContext", "Image", "TagPlan", "TagSpec", "build_time", "compute",
    "parse_flavor", "parse_image_names", "parse_images", "parse_spec", "parse_specs",
    "sanitize_tag",
]
