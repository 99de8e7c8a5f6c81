"""Keep secret values out of everything polyarch prints.

One mechanism: a process-wide set of values to mask (:data:`REDACTOR`). Values are
registered as soon as polyarch sees them — build arguments whose name or value looks
secret, passwords inside URLs (build arguments, ``-t`` references), values of
secret-looking environment variables and of the variables ``--secret id=x,env=VAR``
names — and :mod:`polyarch.output` passes every line it prints (progress relayed from
the engine, echoed commands, errors and their ``::error::`` annotations, tables, the
``--json`` document) through :func:`text`. Independently of what was registered, known
token formats (``ghp_...``, ``npm_...``) and URL passwords are masked in any text.

Registry passwords and tokens never reach output (they stay inside the registry
client, which registers them as soon as it reads them); build secrets are passed by
reference (``--secret id=x,src=FILE``), and the secret parts of such a file are
registered. Verification looks for every registered value in the image it checks.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|_KEY$|^KEY$|AUTH"
                         r"|APIKEY|API_KEY|ACCESS_KEY|PASSPHRASE|_PAT$|^PAT$",
                         re.IGNORECASE)
MASK = "***"
#: Shorter values are not masked by value (they would garble unrelated text); they are
#: still masked in build-argument position.
MIN_LEN = 6
# Values that are not secrets whatever the name (masking them would garble output).
_NOT_SECRET = frozenset({"true", "false", "none", "null", "changeme", "example", "secret",
                         "password", "unset", "disabled", "enabled"})

# Token formats masked wherever they appear (the fixed prefix stays readable).
_TOKENS = re.compile(
    r"(?:(?P<prefix>gh[pousr]_|npm_)(?P<b62>[A-Za-z0-9]{36})(?![A-Za-z0-9])"
    r"|(?P<prefix2>github_pat_|glpat-|pypi-AgEIcHlwaS5vcmc|xox[baprs]-(?=[0-9]{6})|[sr]k_live_)"
    r"[A-Za-z0-9_-]{16,})"
    r"|(?P<aws>(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Z0-9]))"
    r"|(?P<jwt>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# scheme://user:password@  ->  scheme://user:***@
_URL_PASSWORD = re.compile(
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s/?#@:'\"]*:)(?P<pw>[^\s/?#@'\"]+)@")


def secret_name(key: str) -> bool:
    return bool(SECRET_NAME.search(key))


def _token_sub(m: re.Match[str]) -> str:
    prefix = m.group("prefix") or m.group("prefix2")
    if prefix:
        return prefix[:11] + MASK
    return MASK


def _url_sub(m: re.Match[str]) -> str:
    return m.group("pre") + MASK + "@" if m.group("pw") != MASK else m.group(0)


def looks_secret(value: str) -> bool:
    """A value holding a known token format (a URL password alone is masked by itself,
    the rest of the URL stays readable)."""
    return bool(_TOKENS.search(value))


class Redactor:
    """The set of values masked in every printed line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        # Masked in output, but not looked for in images (the lines of a secret file:
        # a common line such as registry=https://registry.npmjs.org/ is no leak).
        self._mask_only: set[str] = set()

    def add(self, value: str | None, *, mask_only: bool = False) -> None:
        """Mask ``value`` (and the password of a URL in it) from now on. ``mask_only``:
        in output only, not a value verification looks for in images."""
        if not value:
            return
        found = {m.group("pw") for m in _URL_PASSWORD.finditer(value)}
        if len(value) >= MIN_LEN:
            found.add(value)
        found = {v for v in found
                 if len(v) >= MIN_LEN and v != MASK and v.lower() not in _NOT_SECRET
                 and not v.startswith("$")} - self._values
        if not found:
            return
        with self._lock:
            self._values |= found
            if mask_only:
                self._mask_only |= found
            else:
                self._mask_only -= found
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def add_build_arg(self, key: str, value: str) -> None:
        """A build argument: masked when its name or its value looks secret; a URL
        password inside it is masked in any case."""
        if secret_name(key) or looks_secret(value):
            self.add(value)
        for m in _URL_PASSWORD.finditer(value):
            self.add(m.group("pw"))

    def add_secret_spec(self, spec: str, env: Mapping[str, str] | None = None) -> None:
        """``--secret id=x,env=VAR`` (or ``type=env``): the value of VAR; ``src=FILE``
        (``source=``): the secret parts of FILE's content (:func:`secret_parts`), which
        verification also looks for in the image, and the rest of its lines, masked in
        output only (a build step that prints them shows ``***``); ``id=X`` alone: the
        variable X, which buildx reads then."""
        env = os.environ if env is None else env
        fields = dict(f.partition("=")[::2] for f in spec.split(",") if "=" in f)
        src = fields.get("src") or fields.get("source")
        if fields.get("type") == "env":
            self.add(env.get(fields.get("env") or src or fields.get("id", "")))
        elif src:
            for v in secret_parts(_read_head(src)):
                self.add(v)
            for value in file_secrets(src):
                self.add(value, mask_only=True)
        elif "env" in fields:
            self.add(env.get(fields["env"]))
        elif "id" in fields:
            self.add(env.get(fields["id"]))

    def add_argv(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        prev = ""
        for a in args:
            if prev in ("--build-arg", "--build-arg=") and "=" in a:
                k, _, v = a.partition("=")
                self.add_build_arg(k, v)
            elif a.startswith("--build-arg="):
                k, _, v = a.removeprefix("--build-arg=").partition("=")
                self.add_build_arg(k, v)
            elif prev == "--secret":
                self.add_secret_spec(a, env)
            elif a.startswith("--secret="):
                self.add_secret_spec(a.removeprefix("--secret="), env)
            for m in _URL_PASSWORD.finditer(a):
                self.add(m.group("pw"))
            prev = a

    def values(self) -> tuple[str, ...]:
        """The values verification looks for in images, longest first."""
        return tuple(v for v in self._ordered if v not in self._mask_only)

    def clear(self) -> None:
        with self._lock:
            self._values = set()
            self._mask_only = set()
            self._ordered = ()

    def __call__(self, text: str, env: Mapping[str, str] | None = None) -> str:
        if not text:
            return text
        for v in self._ordered:
            if v in text:
                text = text.replace(v, MASK)
        for v in env_values(env):
            if v in text:
                text = text.replace(v, MASK)
        if "://" in text:
            text = _URL_PASSWORD.sub(_url_sub, text)
        return _TOKENS.sub(_token_sub, text)


#: The most of a secret file read for masking (secret files are small: a token, an .npmrc).
MAX_SECRET_FILE = 256 * 1024


def file_secrets(path: str) -> list[str]:
    """What to mask of a build secret file: its content, each of its lines, and the value
    part of ``key=value`` / ``key: value`` lines. An unreadable file gives nothing (the
    build reports it)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_FILE)
    except (OSError, ValueError):
        return []
    text = data.decode("utf-8", "replace")
    out = [text, text.strip()]
    for line in text.splitlines():
        line = line.strip()
        out.append(line)
        for sep in ("=", ":"):
            if sep in line:
                out.append(line.split(sep, 1)[1].strip().strip("\"'"))
    return [v for v in out if v]


def _read_head(path: str) -> str:
    try:
        with open(os.path.expanduser(path), "rb") as f:
            return f.read(MAX_SECRET_FILE).decode("utf-8", "replace")
    except OSError:
        return ""  # buildx itself reports a missing secret file


def secret_parts(content: str) -> list[str]:
    """What of a secret file's content is secret: all of it when it is one line (a
    token, a password), else the values of its secret-looking ``KEY=value``,
    ``key: value`` and ``"key": "value"`` lines (an ``.npmrc``, an ``.env`` file, a
    JSON key file) and the known token formats anywhere in it."""
    text = content.strip()
    if not text:
        return []
    if "\n" not in text:
        return [text]
    out = [m.group(0) for m in _TOKENS.finditer(text)]
    for line in text.splitlines():
        key, sep, value = line.partition("=") if "=" in line else line.partition(":")
        key = key.strip().strip("\"'").rpartition(":")[2].removeprefix("export ").strip()
        value = value.strip().rstrip(",").strip().strip("\"'")
        if sep and value and not line.lstrip().startswith(("#", ";")) and secret_name(key):
            out.append(value)
    return out


def env_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables (at least 6 characters), longest
    first. Every line of output asks: the answer for the environment as it was last
    time is kept (comparing it costs a fifth of reading every name again)."""
    global _last_env
    items = tuple((os.environ if env is None else env).items())
    seen, answer = _last_env  # one reference read: threads may replace it meanwhile
    if seen == items:
        return list(answer)
    found = sorted({v for k, v in items if SECRET_NAME.search(k) and len(v) >= 6},
                   key=len, reverse=True)
    _last_env = (items, tuple(found))
    return found


