"""CI integration: hand publish's result to the CI system that runs it.

GitHub Actions (``GITHUB_ACTIONS=true``):

- step outputs in ``$GITHUB_OUTPUT``: ``digest`` (of the index), ``image``
  (``REF@sha256:...``, the first tag pinned by digest), ``tags`` (one per line) and
  ``metadata`` (publish's JSON document, on one line);
- a markdown table (platforms, digests, build mode, verification) appended to
  ``$GITHUB_STEP_SUMMARY``.

GitLab CI (``GITLAB_CI`` set), or wherever ``POLYARCH_DOTENV`` is set: a dotenv report
(``artifacts: reports: dotenv:``) at ``$POLYARCH_DOTENV``, default ``polyarch.env``,
with ``POLYARCH_DIGEST``, ``POLYARCH_IMAGE`` and ``POLYARCH_TAGS`` (comma-separated).

For a project with several images (``{"images": [...]}``) the plain names describe the
last image built (the one the others lead up to) and each image also gets its own:
``<name>-digest``/``<name>-image``/``<name>-tags`` on GitHub,
``POLYARCH_<NAME>_DIGEST``/``_IMAGE``/``_TAGS`` in the dotenv file.

When verification failed (``promoted`` false) the summary says so and ``metadata``
holds the document, but no digest, image or tags are given for that image (nor the
plain names, in a project): no tag points at its index.

Folding (``::group::``, GitLab sections) and ``::error::`` annotations are the
reporter's (:mod:`polyarch.output`).

Nothing secret is written: the documents hold references, digests and finding
messages, never credentials; the build commands are left out of ``metadata`` (they may
carry build arguments), and the value of any environment variable whose name looks
secret (``*TOKEN*``, ``*PASSWORD*``, ``*SECRET*``, ...) is masked wherever it appears.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polyarch import redact, resultfiles
from polyarch.errors import EnvironmentProblem

GITHUB = "github"
GITLAB = "gitlab"

_SECRET_NAME = redact.SECRET_NAME
_MASK = redact.MASK


def detect(env: Mapping[str, str] | None = None) -> str | None:
    """``"github"``, ``"gitlab"`` or ``None``."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return GITHUB
    if env.get("GITLAB_CI"):
        return GITLAB
    return None


def destinations(env: Mapping[str, str] | None = None) -> list[tuple[str, Path]]:
    """The files :func:`write_outputs` would write here, each with its name."""
    env = os.environ if env is None else env
    out: list[tuple[str, Path]] = []
    if detect(env) == GITHUB:
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            if env.get(name):
                out.append((name, Path(env[name])))
    if detect(env) == GITLAB or env.get("POLYARCH_DOTENV"):
        out.append(("POLYARCH_DOTENV" if env.get("POLYARCH_DOTENV") else "the dotenv report",
                    Path(env.get("POLYARCH_DOTENV") or "polyarch.env")))
    return out


def check_destinations(env: Mapping[str, str] | None = None) -> None:
    """Refuse, before anything is built, a CI output file that cannot be written (exit 3):
    a failure after the tags moved would leave the next CI step without the result."""
    for name, path in destinations(env):
        resultfiles.check(path, name, error=EnvironmentProblem)


def write_outputs(doc: Mapping[str, Any], env: Mapping[str, str] | None = None) -> list[Path]:
    """Write publish's JSON document where the CI system reads it; return the files
    written (none outside CI, and none for a dry run)."""
    env = os.environ if env is None else env
    images = _images(doc)
    if not images or not any(i.digest for i in images):
        return []
    masker = _Masker(env)
    written: list[Path] = []
    failed: list[str] = []
    for name, path in destinations(env):
        try:
            if name == "GITHUB_OUTPUT":
                resultfiles.append(path, masker(_github_outputs(doc, images)))
            elif name == "GITHUB_STEP_SUMMARY":
                resultfiles.append(path, masker(summary_markdown(images)))
            else:
                resultfiles.write(path, masker(_dotenv(images)))
            written.append(path)
        except OSError as e:
            failed.append(f"{name} {path} ({e.strerror or e})")
    if failed:
        raise OutputsFailed(f"cannot write CI output file {'; '.join(failed)}")
    return written


class OutputsFailed(EnvironmentProblem):
    """One or more CI output files could not be written (the others were)."""


# -- the documents ----------------------------------------------------------------------

class _Image:
    """One published image, read from a publish document."""

    def __init__(self, name: str | None, doc: Mapping[str, Any]) -> None:
        self.name = name
        self.doc = doc
        index = doc.get("index") or {}
        self.digest: str = str(index.get("digest") or "")
        self.tags: list[str] = [str(t) for t in doc.get("tags") or []]
        self.platforms: list[Mapping[str, Any]] = list(doc.get("platforms") or [])
        self.verification: Mapping[str, Any] | None = doc.get("verification")
        self.promoted: bool = bool(doc.get("promoted", True))

    @property
    def image(self) -> str:
        if not self.tags or not self.digest:
            return ""
        return f"{self.tags[0]}@{self.digest}"


