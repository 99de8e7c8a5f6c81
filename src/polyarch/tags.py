"""Tag and label rules from git state, in docker/metadata-action's syntax.

A tag spec is one CSV line of ``key=value`` attributes, for example
``type=semver,pattern={{major}}.{{minor}}`` or ``type=ref,event=branch``; a flavor line
sets global behaviour (``latest=auto``, ``prefix=``, ``suffix=``). :func:`compute` turns
specs, flavor and a :class:`~polyarch.gitinfo.GitContext` into a :class:`TagPlan`:
the tags (highest priority first, ``latest`` last), the version, and the OCI labels and
index annotations. It is pure: it reads no environment, runs nothing and only uses the
clock when ``now`` is not given.

The results follow metadata-action for the same ref, with one deliberate change to
``latest=auto``: a pre-release never takes ``latest``, and when the tags already in the
registry are known (``existing_tags``), ``latest`` moves only for a stable version not
lower than every stable version tag there. See ``docs/tags.md``.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from polyarch.errors import UsageError
from polyarch.gitinfo import GitContext, Semver, parse_semver
from polyarch.refs import ImageRef, ReferenceError, check_tag

TYPES = ("schedule", "semver", "match", "edge", "ref", "raw", "sha")

DEFAULT_PRIORITIES: dict[str, int] = {
    "schedule": 1000,
    "semver": 900,
    "pep440": 900,
    "match": 800,
    "edge": 700,
    "ref": 600,
    "raw": 200,
    "sha": 100,
}

DEFAULT_SPECS = (
    "type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr",
)

_COMMON = ("type", "enable", "priority", "prefix", "suffix")
_ATTRS: dict[str, tuple[str, ...]] = {
    "schedule": ("pattern",),
    "semver": ("pattern", "value"),
    "match": ("pattern", "group", "value"),
    "edge": ("branch",),
    "ref": ("event",),
    "raw": ("value",),
    "sha": ("format",),
}

#: Keys of ``meta`` accepted by :func:`compute`, each becoming ``org.opencontainers.image.<key>``.
META_KEYS = ("title", "description", "licenses", "url", "source", "vendor", "authors",
             "documentation")

MAX_TAG = 128

LatestMode = Literal["auto", "true", "false"]


# -- specs --------------------------------------------------------------------------

@dataclass(frozen=True)
class TagSpec:
    """One parsed tag spec. ``attrs`` holds every attribute given or defaulted."""

    type: str
    attrs: Mapping[str, str]
    text: str

    @property
    def priority(self) -> int:
        return int(self.attrs["priority"])

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Flavor:
    latest: LatestMode = "auto"
    prefix: str = ""
    prefix_latest: bool = False
    suffix: str = ""
    suffix_latest: bool = False


def _fields(text: str) -> list[str]:
    try:
        rows = [r for r in csv.reader([text], skipinitialspace=True) if r]
    except csv.Error as e:
        raise UsageError(f"cannot read {text!r}: {e}", hint="quote values that hold commas") from e
    return [f for f in (rows[0] if rows else []) if f.strip()]


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def parse_spec(text: str) -> TagSpec:
    """Parse one tag spec line; raise :class:`UsageError` naming the spec and the fix."""
    src = text.strip()
    attrs: dict[str, str] = {}
    typ: str | None = None
    for f in _fields(src):
        key, sep, value = f.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            attrs["value"] = f.strip()
            continue
        if key == "type":
            if value == "pep440":
                raise UsageError(f"tag spec {src!r}: type=pep440 is not supported",
                                 hint="use type=semver or type=match")
            if value not in TYPES:
                hint = _did_you_mean(value, TYPES) or "types: " + ", ".join(TYPES)
                raise UsageError(f"tag spec {src!r}: unknown type {value!r}", hint=hint)
            typ = value
        elif key in attrs:
            raise UsageError(f"tag spec {src!r}: {key}= given twice", hint="keep one")
        else:
            attrs[key] = value
    if not src or (typ is None and not attrs):
        raise UsageError("empty tag spec", hint="for example type=ref,event=branch")
    typ = typ or "raw"
    allowed = _COMMON + _ATTRS[typ]
    for key in attrs:
        if key not in allowed:
            hint = _did_you_mean(key, allowed) or f"type={typ} takes " + ", ".join(
                a + "=" for a in allowed[1:])
            raise UsageError(f"tag spec {src!r}: unknown attribute {key!r}", hint=hint)

    def need(attr: str, example: str) -> None:
        if not attrs.get(attr):
            raise UsageError(f"tag spec {src!r}: type={typ} needs {attr}=", hint=f"e.g. {example}")

    if typ == "schedule":
        attrs.setdefault("pattern", "nightly")
    elif typ == "semver":
        need("pattern", "type=semver,pattern={{version}}")
        attrs.setdefault("value", "")
    elif typ == "match":
        need("pattern", r"type=match,pattern=v(\d+\.\d+),group=1")
        attrs.setdefault("group", "0")
        if not attrs["group"].isdigit():
            raise UsageError(f"tag spec {src!r}: group={attrs['group']!r} is not a group number",
                             hint="group=0 is the whole match, group=1 the first (...)")
        attrs.setdefault("value", "")
        _regex(attrs["pattern"], f"tag spec {src!r}")
    elif typ == "edge":
        attrs.setdefault("branch", "")
    elif typ == "ref":
        events = ("branch", "tag", "pr")
        if attrs.get("event") not in events:
            raise UsageError(f"tag spec {src!r}: type=ref needs event=branch|tag|pr",
                             hint=_did_you_mean(attrs.get("event", ""), events) or None)
        if attrs["event"] == "pr":
            attrs.setdefault("prefix", "pr-")
    elif typ == "raw":
        if "value" not in attrs:
            raise UsageError(f"tag spec {src!r}: type=raw needs value=",
                             hint="e.g. type=raw,value=stable")
    elif typ == "sha":
        attrs.setdefault("prefix", "sha-")
        attrs.setdefault("format", "short")
        if attrs["format"] not in ("short", "long"):
            raise UsageError(f"tag spec {src!r}: format={attrs['format']!r}",
                             hint="format=short (default) or format=long")
    attrs.setdefault("enable", "true")
    prio = attrs.setdefault("priority", str(DEFAULT_PRIORITIES[typ]))
    if not re.fullmatch(r"-?\d+", prio):
        raise UsageError(f"tag spec {src!r}: priority={prio!r} is not a whole number",
                         hint=f"the default for type={typ} is {DEFAULT_PRIORITIES[typ]}")
    return TagSpec(typ, dict(attrs), src)


def parse_specs(lines: Sequence[str]) -> list[TagSpec]:
    """Parse spec lines (blank lines and ``#`` comments skipped; none at all means the
    defaults), ordered by priority, highest first; equal priorities keep their order."""
    texts = [t for t in (x.strip() for x in lines) if t and not t.startswith("#")]
    specs = [parse_spec(t) for t in (texts or DEFAULT_SPECS)]
    return sorted(specs, key=lambda s: -s.priority)


def parse_flavor(lines: Sequence[str]) -> Flavor:
    latest: LatestMode = "auto"
    prefix = suffix = ""
    prefix_latest = suffix_latest = False
    for line in lines:
        src = line.strip()
        if not src or src.startswith("#"):
            continue
        last = ""
        for f in _fields(src):
            key, sep, value = f.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep:
                raise UsageError(f"flavor {src!r}: {f.strip()!r} is not key=value",
                                 hint="e.g. latest=auto, prefix=v, suffix=-alpine")
            if key == "latest":
                if value not in ("auto", "true", "false"):
                    raise UsageError(f"flavor {src!r}: latest={value!r}",
                                     hint="latest=auto, latest=true or latest=false")
                latest = value  # type: ignore[assignment]
            elif key == "prefix":
                prefix, last = value, "prefix"
            elif key == "suffix":
                suffix, last = value, "suffix"
            elif key == "onlatest":
                if value not in ("true", "false"):
                    raise UsageError(f"flavor {src!r}: onlatest={value!r}",
                                     hint="onlatest=true or onlatest=false")
                if last == "prefix":
                    prefix_latest = value == "true"
                elif last == "suffix":
                    suffix_latest = value == "true"
                else:
                    raise UsageError(f"flavor {src!r}: onlatest= must follow prefix= or suffix=",
                                     hint="e.g. suffix=-alpine,onlatest=true")
            else:
                hint = _did_you_mean(key, ("latest", "prefix", "suffix", "onlatest"))
                raise UsageError(f"flavor {src!r}: unknown entry {key!r}",
                                 hint=hint or "flavor takes latest=, prefix=, suffix=, onlatest=")
    return Flavor(latest, prefix, prefix_latest, suffix, suffix_latest)


# -- expressions ---------------------------------------------------------------------

_EXPR = re.compile(r"\{\{(.*?)\}\}")
_ARG = re.compile(r"""\s*(?:(\w+)=)?(?:'([^']*)'|"([^"]*)"|(\S+))""")

