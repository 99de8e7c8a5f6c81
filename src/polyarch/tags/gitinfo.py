"""Git state for tag rules: which event is being built (branch, tag, pull request or
none), at which commit, and what the repository is called.

The state comes from, in this order:

1. the settings ``POLYARCH_GIT_REF`` / ``POLYARCH_GIT_SHA`` (explicit, any CI or none;
   with ``POLYARCH_BASE_REF``), resolved with the run's other settings
   (:mod:`polyarch.settings`);
2. GitHub Actions variables (``GITHUB_REF``, ``GITHUB_SHA``, ``GITHUB_EVENT_NAME``,
   ``GITHUB_BASE_REF``, and the event payload in ``GITHUB_EVENT_PATH``);
3. GitLab CI variables (``CI_COMMIT_TAG``, ``CI_MERGE_REQUEST_IID``, ``CI_COMMIT_BRANCH``,
   ``CI_COMMIT_SHA``, ``CI_DEFAULT_BRANCH``, ...);
4. the working tree (``git``), which also fills whatever the variables above left out
   (commit time, default branch, remote URL).

``POLYARCH_DEFAULT_BRANCH`` names the default branch of the state from 1. or 4.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from polyarch import settings
from polyarch.errors import EnvironmentProblem, UsageError
from polyarch.tags import worktree

EventKind = Literal["branch", "tag", "pr", "none"]

DEFAULT_SHORT_SHA_LENGTH = 7

_PR_REF = re.compile(r"^refs/pull/([^/]+)/(?:merge|head)$")


@dataclass(frozen=True)
class GitContext:
    """What is being built. ``ref_name`` is the branch name, tag name or PR number."""

    event: EventKind = "none"
    ref_name: str = ""
    sha: str = ""
    default_branch: str | None = None
    pr_number: str | None = None
    #: Target branch of a pull request (``{{base_ref}}``); for a tag push, the branch the
    #: CI payload names, if any.
    base_ref: str | None = None
    commit_time: datetime | None = None
    #: True for scheduled CI runs (``type=schedule`` only fires then).
    scheduled: bool = False
    #: CI event name as the CI system spells it (``push``, ``pull_request``, ``schedule``...).
    event_name: str = ""
    #: Web URL of the repository (``https://host/owner/name``), without credentials.
    repo_url: str | None = None
    repo_name: str | None = None
    #: The working tree has uncommitted changes (only known when read from git).
    dirty: bool = False
    #: Length of the short commit hash (``type=sha``, ``{{sha}}``).
    short_sha_length: int = DEFAULT_SHORT_SHA_LENGTH
    #: Where the state came from: ``env``, ``github``, ``gitlab``, ``git`` or ``none``.
    source: str = "none"
    notes: tuple[str, ...] = field(default=())

    # -- derived -------------------------------------------------------------
    @property
    def ref(self) -> str:
        """The full ref in GitHub's spelling (``refs/heads/x``, ``refs/tags/v1``,
        ``refs/pull/2/merge``), or ``""`` when nothing is checked out by name."""
        if self.event == "branch":
            return f"refs/heads/{self.ref_name}"
        if self.event == "tag":
            return f"refs/tags/{self.ref_name}"
        if self.event == "pr":
            return f"refs/pull/{self.pr_number or self.ref_name}/merge"
        return ""

    @property
    def branch(self) -> str:
        return self.ref_name if self.event == "branch" else ""

    @property
    def tag(self) -> str:
        return self.ref_name if self.event == "tag" else ""

    @property
    def is_default_branch(self) -> bool:
        if self.event == "branch" and self.default_branch and self.ref_name == self.default_branch:
            return True
        # GitHub runs these events on the last commit of the default branch.
        return self.source == "github" and any(
            k in self.event_name for k in ("create", "discussion", "issues", "schedule")
        )

    @property
    def short_sha(self) -> str:
        return self.sha[: self.short_sha_length]

    # -- construction --------------------------------------------------------
    @staticmethod
    def from_ref(ref: str, sha: str = "", **kw: Any) -> GitContext:
        """Build a context from a full ref (``refs/heads/main``, ``refs/tags/v1.2.3``,
        ``refs/pull/5/merge``); anything else means no named ref."""
        event, name, pr = _split_ref(ref)
        kw.setdefault("pr_number", pr)
        return GitContext(event=event, ref_name=name, sha=sha, **kw)

    @staticmethod
    def detect(cwd: Path, env: Mapping[str, str],
               given: settings.Settings | None = None) -> GitContext:
        """Read the git state from the settings ``given`` (default: the run's), the CI
        variables in ``env`` or the working tree at ``cwd``."""
        given = settings.current() if given is None else given
        short = _short_sha_length(env, given.short_sha_length)
        explicit = bool(given.git_ref or given.git_sha)
        ci: GitContext | None = None
        if explicit:
            ci = None
        elif env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_REF") is not None:
            ci = github_context(env, _payload(env), None, short)
        elif env.get("GITLAB_CI") and env.get("CI_COMMIT_SHA"):
            ci = gitlab_context(env, None, short)
        if ci is not None:
            # The working tree is read only for what the CI variables leave out.
            if ci.commit_time is None or ci.default_branch is None or not ci.sha:
                git = _read_git(cwd)
                sha = ci.sha or git.sha
                ci = _replace(
                    ci, sha=sha,
                    commit_time=ci.commit_time or (git.commit_time if sha == git.sha
                                                   else worktree.commit_time(cwd, sha)),
                    default_branch=ci.default_branch or git.default_branch,
                    repo_url=ci.repo_url or git.repo_url,
                    repo_name=ci.repo_name or git.repo_name, notes=git.notes)
            return ci
        git = _read_git(cwd)
        notes = list(git.notes)
        if explicit:
            # The setting's parser took only a full ref (refs/heads/..., refs/tags/...).
            ref = given.git_ref or ""
            sha = given.git_sha or git.sha
            event, name, pr = _split_ref(ref) if ref else (git.event, git.ref_name, git.pr_number)
            return GitContext(
                event=event, ref_name=name, sha=sha, pr_number=pr,
                default_branch=given.default_branch or git.default_branch,
                base_ref=given.base_ref,
                commit_time=git.commit_time if sha == git.sha else worktree.commit_time(cwd, sha),
                repo_url=git.repo_url, repo_name=git.repo_name, dirty=git.dirty,
                short_sha_length=short, source="env", notes=tuple(notes),
            )
        if given.default_branch:
            git = _replace(git, default_branch=given.default_branch)
        return _replace(git, short_sha_length=short)


def _replace(ctx: GitContext, **kw: Any) -> GitContext:
    from dataclasses import replace

    return replace(ctx, **kw)


def _split_ref(ref: str) -> tuple[EventKind, str, str | None]:
    if ref.startswith("refs/heads/"):
        return "branch", ref[len("refs/heads/"):], None
    if ref.startswith("refs/tags/"):
        return "tag", ref[len("refs/tags/"):], None
    m = _PR_REF.match(ref)
    if m:
        return "pr", m.group(1), m.group(1)
    return "none", "", None


def _short_sha_length(env: Mapping[str, str], setting: int | None) -> int:
    """The ``short_sha_length`` setting, else docker/metadata-action's variable, else 7."""
    if setting is not None:
        return setting
    var = "DOCKER_METADATA_SHORT_SHA_LENGTH"
    raw = env.get(var, "").strip()
    if raw:
        if not (raw.isascii() and raw.isdigit() and len(raw) < 10) or int(raw) < 1:
            raise UsageError(f"{var}={raw!r} is not a positive whole number",
                             hint="for example 7 or 12")
        return int(raw)
    return DEFAULT_SHORT_SHA_LENGTH


# -- working tree -------------------------------------------------------------

def _read_git(cwd: Path) -> GitContext:
    """The state of the working tree at ``cwd`` (five git calls, six when detached)."""
    try:
        both = worktree.git(cwd, "rev-parse", "--show-toplevel", "--symbolic-full-name", "HEAD")
    except EnvironmentProblem as e:
        import shutil

        if shutil.which("git") is not None:
            return GitContext(notes=(f"cannot run git in {cwd} ({e.message}): git state comes"
                                     " from CI variables only",))
        return GitContext(notes=("git is not installed: git state comes from CI variables only",))
    if both is not None:
        top, _, head = both.partition("\n")
    else:  # not a repository, or a branch without commits yet
        top = worktree.git(cwd, "rev-parse", "--show-toplevel") or ""
        if not top:
            return GitContext()
        head = worktree.git(cwd, "symbolic-ref", "-q", "HEAD") or ""
    sha, commit_time = "", None
    last = (worktree.git(cwd, "log", "-1", "--format=%H%n%cI", "HEAD", "--")
            if both is not None else None)
    if last:
        sha, _, when = last.partition("\n")
        commit_time = worktree.parse_time(when)
    event: EventKind = "none"
    name = ""
    if head.startswith("refs/heads/"):
        event, name = "branch", head[len("refs/heads/"):]
    elif sha:
        tags = (worktree.git(cwd, "tag", "--points-at", "HEAD", "--sort=-creatordate")
                or "").split()
        if tags:
            event, name = "tag", worktree.pick_tag(tags)
    remote = worktree.git(cwd, "remote", "get-url", "origin") or ""
    url, repo_name = worktree.web_url(remote)
    if repo_name is None:
        repo_name = Path(top).name
    status = worktree.git(cwd, "status", "--porcelain", "--untracked-files=no")
    return GitContext(
        event=event, ref_name=name, sha=sha, default_branch=worktree.default_branch(cwd),
        commit_time=commit_time, repo_url=url, repo_name=repo_name, dirty=bool(status),
        source="git",
    )


# -- CI ---------------------------------------------------------------------------

def _payload(env: Mapping[str, str]) -> dict[str, Any]:
    """The GitHub event payload (``GITHUB_EVENT_PATH``), or ``{}``."""
    import json

    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return {}
    return data if isinstance(data, dict) else {}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def github_context(env: Mapping[str, str], payload: Mapping[str, Any],
                   git: GitContext | None = None,
                   short: int = DEFAULT_SHORT_SHA_LENGTH) -> GitContext:
    """The state GitHub Actions describes in ``env`` and the event ``payload``; what they
    leave out comes from ``git`` (the working tree). Pure: the commit time stays
    ``None`` when neither the payload nor ``git`` knows it."""
    git = git or GitContext()
    event_name = env.get("GITHUB_EVENT_NAME", "")
    ref = env.get("GITHUB_REF", "")
    sha = env.get("GITHUB_SHA", "") or git.sha
    if "pull_request_target" in event_name:
        number = _get(payload, "number") or _get(payload, "pull_request", "number")
        if number is not None:
            ref = f"refs/pull/{number}/merge"
    head_sha_wanted = "true" in env.get("DOCKER_METADATA_PR_HEAD_SHA", "").lower()
    if "pull_request" in event_name and head_sha_wanted:
        head_sha = _get(payload, "pull_request", "head", "sha")
        if isinstance(head_sha, str) and head_sha:
            sha = head_sha
    event, name, pr = _split_ref(ref)
    base_ref: str | None = None
    if event == "pr":
        base_ref = env.get("GITHUB_BASE_REF") or _get(payload, "pull_request", "base", "ref")
    elif event == "tag":
        b = _get(payload, "base_ref")
        base_ref = b.removeprefix("refs/heads/") if isinstance(b, str) else None
    default_branch = _get(payload, "repository", "default_branch") or git.default_branch
    commit_time = None
    for c in _get(payload, "commits") or []:
        if isinstance(c, dict) and c.get("id") == sha:
            commit_time = worktree.parse_time(c.get("timestamp"))
    if commit_time is None and _get(payload, "head_commit", "id") == sha:
        commit_time = worktree.parse_time(_get(payload, "head_commit", "timestamp"))
    if commit_time is None and sha == git.sha:
        commit_time = git.commit_time
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repo = env.get("GITHUB_REPOSITORY", "")
    url = f"{server}/{repo}" if repo else git.repo_url
    return GitContext(
        event=event, ref_name=name, sha=sha, default_branch=default_branch, pr_number=pr,
        base_ref=base_ref or None, commit_time=commit_time,
        scheduled="schedule" in event_name, event_name=event_name,
        repo_url=url, repo_name=repo.rsplit("/", 1)[-1] if repo else git.repo_name,
        short_sha_length=short, source="github", notes=git.notes,
    )


def gitlab_context(env: Mapping[str, str], git: GitContext | None = None,
                   short: int = DEFAULT_SHORT_SHA_LENGTH) -> GitContext:
    """The state GitLab CI describes in ``env``; pure, like :func:`github_context`."""
    git = git or GitContext()
    sha = env.get("CI_COMMIT_SHA", "") or git.sha
    event: EventKind = "none"
    name = ""
    pr: str | None = None
    base: str | None = None
    if env.get("CI_COMMIT_TAG"):
        event, name = "tag", env["CI_COMMIT_TAG"]
    elif env.get("CI_MERGE_REQUEST_IID"):
        event, name = "pr", env["CI_MERGE_REQUEST_IID"]
        pr = name
        base = env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or None
    elif env.get("CI_COMMIT_BRANCH"):
        event, name = "branch", env["CI_COMMIT_BRANCH"]
    commit_time = worktree.parse_time(env.get("CI_COMMIT_TIMESTAMP"))
    if commit_time is None and sha == git.sha:
        commit_time = git.commit_time
    source_kind = env.get("CI_PIPELINE_SOURCE", "")
    return GitContext(
        event=event, ref_name=name, sha=sha, pr_number=pr, base_ref=base,
        default_branch=env.get("CI_DEFAULT_BRANCH") or git.default_branch,
        commit_time=commit_time, scheduled=source_kind == "schedule", event_name=source_kind,
        repo_url=env.get("CI_PROJECT_URL") or git.repo_url,
        repo_name=env.get("CI_PROJECT_NAME") or git.repo_name,
        short_sha_length=short, source="gitlab", notes=git.notes,
    )
