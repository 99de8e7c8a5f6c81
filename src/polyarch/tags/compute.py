"""Tags, version, labels and annotations from tag specs, flavor and git state.

:func:`compute` follows docker/metadata-action for the same inputs: specs are processed
highest priority first, the first tag produced is the version, and the
``org.opencontainers.image.*`` labels and annotations are the ones it sets. It is pure:
it reads no environment, runs nothing and only uses the clock when ``now`` is not given.

The one deliberate difference is ``latest=auto``: a pre-release never takes ``latest``,
and when the tags already in the registry are known (``existing_tags``), ``latest`` moves
only for a version not lower than every release already there. ``latest=metadata-action``
is metadata-action's rule alone. See ``docs/tags.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from polyarch.errors import UsageError
from polyarch.refs import ReferenceError, check_tag
from polyarch.tags.gitinfo import GitContext
from polyarch.tags.labels import base_labels, with_custom
from polyarch.tags.latest import decide_latest
from polyarch.tags.specs import (
    Flavor,
    TagSpec,
    compile_regex,
    parse_flavor,
    parse_specs,
)
from polyarch.tags.template import Helper, const, date_helper, expand
from polyarch.tags.versions import Semver, parse_pep440, parse_semver, pep440_part

if TYPE_CHECKING:
    from packaging.version import Version

MAX_TAG = 128


_INVALID = re.compile(r"[^a-zA-Z0-9._-]+")


def sanitize_tag(value: str) -> str:
    """Make ``value`` a valid tag: runs of invalid characters become ``-`` (as
    metadata-action does); and where that is still no valid tag, a leading ``.``/``-`` is
    dropped and a tag longer than 128 characters is cut to 119 plus ``-`` and 8 hex
    digits of its hash (so two long branch names stay distinct)."""
    tag = _INVALID.sub("-", value).lstrip(".-")
    if len(tag) > MAX_TAG:
        import hashlib

        digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
        tag = tag[: MAX_TAG - 9].rstrip(".-") + "-" + digest
    return tag


@dataclass
class TagPlan:
    #: Bare tags, highest priority first, ``latest`` (with its flavor) last.
    tags: list[str]
    #: The first tag (``org.opencontainers.image.version``); ``""`` when there are none.
    version: str
    labels: dict[str, str]
    annotations: dict[str, str]
    latest: bool = False
    #: Why ``latest`` was or was not added (one line).
    latest_reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def refs(self, image: str) -> list[str]:
        """Full references ``image:tag`` for every tag."""
        return [f"{image}:{t}" for t in self.tags]


@dataclass
class _State:
    main: str | None = None
    partial: list[str] = field(default_factory=list)
    latest: bool | None = None
    release: Semver | Version | None = None
    release_known: bool = False


def global_helpers(ctx: GitContext, when: datetime, committed: datetime) -> dict[str, Helper]:
    """The expressions every value, prefix, suffix, enable and label may use."""
    default = "true" if ctx.is_default_branch else "false"
    return {
        "branch": const(ctx.branch),
        "tag": const(ctx.tag),
        "sha": const(ctx.short_sha),
        "base_ref": const((ctx.base_ref or "") if ctx.event in ("pr", "tag") else ""),
        "is_default_branch": const(default),
        "is_not_default_branch": const("false" if default == "true" else "true"),
        "date": date_helper(when),
        "commit_date": date_helper(committed),
    }


def compute(
    specs: Sequence[str],
    flavor: Sequence[str],
    ctx: GitContext,
    *,
    existing_tags: Iterable[str] | None = None,
    meta: Mapping[str, str] | None = None,
    labels: Sequence[str] = (),
    annotations: Sequence[str] = (),
    now: datetime | None = None,
) -> TagPlan:
    """Compute tags, version, labels and annotations.

    ``existing_tags``: the tags already in the target repository (``None`` when unknown).
    ``meta``: values for the OCI labels ``title``, ``description``, ``licenses``, ``url``,
    ``source``, ``vendor``, ``authors``, ``documentation`` (defaults come from ``ctx``).
    ``labels``/``annotations``: extra ``key=value`` lines (expressions allowed), as
    metadata-action's ``labels``/``annotations`` inputs; they win over computed ones.
    ``now``: the build time (``created`` label, ``{{date}}``); defaults to the clock.
    """
    tag_specs = parse_specs(specs)
    fl = parse_flavor(flavor)
    when = (now or datetime.now(UTC)).astimezone(UTC)
    committed = ctx.commit_time or when
    warnings: list[str] = []
    glob = global_helpers(ctx, when, committed)

    def g(text: str, where: str) -> str:
        return expand(text, glob, where)

    st = _State()
    for spec in tag_specs:
        where = f"tag spec {spec.text!r}"
        enabled = g(spec.attrs["enable"], where)
        if enabled not in ("true", "false"):
            raise UsageError(f"{where}: enable= gave {enabled!r}",
                             hint="it must give true or false")
        if enabled == "true":
            _process(spec, ctx, fl, glob, st, warnings)

    latest, reason = decide_latest(st.latest, st.release, fl, existing_tags)
    tags: list[str] = []
    if st.main is not None:
        tags = [st.main, *dict.fromkeys(st.partial)]
        if latest:
            name = "latest"
            if fl.prefix_latest:
                name = g(fl.prefix, "flavor prefix") + name
            if fl.suffix_latest:
                name = name + g(fl.suffix, "flavor suffix")
            latest_tag = sanitize_tag(name)
            try:
                check_tag(latest_tag)
            except ReferenceError as e:
                raise UsageError(f"flavor: {e}") from e
            if latest_tag not in tags:
                tags.append(latest_tag)
    else:
        latest, reason = False, "no tags"
    if ctx.dirty and st.main is not None:
        warnings.append("the working tree has uncommitted changes; the tags name commit "
                        f"{ctx.short_sha or '(none)'}")
    version = st.main or ""
    base = base_labels(ctx, version, when, meta or {})
    return TagPlan(
        tags=tags, version=version,
        labels=with_custom(base, labels, glob, "label", warnings),
        annotations=with_custom(base, annotations, glob, "annotation", warnings),
        latest=latest, latest_reason=reason, warnings=warnings + list(ctx.notes),
    )


def _process(spec: TagSpec, ctx: GitContext, fl: Flavor, glob: Mapping[str, Helper],
             st: _State, warnings: list[str]) -> None:
    """Add the tag one enabled spec gives for this git state, if any."""
    a = spec.attrs
    where = f"tag spec {spec.text!r}"

    def g(text: str) -> str:
        return expand(text, glob, where)

    def affixed(val: str) -> str:
        if "prefix" in a:
            val = g(a["prefix"]) + val
        elif fl.prefix:
            val = expand(fl.prefix, glob, "flavor prefix") + val
        if "suffix" in a:
            val = val + g(a["suffix"])
        elif fl.suffix:
            val = val + expand(fl.suffix, glob, "flavor suffix")
        return val

    def add(val: str, type_latest: bool) -> None:
        if not val:
            return
        tag = sanitize_tag(val)
        if not tag:
            warnings.append(f"{where} gave {val!r}: no valid tag characters")
            return
        try:
            check_tag(tag)
        except ReferenceError as e:
            raise UsageError(f"{where}: {e}") from e
        if st.main is None:
            st.main = tag
        elif tag != st.main:
            st.partial.append(tag)
        if st.latest is None:
            st.latest = type_latest if fl.latest in ("auto", "metadata-action") \
                else fl.latest == "true"

    def release(v: Semver | Version | None) -> None:
        if not st.release_known:
            st.release, st.release_known = v, True

    t = spec.type
    if t == "schedule":
        if ctx.scheduled:
            dates = {"date": glob["date"], "commit_date": glob["commit_date"]}
            add(affixed(expand(a["pattern"], dates, where)), False)
    elif t in ("semver", "pep440", "match"):
        if ctx.event != "tag" and not a["value"]:
            return
        vraw = g(a["value"]) if a["value"] else ctx.tag
        if t == "match":
            got = _match(a["pattern"], int(a["group"]), vraw, where, warnings)
            if got is not None:
                add(affixed(got), True)
                # The ref's own version decides whether this is a pre-release.
                release(parse_semver(vraw.replace("/", "-")) or parse_semver(got))
            return
        if a["match"]:
            found = compile_regex(a["match"], f"{where}: match=", slashes=False).search(vraw)
            if not found:
                warnings.append(f"{where}: match= does not match {vraw!r}")
            else:
                vraw = found.group(1) if found.re.groups else found.group(0)
        vraw = vraw.replace("/", "-")
        if t == "semver":
            sv = parse_semver(vraw)
            if sv is None:
                warnings.append(f"{vraw!r} is not a semantic version ({where} skipped)")
                return
            if sv.is_prerelease:
                out = sv.raw if _is_raw(a["pattern"]) else sv.version
            else:
                out = expand(a["pattern"], _semver_helpers(sv), where)
            add(affixed(out), not sv.is_prerelease)
            release(sv)
        else:
            pv = parse_pep440(vraw)
            if pv is None:
                warnings.append(f"{vraw!r} is not a PEP 440 version ({where} skipped)")
                return
            unstable = pv.is_prerelease or pv.is_postrelease or pv.is_devrelease
            if unstable:
                out = vraw if _is_raw(a["pattern"]) else str(pv)
            else:
                out = expand(a["pattern"], _pep440_helpers(vraw, pv), where)
            add(affixed(out), not unstable)
            release(pv)
    elif t == "ref":
        ev = a["event"]
        if ev == "branch" and ctx.event == "branch":
            add(affixed(ctx.ref_name), False)
        elif ev == "tag" and ctx.event == "tag":
            add(affixed(ctx.ref_name), True)
            release(parse_semver(ctx.ref_name.replace("/", "-")))
        elif ev == "pr" and ctx.event == "pr":
            add(affixed(ctx.pr_number or ctx.ref_name), False)
    elif t == "edge":
        if ctx.event != "branch":
            return
        branch = a["branch"] or ctx.default_branch
        if not branch:
            warnings.append(f"{where}: the default branch is unknown; give branch=NAME"
                            " or set POLYARCH_DEFAULT_BRANCH")
            return
        if branch == ctx.ref_name:
            add(affixed("edge"), False)
    elif t == "raw":
        add(affixed(g(a["value"])), False)
    elif t == "sha" and ctx.sha:
        add(affixed(ctx.sha if a["format"] == "long" else ctx.short_sha), False)


def _is_raw(pattern: str) -> bool:
    """Whether the pattern is exactly one ``{{raw}}`` expression."""
    return re.fullmatch(r"\{\{\{?\s*raw\s*\}?\}\}", pattern) is not None


def _semver_helpers(v: Semver) -> dict[str, Helper]:
    return {
        "raw": const(v.raw),
        "version": const(v.version),
        "major": const(str(v.major)),
        "minor": const(str(v.minor)),
        "patch": const(str(v.patch)),
    }


def _pep440_helpers(raw: str, v: Version) -> dict[str, Helper]:
    return {
        "raw": const(raw),
        "version": const(str(v)),
        "major": const(pep440_part(v, 0)),
        "minor": const(pep440_part(v, 1)),
        "patch": const(pep440_part(v, 2)),
    }


def _match(pattern: str, group: int, value: str, where: str, warnings: list[str]) -> str | None:
    rx = compile_regex(pattern, where)
    found = rx.search(value)
    if not found:
        warnings.append(f"{where}: pattern does not match {value!r}")
        return None
    if group > rx.groups or found.group(group) is None:
        warnings.append(f"{where}: group {group} did not match in {value!r}")
        return None
    return found.group(group)