Helper = Callable[[list[str], dict[str, str]], str]


def _expand(template: str, helpers: Mapping[str, Helper], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        body = m.group(1).strip()
        name, _, rest = body.partition(" ")
        if name not in helpers:
            hint = _did_you_mean(name, helpers) or "known: " + ", ".join(
                "{{" + h + "}}" for h in helpers)
            if m.start() > 0 and template[m.start() - 1] == "$":
                hint = "${{ }} is a GitHub Actions expression; polyarch does not evaluate it"
            raise UsageError(f"{where}: unknown expression {{{{{body}}}}}", hint=hint)
        args: list[str] = []
        kw: dict[str, str] = {}
        pos = 0
        rest = rest.strip()
        while pos < len(rest):
            a = _ARG.match(rest, pos)
            if not a or a.end() == pos:
                raise UsageError(f"{where}: cannot read {{{{{body}}}}}")
            val = next(g for g in (a.group(2), a.group(3), a.group(4)) if g is not None)
            if a.group(1):
                kw[a.group(1)] = val
            else:
                args.append(val)
            pos = a.end()
        try:
            return helpers[name](args, kw)
        except (ValueError, KeyError) as e:
            raise UsageError(f"{where}: {{{{{body}}}}}: {e}") from e

    return _EXPR.sub(sub, template)


_MOMENT = re.compile(
    r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|Do|DDDD|DD|D|dddd|ddd|HH|H|hh|h|mm|m|ss|s|SSS|SS|S|A|a|ZZ|Z|X|x"
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def format_date(t: datetime, fmt: str) -> str:
    """Render ``t`` with a moment.js format string (the common tokens)."""

    def tok(m: re.Match[str]) -> str:
        s = m.group(0)
        h12 = t.hour % 12 or 12
        off = t.strftime("%z") or "+0000"
        table: dict[str, str] = {
            "YYYY": f"{t.year:04d}", "YY": f"{t.year % 100:02d}",
            "MMMM": _MONTHS[t.month - 1], "MMM": _MONTHS[t.month - 1][:3],
            "MM": f"{t.month:02d}", "M": str(t.month),
            "Do": _ordinal(t.day), "DDDD": f"{t.timetuple().tm_yday:03d}",
            "DD": f"{t.day:02d}", "D": str(t.day),
            "dddd": _DAYS[t.weekday()], "ddd": _DAYS[t.weekday()][:3],
            "HH": f"{t.hour:02d}", "H": str(t.hour), "hh": f"{h12:02d}", "h": str(h12),
            "mm": f"{t.minute:02d}", "m": str(t.minute),
            "ss": f"{t.second:02d}", "s": str(t.second),
            "SSS": f"{t.microsecond // 1000:03d}", "SS": f"{t.microsecond // 10000:02d}",
            "S": str(t.microsecond // 100000),
            "A": "AM" if t.hour < 12 else "PM", "a": "am" if t.hour < 12 else "pm",
            "ZZ": off, "Z": f"{off[:3]}:{off[3:]}",
            "X": str(int(t.timestamp())), "x": str(int(t.timestamp() * 1000)),
        }
        return s[1:-1] if s.startswith("[") else table[s]

    return _MOMENT.sub(tok, fmt)


def _date_helper(when: datetime) -> Helper:
    def helper(args: list[str], kw: dict[str, str]) -> str:
        if len(args) != 1:
            raise ValueError("give one format, e.g. {{date 'YYYYMMDD'}}")
        for k in kw:
            if k != "tz":
                raise ValueError(f"unknown attribute {k}=")
        tz = kw.get("tz", "UTC")
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {tz!r}") from e
        return format_date(when.astimezone(zone), args[0])

    return helper


def _const(value: str) -> Helper:
    def helper(args: list[str], kw: dict[str, str]) -> str:
        if args or kw:
            raise ValueError("takes no arguments")
        return value

    return helper


# -- tags ------------------------------------------------------------------------------

_INVALID = re.compile(r"[^a-zA-Z0-9._-]+")


def sanitize_tag(value: str) -> str:
    """Make ``value`` a valid tag: runs of invalid characters become ``-`` (as
    metadata-action does), a leading ``.``/``-`` is dropped, and a tag longer than 128
    characters is cut to 119 plus ``-`` and 8 hex digits of its hash (so two long
    branch names stay distinct)."""
    tag = _INVALID.sub("-", value).lstrip(".-")
    if len(tag) > MAX_TAG:
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
    release: Semver | None = None
    release_known: bool = False


def compute(
    specs: Sequence[str],
    flavor: Sequence[str],
    ctx: GitContext,
    *,
    existing_tags: Iterable[str] | None = None,
    meta: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> TagPlan:
    """Compute tags, version, labels and annotations.

    ``existing_tags``: the tags already in the target repository (``None`` when unknown).
    ``meta``: values for the OCI labels ``title``, ``description``, ``licenses``, ``url``,
    ``source``, ``vendor``, ``authors``, ``documentation`` (defaults come from ``ctx``).
    ``now``: the build time (``created`` label, ``{{date}}``); defaults to the clock.
    """
    tag_specs = parse_specs(specs)
    fl = parse_flavor(flavor)
    when = (now or datetime.now(UTC)).astimezone(UTC)
    committed = ctx.commit_time or when
    warnings: list[str] = []

    glob: dict[str, Helper] = {
        "branch": _const(ctx.branch),
        "tag": _const(ctx.tag),
        "sha": _const(ctx.short_sha),
        "base_ref": _const((ctx.base_ref or "") if ctx.event in ("pr", "tag") else ""),
        "is_default_branch": _const("true" if ctx.is_default_branch else "false"),
        "date": _date_helper(when),
        "commit_date": _date_helper(committed),
    }

    def g(text: str, where: str) -> str:
        return _expand(text, glob, where)

    def with_affixes(val: str, spec: TagSpec) -> str:
        if "prefix" in spec.attrs:
            val = g(spec.attrs["prefix"], f"tag spec {spec.text!r}") + val
        elif fl.prefix:
            val = g(fl.prefix, "flavor prefix") + val
        if "suffix" in spec.attrs:
            val = val + g(spec.attrs["suffix"], f"tag spec {spec.text!r}")
        elif fl.suffix:
            val = val + g(fl.suffix, "flavor suffix")
        return val

    st = _State()

    def add(val: str, auto_latest: bool, spec: TagSpec) -> None:
        if not val:
            return
        tag = sanitize_tag(val)
        if not tag:
            warnings.append(f"tag spec {spec.text!r} gave {val!r}: no valid tag characters")
            return
        try:
            check_tag(tag)
        except ReferenceError as e:
            raise UsageError(f"tag spec {spec.text!r}: {e}") from e
        if st.main is None:
            st.main = tag
        elif tag != st.main and tag not in st.partial:
            st.partial.append(tag)
        if st.latest is None:
            st.latest = auto_latest if fl.latest == "auto" else fl.latest == "true"

    def release(v: Semver | None) -> None:
        if not st.release_known:
            st.release, st.release_known = v, True

    tag_name_dashed = ctx.tag.replace("/", "-")
    for spec in tag_specs:
        a = spec.attrs
        where = f"tag spec {spec.text!r}"
        enabled = g(a["enable"], where)
        if enabled not in ("true", "false"):
            raise UsageError(f"{where}: enable= gave {enabled!r}",
                             hint="it must give true or false")
        if enabled == "false":
            continue
        if spec.type == "schedule":
            if ctx.scheduled:
                date_helpers = {"date": glob["date"], "commit_date": glob["commit_date"]}
                add(with_affixes(_expand(a["pattern"], date_helpers, where), spec), False, spec)
        elif spec.type == "semver":
            if ctx.event != "tag" and not a["value"]:
                continue
            vraw = g(a["value"], where) if a["value"] else tag_name_dashed
            sv = parse_semver(vraw)
            if sv is None:
                warnings.append(f"{vraw!r} is not a semantic version ({where} skipped)")
                continue
            if sv.is_prerelease:
                out = sv.raw if _is_raw(a["pattern"]) else sv.version
            else:
                out = _expand(a["pattern"], _semver_helpers(sv), where)
            add(with_affixes(out, spec), not sv.is_prerelease, spec)
            release(sv)
        elif spec.type == "match":
            if ctx.event != "tag" and not a["value"]:
                continue
            vraw = g(a["value"], where) if a["value"] else ctx.tag
            got = _match(a["pattern"], int(a["group"]), vraw, where, warnings)
            if got is None:
                continue
            add(with_affixes(got, spec), True, spec)
            if got:
                release(parse_semver(got))
        elif spec.type == "ref":
            ev = a["event"]
            if ev == "branch" and ctx.event == "branch":
                add(with_affixes(ctx.ref_name, spec), False, spec)
            elif ev == "tag" and ctx.event == "tag":
                add(with_affixes(ctx.ref_name, spec), True, spec)
                release(parse_semver(tag_name_dashed))
            elif ev == "pr" and ctx.event == "pr":
                add(with_affixes(ctx.pr_number or ctx.ref_name, spec), False, spec)
        elif spec.type == "edge":
            if ctx.event != "branch":
                continue
            branch = a["branch"] or ctx.default_branch
            if not branch:
                warnings.append(f"{where}: the default branch is unknown; give branch=NAME"
                                " or set POLYARCH_DEFAULT_BRANCH")
                continue
            if branch == ctx.ref_name:
                add(with_affixes("edge", spec), False, spec)
        elif spec.type == "raw":
            add(with_affixes(g(a["value"], where), spec), False, spec)
        elif spec.type == "sha":
            if not ctx.sha:
                continue
            sha = ctx.sha if a["format"] == "long" else ctx.short_sha
            add(with_affixes(sha, spec), False, spec)

    latest, reason = _decide_latest(st, fl, existing_tags)
    tags: list[str] = []
    if st.main is not None:
        tags = [st.main, *st.partial]
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
        latest = False
        reason = "no tags"
    if ctx.dirty and st.main is not None:
        warnings.append("the working tree has uncommitted changes; the tags name commit "
                        f"{ctx.short_sha or '(none)'}")
    version = st.main or ""
    labels = _labels(ctx, version, when, meta or {})
    return TagPlan(tags=tags, version=version, labels=labels, annotations=dict(labels),
                   latest=latest, latest_reason=reason, warnings=warnings + list(ctx.notes))


def _is_raw(pattern: str) -> bool:
    return re.fullmatch(r"\{\{\s*raw\s*\}\}", pattern) is not None


def _semver_helpers(v: Semver) -> dict[str, Helper]:
    return {
        "raw": _const(v.raw),
        "version": _const(v.version),
        "major": _const(str(v.major)),
        "minor": _const(str(v.minor)),
        "patch": _const(str(v.patch)),
    }


def _regex(pattern: str, where: str) -> re.Pattern[str]:
    """``/re/flags`` (flags i, m, s honoured; g, u, y ignored) or a bare expression."""
    flags = 0
    m = re.fullmatch(r"/(.+)/([a-z]*)", pattern)
    if m:
        pattern = m.group(1)
        for c in m.group(2):
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(c, 0)
    try:
        with warnings.catch_warnings():  # "possible nested set": JavaScript's meaning holds
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(pattern, flags)
    except re.error as e:
        raise UsageError(f"{where}: bad regular expression: {e}") from e
    except RecursionError:
        raise UsageError(f"{where}: bad regular expression: nested too deeply") from None


def _match(pattern: str, group: int, value: str, where: str, warnings: list[str]) -> str | None:
    rx = _regex(pattern, where)
    found = rx.search(value)
    if not found:
        warnings.append(f"{where}: pattern does not match {value!r}")
        return None
    if group > rx.groups or found.group(group) is None:
        warnings.append(f"{where}: group {group} did not match in {value!r}")
        return None
    return found.group(group)


def _stable_versions(existing: Iterable[str], fl: Flavor) -> list[Semver]:
    out: list[Semver] = []
    for t in existing:
        if fl.prefix:
            if not t.startswith(fl.prefix):
                continue
            t = t[len(fl.prefix):]
        if fl.suffix:
            if not t.endswith(fl.suffix):
                continue
            t = t[: -len(fl.suffix)]
        v = parse_semver(t)
        if v is not None and not v.is_prerelease:
            out.append(v)
    return out


def _decide_latest(st: _State, fl: Flavor, existing_tags: Iterable[str] | None) -> tuple[bool, str]:
    if fl.latest == "false":
        return False, "flavor latest=false"
    if fl.latest == "true":
        return True, "flavor latest=true"
    if not st.latest:
        return False, "the highest-priority tag does not take latest"
    rel = st.release
    if rel is not None and rel.is_prerelease:
        return False, f"{rel.raw} is a pre-release"
    if existing_tags is None:
        return True, "release tag (existing tags unknown)"
    if rel is None:
        return False, "not a semantic version, and existing tags are known"
    higher = [v for v in _stable_versions(existing_tags, fl) if v.key() > rel.key()]
    if higher:
        top = max(higher, key=Semver.key)
        return False, f"{rel.version} is lower than {top.raw}, already published"
    return True, f"{rel.version} is the highest stable version"


_LABEL = "org.opencontainers.image."


def _labels(
    ctx: GitContext, version: str, when: datetime, meta: Mapping[str, str]
) -> dict[str, str]:
    for k in meta:
        if k not in META_KEYS:
            hint = _did_you_mean(k, META_KEYS) or "known: " + ", ".join(META_KEYS)
            raise UsageError(f"unknown image metadata key {k!r}", hint=hint)
    values = {
        "created": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "revision": ctx.sha,
        "source": ctx.repo_url or "",
        "title": ctx.repo_name or "",
        "url": ctx.repo_url or "",
        "version": version,
    }
    values.update({k: v for k, v in meta.items() if v})
    return {_LABEL + k: v for k, v in sorted(values.items()) if v}


def parse_image_names(names: Sequence[str]) -> list[ImageRef]:
    """Image names (no tag, no digest) that computed tags are added to."""
    from polyarch.refs import ReferenceError, parse_ref

    out: list[ImageRef] = []
    for name in names:
        try:
            ref = parse_ref(name, default_tag=None)
        except ReferenceError as e:
            raise UsageError(f"image {name!r}: {e}") from None
        if ref.tag or ref.digest:
            raise UsageError(f"image {name!r} carries a tag or digest",
                             hint="give the name only; the tags come from the tag specs")
        out.append(ref)
    return out
