"""``{{expression}}`` templates as metadata-action evaluates them (a Handlebars subset).

``{{name arg key=value}}`` calls a helper with string arguments (``'...'`` or ``"..."``),
numbers, ``true``/``false`` and ``key=value`` pairs; a bare word as an argument is a
Handlebars lookup of a value that does not exist, so it passes "nothing" (a date helper
then uses moment's default format). ``{{ }}`` escapes ``& < > " ' ` =`` in the result as
Handlebars does; ``{{{ }}}`` does not. ``{{! comment }}`` disappears. An unknown name is
an error naming the expression, not an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from polyarch.errors import UsageError

#: An argument: a string, or ``None`` for a lookup that found nothing.
Arg = str | None
Helper = Callable[[list[Arg], dict[str, Arg]], str]

_MUSTACHE = re.compile(r"\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:(?P<key>[A-Za-z_][\w-]*)=)?"""
    r"""(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+(?:\.\d+)?)(?![\w.-])|(?P<word>[^\s'"=()]+))"""
)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
            "`": "&#x60;", "=": "&#x3D;"}


def _escape(s: str) -> str:
    return re.sub(r"[&<>\"'`=]", lambda m: _ESCAPES[m.group(0)], s)


def _did_you_mean(word: str, choices: Mapping[str, object]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known: " + ", ".join("{{" + h + "}}" for h in choices)


def expand(template: str, helpers: Mapping[str, Helper], where: str) -> str:
    """Evaluate every ``{{...}}`` in ``template``; raise :class:`UsageError` naming
    ``where`` and the expression when one cannot be evaluated."""
    if "{{" not in template:
        return template

    def sub(m: re.Match[str]) -> str:
        raw = m.group(1) is not None
        body = (m.group(1) if raw else m.group(2)).strip()
        if body.startswith("!"):
            return ""
        shown = "{{" + body + "}}"
        name, _, rest = body.partition(" ")
        name = name.strip()
        if name not in helpers:
            hint = _did_you_mean(name, helpers)
            if m.start() > 0 and template[m.start() - 1] == "$":
                hint = "${{ }} is a GitHub Actions expression; polyarch does not evaluate it"
            raise UsageError(f"{where}: unknown expression {shown}", hint=hint)
        args: list[Arg] = []
        kw: dict[str, Arg] = {}
        pos, rest = 0, rest.strip()
        while pos < len(rest):
            t = _TOKEN.match(rest, pos)
            if not t or t.end() == pos:
                raise UsageError(f"{where}: cannot read {shown}",
                                 hint="arguments are 'text', numbers or key='value'")
            if t.group("sq") is not None:
                val: Arg = t.group("sq")
            elif t.group("dq") is not None:
                val = t.group("dq")
            elif t.group("num") is not None:
                val = t.group("num")
            else:
                word = t.group("word")
                val = word if word in ("true", "false") else None
            if t.group("key"):
                kw[t.group("key")] = val
            else:
                args.append(val)
            pos = t.end()
        try:
            out = helpers[name](args, kw)
        except ValueError as e:
            raise UsageError(f"{where}: {shown}: {e}") from None
        return out if raw else _escape(out)

    return _MUSTACHE.sub(sub, template)


def const(value: str) -> Helper:
    def helper(args: list[Arg], kw: dict[str, Arg]) -> str:
        if args or kw:
            raise ValueError("takes no arguments")
        return value

    return helper


# -- dates (moment.js formats) ---------------------------------------------------------

_MOMENT = re.compile(
    r"\[[^\]]*\]|YYYY|YY|GGGG|MMMM|MMM|Mo|MM|M|Qo|Q|DDDD|DDD|Do|DD|D|dddd|ddd|dd|do|d|E|e|"
    r"WW|W|HH|H|hh|h|kk|k|mm|m|ss|s|SSS|SS|S|A|a|ZZ|Z|X|x"
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def format_date(t: datetime, fmt: str | None) -> str:
    """Render ``t`` with a moment.js format; ``None`` is moment's default format
    (``YYYY-MM-DDTHH:mm:ssZ``, with a literal ``Z`` at offset zero)."""
    offset = t.utcoffset() or timedelta(0)
    if fmt is None:
        fmt = "YYYY-MM-DDTHH:mm:ss[Z]" if offset == timedelta(0) else "YYYY-MM-DDTHH:mm:ssZ"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    iso = t.isocalendar()

    def tok(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith("["):
            return s[1:-1]
        h12 = t.hour % 12 or 12
        wd = t.weekday()  # Monday 0
        sunday_first = (wd + 1) % 7
        quarter = (t.month - 1) // 3 + 1
        table: dict[str, str] = {
            "YYYY": f"{t.year:04d}", "YY": f"{t.year % 100:02d}", "GGGG": f"{iso[0]:04d}",
            "MMMM": _MONTHS[t.month - 1], "MMM": _MONTHS[t.month - 1][:3],
            "Mo": _ordinal(t.month), "MM": f"{t.month:02d}", "M": str(t.month),
            "Qo": _ordinal(quarter), "Q": str(quarter),
            "DDDD": f"{t.timetuple().tm_yday:03d}", "DDD": str(t.timetuple().tm_yday),
            "Do": _ordinal(t.day), "DD": f"{t.day:02d}", "D": str(t.day),
            "dddd": _DAYS[wd], "ddd": _DAYS[wd][:3], "dd": _DAYS[wd][:2],
            "do": _ordinal(sunday_first), "d": str(sunday_first),
            "E": str(iso[2]), "e": str(sunday_first),
            "WW": f"{iso[1]:02d}", "W": str(iso[1]),
            "HH": f"{t.hour:02d}", "H": str(t.hour), "hh": f"{h12:02d}", "h": str(h12),
            "kk": f"{t.hour or 24:02d}", "k": str(t.hour or 24),
            "mm": f"{t.minute:02d}", "m": str(t.minute),
            "ss": f"{t.second:02d}", "s": str(t.second),
            "SSS": f"{t.microsecond // 1000:03d}", "SS": f"{t.microsecond // 10000:02d}",
            "S": str(t.microsecond // 100000),
            "A": "AM" if t.hour < 12 else "PM", "a": "am" if t.hour < 12 else "pm",
            "ZZ": f"{sign}{hh:02d}{mm:02d}", "Z": f"{sign}{hh:02d}:{mm:02d}",
            "X": str(int(t.timestamp())), "x": str(int(t.timestamp() * 1000)),
        }
        return table[s]

    return _MOMENT.sub(tok, fmt)


def date_helper(when: datetime) -> Helper:
    """``{{date 'FORMAT' tz='Zone'}}`` for the instant ``when`` (UTC unless ``tz=``)."""

    def helper(args: list[Arg], kw: dict[str, Arg]) -> str:
        if len(args) > 1:
            raise ValueError("give one format, e.g. {{date 'YYYYMMDD'}}")
        for k in kw:
            if k != "tz":
                raise ValueError(f"unknown attribute {k}= (only tz= is known)")
        tz = kw.get("tz") or "UTC"
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as"
                             " Europe/Paris)") from None
        return format_date(when.astimezone(zone), args[0] if args else None)

    return helper
