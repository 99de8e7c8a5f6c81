"""The input grammar of docker/metadata-action: tag specs, flavor and image lines.

A tag spec is one CSV line of ``key=value`` attributes (``type=semver,pattern={{version}}``);
a field without ``=`` is the ``value``; no ``type=`` means ``type=raw``. A flavor line
sets ``latest=``, ``prefix=``/``suffix=`` (each optionally followed by ``onlatest=``). An
image line is a name, a comma list of names, or ``name=NAME,enable=true|false``.
Defaults are filled in as metadata-action fills them; anything it would refuse, and
anything it would silently ignore (unknown attributes, a repeated attribute), is a
:class:`~polyarch.errors.UsageError` naming the line and the fix.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from polyarch.errors import UsageError

if TYPE_CHECKING:
    from polyarch.refs import ImageRef

TYPES = ("schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha")

DEFAULT_PRIORITIES: dict[str, int] = {
    "schedule": 1000, "semver": 900, "pep440": 900, "match": 800, "edge": 700, "ref": 600,
    "raw": 200, "sha": 100,
}

DEFAULT_SPECS = (
    "type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr",
)

_COMMON = ("type", "enable", "priority", "prefix", "suffix")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "schedule": ("pattern",),
    "semver": ("pattern", "value", "match"),
    "pep440": ("pattern", "value", "match"),
    "match": ("pattern", "group", "value"),
    "edge": ("branch",),
    "ref": ("event",),
    "raw": ("value",),
    "sha": ("format",),
}

#: ``auto``: metadata-action's rule, and ``latest`` never moves backwards (docs/tags.md);
#: ``metadata-action``: metadata-action's rule alone.
LatestMode = Literal["auto", "metadata-action", "true", "false"]
LATEST_MODES: tuple[LatestMode, ...] = ("auto", "metadata-action", "true", "false")


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


def fields(text: str) -> list[str]:
    """The CSV fields of one line (quotes protect commas: ``"value=a,b"``)."""
    try:
        rows = [r for r in csv.reader([text], skipinitialspace=True) if r]
    except csv.Error as e:
        raise UsageError(f"cannot read {text!r}: {e}", hint="quote values that hold commas") from e
    return [f for f in (rows[0] if rows else []) if f.strip()]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _need(src: str, typ: str, attrs: Mapping[str, str], attr: str, example: str) -> None:
    if attr not in attrs:
        raise UsageError(f"tag spec {src!r}: type={typ} needs {attr}=", hint=f"e.g. {example}")


def parse_spec(text: str) -> TagSpec:
    """Parse one tag spec line; raise :class:`UsageError` naming the spec and the fix."""
    src = text.strip()
    attrs: dict[str, str] = {}
    typ: str | None = None
    for f in fields(src):
        key, sep, value = f.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            attrs["value"] = f.strip()
            continue
        if key == "type":
            if value not in TYPES:
                hint = did_you_mean(value, TYPES) or "types: " + ", ".join(TYPES)
                raise UsageError(f"tag spec {src!r}: unknown type {value!r}", hint=hint)
            typ = value
        elif key in attrs:
            raise UsageError(f"tag spec {src!r}: {key}= given twice", hint="keep one")
        else:
            attrs[key] = value
    if not src or (typ is None and not attrs):
        raise UsageError("empty tag spec", hint="for example type=ref,event=branch")
    typ = typ or "raw"
    allowed = _COMMON + ATTRIBUTES[typ]
    for key in attrs:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"type={typ} takes " + ", ".join(
                a + "=" for a in allowed[1:])
            raise UsageError(f"tag spec {src!r}: unknown attribute {key!r}", hint=hint)

    if typ == "schedule":
        attrs.setdefault("pattern", "nightly")
    elif typ in ("semver", "pep440"):
        _need(src, typ, attrs, "pattern", f"type={typ},pattern={{{{version}}}}")
        attrs.setdefault("value", "")
        attrs.setdefault("match", "")
        if attrs["match"]:
            compile_regex(attrs["match"], f"tag spec {src!r}: match=", slashes=False)
    elif typ == "match":
        _need(src, typ, attrs, "pattern", r"type=match,pattern=v(\d+\.\d+),group=1")
        attrs.setdefault("group", "0")
        if not attrs["group"].isdigit():
            raise UsageError(f"tag spec {src!r}: group={attrs['group']!r} is not a group number",
                             hint="group=0 is the whole match, group=1 the first (...)")
        attrs.setdefault("value", "")
        compile_regex(attrs["pattern"], f"tag spec {src!r}")
    elif typ == "edge":
        attrs.setdefault("branch", "")
    elif typ == "ref":
        events = ("branch", "tag", "pr")
        if attrs.get("event") not in events:
            raise UsageError(f"tag spec {src!r}: type=ref needs event=branch|tag|pr",
                             hint=did_you_mean(attrs.get("event", ""), events) or None)
        if attrs["event"] == "pr":
            attrs.setdefault("prefix", "pr-")
    elif typ == "raw":
        _need(src, typ, attrs, "value", "type=raw,value=stable")
    elif typ == "sha":
        attrs.setdefault("prefix", "sha-")
        attrs.setdefault("format", "short")
        if attrs["format"] not in ("short", "long"):
            raise UsageError(f"tag spec {src!r}: format={attrs['format']!r}",
                             hint="format=short (default) or format=long")
    attrs.setdefault("enable", "true")
    prio = attrs.setdefault("priority", str(DEFAULT_PRIORITIES[typ]))
    if not re.fullmatch(r"-?\d{1,18}", prio):
        shown = prio if len(prio) <= 24 else prio[:20] + "..."
        raise UsageError(f"tag spec {src[:80]!r}: priority={shown!r} is not a whole number"
                         " of at most 18 digits",
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
        for f in fields(src):
            key, sep, value = f.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep:
                raise UsageError(f"flavor {src!r}: {f.strip()!r} is not key=value",
                                 hint="e.g. latest=auto, prefix=v, suffix=-alpine")
            if key == "latest":
                if value not in LATEST_MODES:
                    raise UsageError(f"flavor {src!r}: latest={value!r}",
                                     hint="latest=auto, latest=metadata-action, latest=true"
                                          " or latest=false")
                latest = value
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
                hint = did_you_mean(key, ("latest", "prefix", "suffix", "onlatest"))
                raise UsageError(f"flavor {src!r}: unknown entry {key!r}",
                                 hint=hint or "flavor takes latest=, prefix=, suffix=, onlatest=")
    return Flavor(latest, prefix, prefix_latest, suffix, suffix_latest)


def compile_regex(pattern: str, where: str, *, slashes: bool = True) -> re.Pattern[str]:
    """A JavaScript regular expression: ``/re/flags`` (when ``slashes``; flags ``i``,
    ``m``, ``s`` honoured, ``g``, ``u``, ``y`` ignored) or a bare expression."""
    flags = 0
    m = re.fullmatch(r"/(.+)/(.*)", pattern, re.S) if slashes else None
    if m:
        pattern = m.group(1)
        for c in m.group(2):
            if c not in "gimsuyd":
                raise UsageError(f"{where}: unknown regular expression flag {c!r}",
                                 hint="flags: i (ignore case), m, s")
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(c, 0)
    try:
        with warnings.catch_warnings():  # "possible nested set": JavaScript's meaning holds
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(pattern, flags)
    except RecursionError:
        raise UsageError(f"{where}: bad regular expression: nested too deeply") from None
    except re.error as e:
        raise UsageError(f"{where}: bad regular expression: {e}",
                         hint="write a regular expression, e.g. v(\\d+\\.\\d+)") from e


# -- images -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Image:
    """One image name the computed tags are added to, lower-cased as metadata-action does."""

    name: str
    enable: bool = True


def parse_images(lines: Sequence[str]) -> list[Image]:
    """Image lines: a name, a comma list of names (one line only), or
    ``name=NAME[,enable=true|false]``; ``#`` comments and blank lines skipped."""
    texts = [t for t in (x.strip() for x in lines) if t and not t.startswith("#")]
    if len(texts) == 1 and all("=" not in f for f in fields(texts[0])):
        return [Image(f.strip().lower()) for f in fields(texts[0])]
    out: list[Image] = []
    for src in texts:
        name: str | None = None
        enable = True
        for f in fields(src):
            key, sep, value = f.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or key == "name":
                if name is not None:
                    raise UsageError(f"image {src!r}: two names", hint="one image per line")
                name = value if sep else f.strip()
            elif key == "enable":
                if value not in ("true", "false"):
                    raise UsageError(f"image {src!r}: enable={value!r}",
                                     hint="enable=true or enable=false")
                enable = value == "true"
            else:
                raise UsageError(f"image {src!r}: unknown attribute {key!r}",
                                 hint=did_you_mean(key, ("name", "enable"))
                                 or "an image line takes name= and enable=")
        if not name:
            raise UsageError(f"image {src!r}: no name", hint="e.g. name=ghcr.io/owner/app")
        out.append(Image(name.lower(), enable))
    return out


def parse_image_names(names: Sequence[str]) -> list[ImageRef]:
    """The enabled image names as references (no tag, no digest), lower-cased."""
    from polyarch.refs import ReferenceError, parse_ref

    out: list[ImageRef] = []
    for image in parse_images(names):
        if not image.enable:
            continue
        try:
            ref = parse_ref(image.name, default_tag=None)
        except ReferenceError as e:
            raise UsageError(f"image {image.name!r}: {e}") from None
        if ref.tag or ref.digest:
            raise UsageError(f"image {image.name!r} carries a tag or digest",
                             hint="give the name only; the tags come from the tag specs")
        out.append(ref)
    return out
