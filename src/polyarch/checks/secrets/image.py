"""Secrets in an image's metadata: its config (Env, Labels, history) and annotations.

BuildKit records the build arguments a ``RUN`` used in the history of the image
(``RUN |2 NPM_TOKEN=npm_... HOME=/root /bin/sh -c npm ci``): a token passed with
``--build-arg`` is published with the image even when no file keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from polyarch.checks.secrets import formats
from polyarch.checks.secrets.content import scan_bytes
from polyarch.checks.secrets.hits import SecretHit, fingerprint
from polyarch.checks.secrets.parsers import real_value, secret_env_key

# The file form of the secret mount works with every BuildKit Dockerfile frontend (the
# mount's env= option needs the dockerfile:1.10 syntax, which Docker 26's built-in
# frontend does not have).
_MOUNT = ("RUN --mount=type=secret,id={name} {name}=\"$(cat /run/secrets/{name})\" COMMAND"
          " (or, with '# syntax=docker/dockerfile:1.10' on the first line,"
          " RUN --mount=type=secret,id={name},env={name} COMMAND)")
REMEDY_ARG = ("pass it as a build secret, not a build argument: --secret id={name},env={name}"
              " and " + _MOUNT)
REMEDY_ENV = ("do not bake it into the image: pass it at run time, or for the build with"
              " --secret id={name},env={name} and " + _MOUNT)
REMEDY_VALUE = "remove it from the image metadata; build secrets go through --secret"
_HISTORY_KINDS = {"ENV": "secret in image environment (ENV)", "LABEL": "secret in image label",
                  "ARG": "build argument recorded in image history"}

# BuildKit: "RUN |<n> K1=v1 K2=v2 <command>"; the classic builder: "|<n> K1=v1 ... /bin/sh -c ...".
_ARGS_RECORD = re.compile(r"^(?:RUN )?\|(\d{1,4}) ")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


# "ENV K=v K2=v2" (BuildKit), "/bin/sh -c #(nop)  ENV K=v" (the classic builder), and
# the same for LABEL and ARG.
_INSTRUCTION = re.compile(r"^(?:/bin/sh -c #\(nop\)\s+)?(ENV|LABEL|ARG)\s+(.*)$", re.DOTALL)


def instruction_pairs(created_by: str) -> tuple[str, list[tuple[str, str]]]:
    """The instruction (``ENV``, ``LABEL``, ``ARG``) and the ``KEY=value`` pairs a
    history record of one names; ``("", [])`` for other records. Values are read as
    the builder wrote them: unquoted, a value with spaces up to the next ``KEY=``
    word; the classic builder's ``ENV KEY value`` form is one pair."""
    m = _INSTRUCTION.match(created_by.strip())
    if not m:
        return "", []
    what, rest = m.group(1), m.group(2)
    words = rest.split(" ")
    if what == "ENV" and words and "=" not in words[0] and len(words) > 1:
        return what, [(words[0], " ".join(words[1:]))]
    out: list[tuple[str, str]] = []
    for w in words:
        key, sep, value = w.partition("=")
        if sep and _KEY.fullmatch(key.strip("\"'")):
            out.append((key.strip("\"'"), value.strip("\"'")))
        elif out:
            k, v = out[-1]
            out[-1] = (k, f"{v} {w}".strip("\"'"))
    return what, out


def build_args_of(created_by: str) -> list[tuple[str, str]]:
    """The ``KEY=value`` build arguments a history record names (BuildKit's
    ``RUN |N K=v ...``). BuildKit joins the pairs with single spaces and does not quote
    them: a value with spaces is read up to the next ``KEY=`` word, the last one up to
    its first space (the record cannot tell the rest from the command)."""
    m = _ARGS_RECORD.match(created_by)
    if not m:
        return []
    n = int(m.group(1))
    words = created_by[m.end():].split(" ")
    out: list[tuple[str, str]] = []
    i = 0
    while len(out) < n and i < len(words):
        key, sep, value = words[i].partition("=")
        i += 1
        if not sep or not _KEY.fullmatch(key):
            if not out:
                break  # the command itself: fewer pairs recorded than counted
            k, v = out[-1]  # a value with spaces: glue the word to the previous value
            out[-1] = (k, f"{v} {words[i - 1]}")
            continue
        out.append((key, value))
    return out


