"""CI integration: hand publish's result to the CI system that runs it.

GitHub Actions (``GITHUB_ACTIONS=true``):

- step outputs in ``$GITHUB_OUTPUT``: ``digest`` (of the index), ``image``
  (``REF@sha256:...``, the first tag pinned by digest), ``tags`` (one per line) and
  ``metadata`` (publish's JSON document, on one line);
- a markdown table (platforms, digests, build mode, verification) appended to
  ``$GITHUB_STEP_SUMMARY``.

GitLab CI (``GITLAB_CI`` set), or wherever ``POLYARCH_DOTENV`` is set (the ``dotenv``
setting): a dotenv report (``artifacts: reports: dotenv:``) at ``$POLYARCH_DOTENV``,
default ``polyarch.env``, with ``POLYARCH_DIGEST``, ``POLYARCH_IMAGE`` and
``POLYARCH_TAGS`` (comma-separated).

Everything is written from publish's result objects (``ImageResult`` of one image, or a
project's ``ProjectResult``), the same objects the human output and ``--json`` come from.

For a project with several images the plain names describe the
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
from typing import TYPE_CHECKING, Any

from polyarch import redact, resultfiles, settings
from polyarch.errors import EnvironmentProblem

if TYPE_CHECKING:
    from polyarch.pipeline.project import ProjectResult
    from polyarch.pipeline.result import ImageResult

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


def destinations(env: Mapping[str, str] | None = None,
                 dotenv: Path | None = None) -> list[tuple[str, Path]]:
    """The files :func:`write_outputs` would write here, each with its name. ``env``:
    the CI's variables; ``dotenv``: where the dotenv report goes (default: the run's
    ``dotenv`` setting, POLYARCH_DOTENV; unset: ``polyarch.env`` under GitLab CI only)."""
    env = os.environ if env is None else env
    dotenv = settings.current().dotenv if dotenv is None else dotenv
    out: list[tuple[str, Path]] = []
    if detect(env) == GITHUB:
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            if env.get(name):
                out.append((name, Path(env[name])))
    if dotenv is not None:
        out.append(("POLYARCH_DOTENV", dotenv))
    elif detect(env) == GITLAB:
        out.append(("the dotenv report", Path("polyarch.env")))
    return out


def check_destinations(env: Mapping[str, str] | None = None,
                       dotenv: Path | None = None) -> None:
    """Refuse, before anything is built, a CI output file that cannot be written (exit 3):
    a failure after the tags moved would leave the next CI step without the result."""
    for name, path in destinations(env, dotenv):
        resultfiles.check(path, name, error=EnvironmentProblem)


def write_outputs(result: ImageResult | ProjectResult,
                  env: Mapping[str, str] | None = None,
                  dotenv: Path | None = None) -> list[Path]:
    """Write publish's result (one image, or a project's images) where the CI system
    reads it; return the files written (none outside CI, and none for a dry run).
    ``env`` and ``dotenv`` as for :func:`destinations`."""
    env = os.environ if env is None else env
    images = _images(result)
    if not images or not any(r.digest for _, r in images):
        return []
    masker = _Masker(env)
    written: list[Path] = []
    failed: list[str] = []
    for name, path in destinations(env, dotenv):
        try:
            if name == "GITHUB_OUTPUT":
                resultfiles.append(path, masker(_github_outputs(result, images)))
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


# -- the results ------------------------------------------------------------------------

#: One image of the result: its name in the project (None: publish of one image).
_Named = tuple["str | None", "ImageResult"]


def _images(result: ImageResult | ProjectResult) -> list[_Named]:
    """The images of ``result`` that were built (a dry run built none)."""
    from polyarch.pipeline.project import ProjectResult

    if isinstance(result, ProjectResult):
        return [(o.name, o.result) for o in result.images if not o.result.dry_run]
    return [] if result.dry_run else [(None, result)]


def _public(doc: Mapping[str, Any]) -> Any:
    """The document without the build commands (they may carry build arguments)."""
    if isinstance(doc.get("images"), list):
        return {**doc, "images": [_public(i) for i in doc["images"]]}
    return {k: v for k, v in doc.items() if k != "commands"}


def _github_outputs(result: ImageResult | ProjectResult, images: list[_Named]) -> str:
    pairs: list[tuple[str, str]] = []
    # Only what was published: an image whose verification failed has a digest, but
    # no tag points at it, and nothing downstream should pick it up.
    if all(r.promoted for _, r in images):
        last = images[-1][1]
        pairs += [("digest", last.digest), ("image", last.reference()),
                  ("tags", "\n".join(last.tags))]
    # The --json document, made from the same objects.
    pairs.append(("metadata", json.dumps(_public(result.to_json()), separators=(",", ":"),
                                         sort_keys=False)))
    if len(images) > 1 or images[0][0]:
        for name, r in images:
            if r.promoted:
                pairs += [(f"{name}-digest", r.digest), (f"{name}-image", r.reference()),
                          (f"{name}-tags", "\n".join(r.tags))]
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


def _verdict(r: ImageResult, platform: str | None = None) -> str:
    report = r.verified.report if r.verified is not None else None
    if report is None:
        return "not verified"
    rows = [p for p in report.platforms if platform is None or p.platform == platform]
    if platform is not None and not rows:
        return "not verified"
    ok = report.ok if platform is None else all(p.ok for p in rows)
    if not ok:
        return "❌ failed"
    warned = any(f.severity == "warning" for p in rows for f in p.findings)
    if platform is None:
        warned = warned or any(f.severity == "warning" for f in report.findings)
    return "⚠️ passed with warnings" if warned else "✅ passed"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(images: list[_Named]) -> str:
    """The job summary: one section per image."""
    out: list[str] = []
    for name, r in images:
        title = r.tags[0] if r.tags else (name or "image")
        if name:
            title = f"{name}: {title}"
        out.append(f"### polyarch publish `{_cell(title)}`\n")
        out.append(f"Index `{r.digest}` · verification: {_verdict(r)}"
                   + ("" if r.promoted else " · **tags not moved**") + "\n")
        out.append("| platform | digest | build | size | verification |")
        out.append("| --- | --- | --- | ---: | --- |")
        for p in r.platforms:
            out.append(f"| {_cell(p.platform)} | `{p.digest}` | {p.mode} "
                       f"| {p.size} | {_verdict(r, p.platform)} |")
        out.append("")
        if r.tags:
            out.append("Tags: " + ", ".join(f"`{_cell(t)}`" for t in r.tags) + "\n")
        problems = _problems(r)
        if problems:
            out.append("<details><summary>findings</summary>\n")
            out.extend(f"- {_cell(x)}" for x in problems)
            out.append("\n</details>\n")
    return "\n".join(out) + "\n"


def _problems(r: ImageResult) -> list[str]:
    report = r.verified.report if r.verified is not None else None
    if report is None:
        return []
    found: list[str] = []
    for f in report.findings:
        if f.severity in {"error", "warning"}:
            found.append(f"{f.severity}: {f.message}")
    for p in report.platforms:
        for f in p.findings:
            if f.severity in {"error", "warning"}:
                where = f" ({f.path})" if f.path else ""
                found.append(f"{p.platform}: {f.severity}: {f.message}{where}")
    return found


def _dotenv(images: list[_Named]) -> str:
    lines: list[str] = []
    if all(r.promoted for _, r in images):
        last = images[-1][1]
        lines += [f"POLYARCH_DIGEST={last.digest}", f"POLYARCH_IMAGE={last.reference()}",
                  f"POLYARCH_TAGS={','.join(last.tags)}"]
    if len(images) > 1 or images[0][0]:
        for name, r in images:
            if not r.promoted:
                continue
            key = re.sub(r"[^A-Za-z0-9]", "_", name or "").upper()
            lines += [f"POLYARCH_{key}_DIGEST={r.digest}", f"POLYARCH_{key}_IMAGE={r.reference()}",
                      f"POLYARCH_{key}_TAGS={','.join(r.tags)}"]
    return "".join(line + "\n" for line in lines)


# -- writing ----------------------------------------------------------------------------

_Masker = redact.Masker