def _images(doc: Mapping[str, Any]) -> list[_Image]:
    if doc.get("dry_run"):
        return []
    if isinstance(doc.get("images"), list):
        return [_Image(str(i.get("name") or ""), i) for i in doc["images"]
                if isinstance(i, Mapping) and not i.get("dry_run")]
    return [_Image(None, doc)]


def _public(doc: Mapping[str, Any]) -> Any:
    """The document without the build commands (they may carry build arguments)."""
    if isinstance(doc.get("images"), list):
        return {**doc, "images": [_public(i) for i in doc["images"]]}
    return {k: v for k, v in doc.items() if k != "commands"}


def _github_outputs(doc: Mapping[str, Any], images: list[_Image]) -> str:
    pairs: list[tuple[str, str]] = []
    # Only what was published: an image whose verification failed has a digest, but
    # no tag points at it, and nothing downstream should pick it up.
    if all(i.promoted for i in images):
        last = images[-1]
        pairs += [("digest", last.digest), ("image", last.image), ("tags", "\n".join(last.tags))]
    pairs.append(("metadata", json.dumps(_public(doc), separators=(",", ":"), sort_keys=False)))
    if len(images) > 1 or images[0].name:
        for i in images:
            if i.promoted:
                pairs += [(f"{i.name}-digest", i.digest), (f"{i.name}-image", i.image),
                          (f"{i.name}-tags", "\n".join(i.tags))]
    return "".join(_github_pair(k, v) for k, v in pairs)


def _github_pair(key: str, value: str) -> str:
    """``key=value``, or the heredoc form for a value on several lines."""
    if "\n" not in value and "\r" not in value:
        return f"{key}={value}\n"
    while True:
        delim = f"ghadelimiter_{secrets.token_hex(8)}"
        if delim not in value:
            break
    return f"{key}<<{delim}\n{value}\n{delim}\n"


def _verdict(img: _Image, platform: str | None = None) -> str:
    v = img.verification
    if v is None:
        return "not verified"
    rows = [p for p in v.get("platforms") or [] if platform is None or p.get("platform") == platform]
    if platform is not None and not rows:
        return "not verified"
    ok = bool(v.get("ok")) if platform is None else all(p.get("ok") for p in rows)
    if not ok:
        return "❌ failed"
    warned = any(f.get("severity") == "warning" for p in rows for f in p.get("findings") or [])
    if platform is None:
        warned = warned or any(f.get("severity") == "warning" for f in v.get("findings") or [])
    return "⚠️ passed with warnings" if warned else "✅ passed"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(images: list[_Image]) -> str:
    """The job summary: one section per image."""
    out: list[str] = []
    for img in images:
        title = img.tags[0] if img.tags else (img.name or "image")
        if img.name:
            title = f"{img.name}: {title}"
        out.append(f"### polyarch publish `{_cell(title)}`\n")
        out.append(f"Index `{img.digest}` · verification: {_verdict(img)}"
                   + ("" if img.promoted else " · **tags not moved**") + "\n")
        out.append("| platform | digest | build | size | verification |")
        out.append("| --- | --- | --- | ---: | --- |")
        for p in img.platforms:
            name = str(p.get("platform", "?"))
            out.append(f"| {_cell(name)} | `{p.get('digest', '')}` | {p.get('mode', '?')} "
                       f"| {p.get('size', '')} | {_verdict(img, name)} |")
        out.append("")
        if img.tags:
            out.append("Tags: " + ", ".join(f"`{_cell(t)}`" for t in img.tags) + "\n")
        problems = _problems(img)
        if problems:
            out.append("<details><summary>findings</summary>\n")
            out.extend(f"- {_cell(x)}" for x in problems)
            out.append("\n</details>\n")
    return "\n".join(out) + "\n"


def _problems(img: _Image) -> list[str]:
    v = img.verification or {}
    found: list[str] = []
    for f in v.get("findings") or []:
        if f.get("severity") in {"error", "warning"}:
            found.append(f"{f.get('severity')}: {f.get('message')}")
    for p in v.get("platforms") or []:
        for f in p.get("findings") or []:
            if f.get("severity") in {"error", "warning"}:
                where = f" ({f['path']})" if f.get("path") else ""
                found.append(f"{p.get('platform')}: {f.get('severity')}: {f.get('message')}{where}")
    return found


def _dotenv(images: list[_Image]) -> str:
    lines: list[str] = []
    if all(i.promoted for i in images):
        last = images[-1]
        lines += [f"POLYARCH_DIGEST={last.digest}", f"POLYARCH_IMAGE={last.image}",
                  f"POLYARCH_TAGS={','.join(last.tags)}"]
    if len(images) > 1 or images[0].name:
        for i in images:
            if not i.promoted:
                continue
            key = re.sub(r"[^A-Za-z0-9]", "_", i.name or "").upper()
            lines += [f"POLYARCH_{key}_DIGEST={i.digest}", f"POLYARCH_{key}_IMAGE={i.image}",
                      f"POLYARCH_{key}_TAGS={','.join(i.tags)}"]
    return "".join(line + "\n" for line in lines)


# -- writing ----------------------------------------------------------------------------

_Masker = redact.Masker
