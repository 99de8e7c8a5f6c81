"""What git says about a working tree, one question at a time: the output of a git
command (``None`` when git answers "no such thing"), a commit's time, the default
branch, the tag to name a commit by, and the web URL of a remote. Also
:func:`parse_time`, for a commit time as git (``%cI``), GitHub's event payload and
GitLab's variables write it. :mod:`polyarch.tags.gitinfo` puts the answers together.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from polyarch.errors import EnvironmentProblem
from polyarch.tags.versions import SemverKey, semver_key


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time (``Z`` for UTC; UTC when it names no zone), or ``None``."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def git(cwd: Path, *args: str) -> str | None:
    """Output of ``git args`` in ``cwd`` (stripped), or ``None`` if it fails."""
    from polyarch import proc

    # Not checked: a non-zero exit is the answer "no such thing" (not a work tree, no
    # upstream, no tag), which the callers read as None.
    res = proc.run(["git", *args], cwd=cwd, echo=False, check=False)
    return res.stdout.strip() if res.ok else None


def commit_time(cwd: Path, sha: str) -> datetime | None:
    if not sha:
        return None
    try:
        return parse_time(git(cwd, "show", "-s", "--format=%cI", sha, "--"))
    except EnvironmentProblem:
        return None


def pick_tag(tags: list[str]) -> str:
    """Of several tags on one commit, the highest semantic version (a release beats its
    release candidate), else the newest."""
    best: tuple[SemverKey, str] | None = None
    for t in tags:
        k = semver_key(t)
        if k is not None and (best is None or k > best[0]):
            best = (k, t)
    return best[1] if best else tags[0]


def default_branch(cwd: Path) -> str | None:
    """``origin/HEAD``'s branch, else ``main`` or ``master`` if one exists (one git call)."""
    candidates = ["refs/remotes/origin/HEAD"] + [
        f"refs/{where}/{n}" for n in ("main", "master") for where in ("remotes/origin", "heads")]
    found = git(cwd, "for-each-ref", "--format=%(refname) %(symref)", *candidates) or ""
    refs = dict(line.partition(" ")[::2] for line in found.splitlines())
    target = refs.get("refs/remotes/origin/HEAD", "")
    if target.startswith("refs/remotes/origin/"):
        return target[len("refs/remotes/origin/"):]
    for ref in candidates[1:]:
        if ref in refs:
            return ref.rsplit("/", 1)[1]
    return None


_SCP_REMOTE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+?)(?:\.git)?/?$")
_URL_REMOTE = re.compile(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+?)(?:\.git)?/?$")


def web_url(remote: str) -> tuple[str | None, str | None]:
    """``(https://host/owner/name, name)`` for a git remote URL; credentials are dropped."""
    remote = remote.strip()
    if not remote:
        return None, None
    m = _URL_REMOTE.match(remote) or _SCP_REMOTE.match(remote)
    if not m:
        return None, remote.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or None
    host, path = m.group(1), m.group(2)
    return f"https://{host}/{path}", path.rsplit("/", 1)[-1]
