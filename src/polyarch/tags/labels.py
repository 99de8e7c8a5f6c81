"""The ``org.opencontainers.image.*`` labels and annotations metadata-action sets, plus
extra ``key=value`` lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from polyarch.errors import UsageError
from polyarch.tags.gitinfo import GitContext
from polyarch.tags.specs import did_you_mean
from polyarch.tags.template import Helper, expand

#: Keys of ``meta`` accepted by :func:`~polyarch.tags.compute`, each becoming
#: ``org.opencontainers.image.<key>``.
META_KEYS = ("title", "description", "licenses", "url", "source", "vendor", "authors",
             "documentation")

LABEL_PREFIX = "org.opencontainers.image."


def base_labels(ctx: GitContext, version: str, when: datetime,
                 meta: Mapping[str, str]) -> dict[str, str]:
    for k in meta:
        if k not in META_KEYS:
            hint = did_you_mean(k, META_KEYS) or "known: " + ", ".join(META_KEYS)
            raise UsageError(f"unknown image metadata key {k!r}", hint=hint)
    url = meta.get("url") or ctx.repo_url or ""
    values = {
        "title": meta.get("title") or ctx.repo_name or "",
        "description": meta.get("description", ""),
        "url": url,
        "source": meta.get("source") or ctx.repo_url or url,
        "version": version,
        "created": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "revision": ctx.sha,
        "licenses": meta.get("licenses", ""),
    }
    for k in ("vendor", "authors", "documentation"):
        if meta.get(k):
            values[k] = meta[k]
    return {LABEL_PREFIX + k: v for k, v in values.items()}


def with_custom(base: Mapping[str, str], lines: Sequence[str], glob: Mapping[str, Helper],
                 what: str, warnings: list[str]) -> dict[str, str]:
    """``base`` plus ``key=value`` lines (later ones win), sorted by key as
    metadata-action sorts them."""
    out = dict(base)
    for line in lines:
        src = line.strip()
        if not src or src.startswith("#"):
            continue
        text = expand(src, glob, f"{what} {src!r}")
        key, sep, value = text.partition("=")
        if not sep:
            warnings.append(f"{what} {src!r} has no '=' and is ignored")
            continue
        out[key] = value
    return dict(sorted(out.items(), key=lambda kv: (kv[0].casefold(), kv[0])))