#: The environment env_values read last, and its answer.
_last_env: tuple[tuple[tuple[str, str], ...] | None, tuple[str, ...]] = (None, ())


#: The one set of values masked in output.
REDACTOR = Redactor()


def text(s: str) -> str:
    """``s`` fit to print."""
    return REDACTOR(s)


def data(doc: Any) -> Any:
    """A JSON-able document with every string (keys too) fit to print."""
    if isinstance(doc, str):
        return REDACTOR(doc)
    if isinstance(doc, Mapping):
        return {data(k) if isinstance(k, str) else k: data(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [data(x) for x in doc]
    return doc


def secret_values() -> tuple[str, ...]:
    """The values registered so far (build arguments, URL passwords, ``--secret`` env
    values), longest first: verification looks for them in the image it checks."""
    return REDACTOR.values()


def register(values: Iterable[str]) -> None:
    for v in values:
        REDACTOR.add(v)


def register_url_passwords(values: Iterable[str]) -> None:
    """The passwords of ``scheme://user:password@`` URLs in ``values``."""
    for v in values:
        for m in _URL_PASSWORD.finditer(v):
            REDACTOR.add(m.group("pw"))


def register_build_args(args: Mapping[str, str]) -> None:
    for k, v in args.items():
        REDACTOR.add_build_arg(str(k), str(v))


class Masker:
    """Masks registered values and the values of secret-looking environment variables
    (``env``, default the process environment) in text."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.values = env_values(self.env)

    def __call__(self, text: str) -> str:
        return REDACTOR(text, self.env)


def argv(args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """A command line fit to print: values of secret-looking build arguments masked in
    place (whatever their length), and every registered or secret-looking value masked.
    Registers what it finds, so later output (progress, errors) masks it too."""
    REDACTOR.add_argv(args, env)
    mask = Masker(env)
    out: list[str] = []
    prev = ""
    for a in args:
        if prev == "--build-arg" and "=" in a:
            k, _, v = a.partition("=")
            a = f"{k}={MASK}" if v and (secret_name(k) or looks_secret(v)) else a
        elif a.startswith("--build-arg="):
            k, _, v = a.removeprefix("--build-arg=").partition("=")
            a = f"--build-arg={k}={MASK}" if v and (secret_name(k) or looks_secret(v)) else a
        out.append(mask(a))
        prev = a
    return out