def _value_hits(text: str, where: str, remedy: str) -> list[SecretHit]:
    return [SecretHit(h.kind, where, "error" if h.severity == "error" else h.severity,
                      None, h.fingerprint, remedy)
            for h in scan_bytes("", text.encode("utf-8", "surrogateescape"))]


def pair_hits(key: str, value: str, kind: str, where: str, remedy: str) -> list[SecretHit]:
    """A ``KEY=value`` pair: a token format in the value, or a secret-looking key with a
    real value."""
    hits = _value_hits(value, where, remedy)
    if not hits and secret_env_key(key) and real_value(value) and len(value.strip()) >= 6:
        hits = [SecretHit(kind, where, "error", None, fingerprint(value), remedy)]
    return hits


def scan_config(config: Mapping[str, Any]) -> list[SecretHit]:
    """Secrets in an image config: ``config.Env``, ``config.Labels``, ``Cmd``,
    ``Entrypoint``, ``OnBuild``, ``Healthcheck`` and every ``history[].created_by``
    (build arguments recorded by ``RUN |N``, ``ENV`` and ``ARG`` lines). Findings name
    the place and the remedy, never the value."""
    hits: list[SecretHit] = []
    cfg = config.get("config") or {}
    if not isinstance(cfg, Mapping):
        cfg = {}
    env = cfg.get("Env") or []
    for item in env if isinstance(env, list) else []:
        key, sep, value = str(item).partition("=")
        if sep:
            hits += pair_hits(key, value, "secret in image environment (ENV)", f"key {key}",
                              REMEDY_ENV.format(name=key))
    labels = cfg.get("Labels") or {}
    for key, value in (labels.items() if isinstance(labels, Mapping) else []):
        hits += pair_hits(str(key), str(value), "secret in image label", f"label {key}",
                          REMEDY_VALUE)
    health = cfg.get("Healthcheck") or {}
    for field, words in (("Cmd", cfg.get("Cmd")), ("Entrypoint", cfg.get("Entrypoint")),
                         ("OnBuild", cfg.get("OnBuild")),
                         ("Healthcheck", health.get("Test") if isinstance(health, Mapping)
                          else None)):
        if isinstance(words, list):
            hits += _value_hits(" ".join(str(w) for w in words), field, REMEDY_VALUE)
    history = config.get("history") or []
    for i, entry in enumerate(history if isinstance(history, list) else []):
        if not isinstance(entry, Mapping):
            continue
        created = str(entry.get("created_by") or "")
        where = f"history entry {i + 1}"
        found: list[SecretHit] = []
        for key, value in build_args_of(created):
            found += pair_hits(key, value, "build argument recorded in image history",
                               f"{where}, build argument {key}", REMEDY_ARG.format(name=key))
        # ENV lines stay in the history even when a later ENV emptied the variable.
        what, pairs = instruction_pairs(created)
        for key, value in pairs:
            kind = _HISTORY_KINDS[what]
            remedy = {"ENV": REMEDY_ENV, "ARG": REMEDY_ARG}.get(what, REMEDY_VALUE)
            found += pair_hits(key, value, kind, f"{where}, {what} {key}",
                               remedy.format(name=key))
        if not found:
            found = _value_hits(created, where, REMEDY_VALUE)
        hits += found
    return hits


def scan_annotations(annotations: Mapping[str, str], where: str = "") -> list[SecretHit]:
    """Secrets in manifest or index annotations (``where``: of which descriptor)."""
    hits: list[SecretHit] = []
    for key, value in annotations.items():
        hits += pair_hits(str(key), str(value), "secret in annotation",
                          f"{where + ', ' if where else ''}annotation {key}", REMEDY_VALUE)
    return hits


def scan_descriptors(doc: Mapping[str, Any], where: str = "") -> list[SecretHit]:
    """Annotations of a manifest's or index's descriptors: ``manifests[]``, ``config``
    and ``layers[]`` (``where``: whose)."""
    descs: list[tuple[str, Any]] = []
    for field in ("manifests", "layers"):
        items = doc.get(field)
        if isinstance(items, list):
            descs += [(f"{field}[{i}]", d) for i, d in enumerate(items)]
    descs.append(("config", doc.get("config")))
    hits: list[SecretHit] = []
    for name, d in descs:
        ann = d.get("annotations") if isinstance(d, Mapping) else None
        if isinstance(ann, Mapping):
            hits += scan_annotations(ann, f"{where + ' ' if where else ''}{name}")
    return hits


def placeholder(value: str) -> bool:
    return formats.looks_placeholder(value.encode())
