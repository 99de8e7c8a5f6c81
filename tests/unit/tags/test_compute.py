"""Tag rules (docker/metadata-action syntax) and git state from CI variables: pure logic.

Expected values in the tables are the ones metadata-action's README documents for the
same ref and spec, except where a row says ``# deviation``: those are polyarch's
deliberate change (``latest=auto``: pre-releases never take ``latest``; docs/tags.md).
The cases of metadata-action's own test suite are in test_metadata_action_cases.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from polyarch.errors import UsageError
from polyarch.refs import check_tag
from polyarch.tags import compute, parse_flavor, parse_specs, sanitize_tag
from polyarch.tags.gitinfo import GitContext, github_context, gitlab_context
from polyarch.tags.versions import parse_semver
from polyarch.tags.worktree import web_url

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
NOW = datetime(2020, 1, 10, 0, 30, 0, tzinfo=UTC)
SEMVER_EXAMPLE = (
    "type=ref,event=branch",
    "type=ref,event=pr",
    "type=semver,pattern={{version}}",
    "type=semver,pattern={{major}}.{{minor}}",
)


def ctx_for(ref: str, **kw: Any) -> GitContext:
    kw.setdefault("default_branch", "master")
    return GitContext.from_ref(ref, kw.pop("sha", SHA), **kw)


def tags_for(specs: tuple[str, ...] | list[str], ref: str, flavor: tuple[str, ...] = (),
             existing: list[str] | None = None, **kw: Any) -> list[str]:
    return compute(specs, flavor, ctx_for(ref, **kw), existing_tags=existing, now=NOW).tags


# -- metadata-action's documented tables --------------------------------------------

@pytest.mark.parametrize(("ref", "expected"), [
    ("refs/pull/2/merge", ["pr-2"]),
    ("refs/heads/master", ["master"]),
    ("refs/heads/releases/v1", ["releases-v1"]),
    ("refs/tags/v1.2.3", ["v1.2.3", "latest"]),
    ("refs/tags/v2.0.8-beta.67", ["v2.0.8-beta.67"]),  # deviation: no latest for a pre-release
])
def test_default_specs_tag_by_ref(ref: str, expected: list[str]) -> None:
    assert tags_for((), ref) == expected


@pytest.mark.parametrize(("ref", "expected"), [
    ("refs/pull/2/merge", ["pr-2"]),
    ("refs/heads/master", ["master"]),
    ("refs/heads/releases/v1", ["releases-v1"]),
    ("refs/tags/v1.2.3", ["1.2.3", "1.2", "latest"]),
    ("refs/tags/v2.0.8-beta.67", ["2.0.8-beta.67"]),
])
def test_readme_semver_example_tags_by_ref(ref: str, expected: list[str]) -> None:
    assert tags_for(SEMVER_EXAMPLE, ref) == expected


@pytest.mark.parametrize(("tag", "pattern", "out"), [
    ("v1.2.3", "{{raw}}", "v1.2.3"),
    ("v1.2.3", "{{version}}", "1.2.3"),
    ("v1.2.3", "{{major}}.{{minor}}", "1.2"),
    ("v1.2.3", "v{{major}}", "v1"),
    ("v1.2.3", "{{minor}}", "2"),
    ("v1.2.3", "{{patch}}", "3"),
    ("v2.0.8-beta.67", "{{raw}}", "v2.0.8-beta.67"),
    ("v2.0.8-beta.67", "{{version}}", "2.0.8-beta.67"),
    ("v2.0.8-beta.67", "{{major}}.{{minor}}", "2.0.8-beta.67"),
    ("v2.0.8-beta.67", "{{ major }}", "2.0.8-beta.67"),
    ("0.1.2", "{{major}}", "0"),
    ("v1.2.3+build.5", "{{version}}", "1.2.3"),
    ("v1.2.3+build.5", "{{raw}}", "v1.2.3-build.5"),
])
def test_semver_patterns_render_version_parts(tag: str, pattern: str, out: str) -> None:
    plan = compute([f"type=semver,pattern={pattern}"], ["latest=false"],
                   ctx_for(f"refs/tags/{tag}"), now=NOW)
    assert plan.tags == [out]
    assert plan.version == out


def test_semver_not_a_version_is_skipped_with_a_warning() -> None:
    plan = compute(["type=semver,pattern={{version}}", "type=ref,event=tag"], [],
                   ctx_for("refs/tags/release-2020"), now=NOW)
    assert plan.tags == ["release-2020", "latest"]
    assert any("not a semantic version" in w for w in plan.warnings)


def test_semver_value_attribute_works_on_a_branch() -> None:
    assert tags_for(["type=semver,pattern={{version}},value=v1.0.0"], "refs/heads/master") == [
        "1.0.0", "latest"]
    assert tags_for(["type=semver,pattern={{version}}"], "refs/heads/master") == []


def test_bake_example_order() -> None:
    specs = (*SEMVER_EXAMPLE, "type=sha")
    sha = "90dd6032fac8bda1b6c4436a2e65de27961ed071"
    plan = compute(specs, [], ctx_for("refs/tags/v1.2.3", sha=sha), now=NOW)
    assert plan.tags == ["1.2.3", "1.2", "sha-90dd603", "latest"]
    assert plan.labels["org.opencontainers.image.version"] == "1.2.3"
    assert plan.labels["org.opencontainers.image.revision"] == sha
    assert plan.labels["org.opencontainers.image.created"] == "2020-01-10T00:30:00.000Z"


@pytest.mark.parametrize(("tag", "spec", "out"), [
    ("v1.2.3", r"type=match,pattern=\d.\d.\d", "1.2.3"),
    ("v2.0.8-beta.67", "type=match,pattern=v(.*),group=1", "2.0.8-beta.67"),
    ("v2.0.8-beta.67", r"type=match,pattern=v(\d.\d),group=1", "2.0"),
    ("20200110-RC2", r"type=match,pattern=\d+", "20200110"),
    ("p1/v1.2.3", r"type=match,pattern=p1/v(\d.\d.\d),group=1", "1.2.3"),
    ("V1.2.3", r"type=match,pattern=/v(\d.\d.\d)/i,group=1", "1.2.3"),
])
def test_match_spec_takes_the_regex_group(tag: str, spec: str, out: str) -> None:
    assert tags_for([spec], f"refs/tags/{tag}", ("latest=false",)) == [out]


def test_match_without_a_match_gives_nothing() -> None:
    plan = compute([r"type=match,pattern=x(\d)"], [], ctx_for("refs/tags/v1"), now=NOW)
    assert plan.tags == [] and plan.warnings


@pytest.mark.parametrize(("ref", "spec", "default", "expected"), [
    ("refs/heads/master", "type=edge", "master", ["edge"]),
    ("refs/heads/main", "type=edge", "master", []),
    ("refs/heads/develop", "type=edge,branch=develop", "master", ["edge"]),
    ("refs/tags/v1.0.0", "type=edge", "master", []),
    ("refs/pull/3/merge", "type=edge", "master", []),
])
def test_edge_tag_only_on_the_edge_branch(ref: str, spec: str, default: str, expected: list[str]) -> None:
    assert tags_for([spec], ref, default_branch=default) == expected


def test_edge_with_unknown_default_branch_warns() -> None:
    plan = compute(["type=edge"], [], ctx_for("refs/heads/x", default_branch=None), now=NOW)
    assert plan.tags == [] and "default branch is unknown" in plan.warnings[0]


@pytest.mark.parametrize(("ref", "event", "expected"), [
    ("refs/pull/2/merge", "pr", ["pr-2"]),
    ("refs/heads/master", "branch", ["master"]),
    ("refs/heads/my/branch", "branch", ["my-branch"]),
    ("refs/tags/v1.2.3", "tag", ["v1.2.3", "latest"]),
    ("refs/tags/v2.0.8-beta.67", "tag", ["v2.0.8-beta.67"]),  # deviation: no latest
    ("refs/heads/master", "tag", []),
    ("refs/tags/v1.2.3", "branch", []),
])
def test_ref_spec_tags_only_its_event(ref: str, event: str, expected: list[str]) -> None:
    assert tags_for([f"type=ref,event={event}"], ref) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    ("type=raw,value=foo", ["foo"]),
    ("type=raw,foo", ["foo"]),
    ("foo", ["foo"]),
    ("type=raw,value=mytag-{{branch}}-{{sha}}", ["mytag-my-branch-860c190"]),
    ("type=raw,value=", []),
    ('type=raw,"value=a,b"', ["a-b"]),
])
def test_raw_spec_takes_its_value_sanitised(spec: str, expected: list[str]) -> None:
    assert tags_for([spec], "refs/heads/my/branch") == expected


@pytest.mark.parametrize(("spec", "length", "expected"), [
    ("type=sha", 7, "sha-860c190"),
    ("type=sha,format=long", 7, f"sha-{SHA}"),
    ("type=sha,prefix=", 7, "860c190"),
    ("type=sha,prefix={{branch}}-", 7, "main-860c190"),
    ("type=sha", 12, "sha-860c1904a1ce"),
])
def test_sha_spec_short_long_and_prefixed(spec: str, length: int, expected: str) -> None:
    assert tags_for([spec], "refs/heads/main", short_sha_length=length) == [expected]


def test_sha_without_commit_gives_nothing() -> None:
    assert tags_for(["type=sha"], "refs/heads/main", sha="") == []


def test_priority_orders_tags_and_decides_version_and_latest() -> None:
    specs = ["type=sha", "type=semver,pattern={{version}}", "type=raw,value=stable"]
    plan = compute(specs, [], ctx_for("refs/tags/v1.2.3"), now=NOW)
    assert plan.tags == ["1.2.3", "stable", "sha-860c190", "latest"]
    # The highest-priority tag decides latest (metadata-action): sha never takes it.
    plan = compute(["type=sha,priority=1001", *specs[1:]], [], ctx_for("refs/tags/v1.2.3"),
                   now=NOW)
    assert plan.tags == ["sha-860c190", "1.2.3", "stable"]
    assert plan.version == "sha-860c190"
    assert not plan.latest


def test_equal_priorities_keep_their_order_and_duplicates_collapse() -> None:
    specs = ["type=raw,value=b", "type=raw,value=a", "type=raw,value=b"]
    assert tags_for(specs, "refs/heads/x") == ["b", "a"]


@pytest.mark.parametrize(("ref", "expected"), [
    ("refs/heads/master", ["latest"]),
    ("refs/heads/dev", []),
    ("refs/tags/v1.0.0", []),
])
def test_enable_is_default_branch(ref: str, expected: list[str]) -> None:
    assert tags_for(["type=raw,value=latest,enable={{is_default_branch}}"], ref) == expected


def test_enable_false_skips() -> None:
    assert tags_for(["type=ref,event=branch,enable=false", "type=raw,value=x"],
                    "refs/heads/master") == ["x"]


@pytest.mark.parametrize(("flavor", "ref", "spec", "expected"), [
    (["prefix=v"], "refs/tags/v1.2.3", "type=semver,pattern={{version}}", ["v1.2.3", "latest"]),
    (["prefix=v,onlatest=true"], "refs/tags/v1.2.3", "type=semver,pattern={{version}}",
     ["v1.2.3", "vlatest"]),
    (["suffix=-alpine"], "refs/tags/v1.2.3", "type=semver,pattern={{version}}",
     ["1.2.3-alpine", "latest"]),
    (["suffix=-alpine,onlatest=true"], "refs/tags/v1.2.3", "type=semver,pattern={{version}}",
     ["1.2.3-alpine", "latest-alpine"]),
    (["prefix=app-,onlatest=true", "suffix=-slim,onlatest=true"], "refs/tags/v1.2.3",
     "type=semver,pattern={{version}}", ["app-1.2.3-slim", "app-latest-slim"]),
    (["latest=false"], "refs/tags/v1.2.3", "type=semver,pattern={{version}}", ["1.2.3"]),
    (["latest=true"], "refs/heads/master", "type=ref,event=branch", ["master", "latest"]),
    (["latest=auto"], "refs/heads/master", "type=ref,event=branch", ["master"]),
    # A spec's own prefix= (even empty) wins over the flavor prefix...
    (["prefix=x-"], "refs/heads/dev", "type=ref,event=branch,prefix=", ["dev"]),
    (["prefix=x-"], "refs/heads/dev", "type=ref,event=branch,prefix=y-", ["y-dev"]),
    # ...so sha (default prefix sha-) and pr (pr-) keep theirs, but take the flavor suffix.
    (["prefix=x-", "suffix=-s"], "refs/heads/dev", "type=sha", ["sha-860c190-s"]),
    (["prefix=x-"], "refs/pull/4/merge", "type=ref,event=pr", ["pr-4"]),
    (["prefix={{branch}}-"], "refs/heads/dev", "type=raw,value=b", ["dev-b"]),
])
def test_flavor_prefix_suffix_and_latest_apply(flavor: list[str], ref: str, spec: str,
                                               expected: list[str]) -> None:
    assert tags_for([spec], ref, tuple(flavor)) == expected


def test_flavor_parses_latest_prefix_and_suffix() -> None:
    f = parse_flavor(["latest=false", "prefix=a,onlatest=true", "suffix=b"])
    assert (f.latest, f.prefix, f.prefix_latest, f.suffix, f.suffix_latest) == (
        "false", "a", True, "b", False)


@pytest.mark.parametrize(("ref", "template", "expected"), [
    ("refs/heads/my/branch", "{{branch}}", "my-branch"),
    ("refs/pull/2/merge", "x{{branch}}", "x"),
    ("refs/tags/v1.2.3", "{{tag}}", "v1.2.3"),
    ("refs/heads/master", "x{{tag}}", "x"),
    ("refs/heads/master", "{{sha}}", "860c190"),
    ("refs/pull/2/merge", "{{base_ref}}", "master"),
    ("refs/heads/master", "x{{base_ref}}", "x"),
    ("refs/heads/master", "{{is_default_branch}}", "true"),
    ("refs/heads/feat", "{{is_default_branch}}", "false"),
    ("refs/heads/master", "{{date 'YYYYMMDD'}}", "20200110"),
    ("refs/heads/master", "{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", "20200110-093000"),
    ("refs/heads/master", "{{commit_date 'YYYY-MM-DD[T]HH'}}", "2019-12-31T23"),
])
def test_global_expressions_expand_in_values(ref: str, template: str, expected: str) -> None:
    ctx = ctx_for(ref, base_ref="master" if ref.startswith("refs/pull") else None,
                  commit_time=datetime(2019, 12, 31, 23, 59, tzinfo=UTC))
    assert compute([f"type=raw,value={template}"], [], ctx, now=NOW).tags == [expected]


@pytest.mark.parametrize(("scheduled", "spec", "expected"), [
    (True, "type=schedule", ["nightly"]),
    (True, "type=schedule,pattern={{date 'YYYYMMDD'}}", ["20200110"]),
    (True, "type=schedule,pattern={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", ["20200110-093000"]),
    (False, "type=schedule", []),
])
def test_schedule_spec_tags_only_scheduled_runs(scheduled: bool, spec: str, expected: list[str]) -> None:
    ctx = ctx_for("refs/heads/master", scheduled=scheduled)
    assert compute([spec], [], ctx, now=NOW).tags == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("feature/Foo#1", "feature-Foo-1"),
    ("a//b@@c", "a-b-c"),
    ("-x", "x"),
    ("ünïcode", "n-code"),
])
def test_sanitize_makes_a_valid_tag(raw: str, expected: str) -> None:
    assert sanitize_tag(raw) == expected


def test_long_branch_names_become_distinct_valid_tags() -> None:
    a = tags_for(["type=ref,event=branch"], "refs/heads/" + "x" * 200 + "a")
    b = tags_for(["type=ref,event=branch"], "refs/heads/" + "x" * 200 + "b")
    assert len(a[0]) == 128 and len(b[0]) == 128 and a != b
    check_tag(a[0])


# -- the latest rule against tags already in the registry ------------------------------

SEMVER3 = ("type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}")


@pytest.mark.parametrize(("tag", "existing", "flavor", "latest"), [
    ("v1.9.1", ["2.0.0", "1.9.0", "2.0", "latest"], (), False),   # patch of an older line
    ("v2.1.0", ["2.0.0", "1.9.0", "latest"], (), True),
    ("v2.0.0", ["2.0.0", "1.9.0", "latest"], (), True),           # rebuild / re-run of the top
    ("v2.0.0", ["2.1.0-rc.1", "1.0.0"], (), True),                # registry pre-releases ignored
    ("v3.0.0-rc.1", [], (), False),                               # pre-release: never
    ("v3.0.0-rc.1", ["1.0.0"], ("latest=true",), True),           # explicit latest=true wins
    ("v1.9.1", ["v2.0.0"], (), False),                            # v-prefixed tags count
    ("v1.9.1", ["2", "2.0", "sha-abc", "edge"], (), True),        # partial versions do not
    ("v2.1.0", ["2.0.0-alpine", "3.0.0"], ("suffix=-alpine",), True),  # other variant ignored
    ("v2.1.0", ["3.0.0-alpine"], ("suffix=-alpine",), False),
    ("v1.9.1", ["2.0.0"], ("latest=false",), False),
])
def test_latest_only_for_the_highest_release_in_the_registry(tag: str, existing: list[str],
                                                             flavor: tuple[str, ...], latest: bool) -> None:
    plan = compute(SEMVER3, flavor, ctx_for(f"refs/tags/{tag}"), existing_tags=existing, now=NOW)
    assert plan.latest is latest, plan.latest_reason
    assert any(t.endswith("latest") or t.startswith("latest") for t in plan.tags) is latest


def test_latest_rule_without_existing_tags_follows_metadata_action() -> None:
    assert tags_for(SEMVER3, "refs/tags/v1.9.1") == ["1.9.1", "1.9", "latest"]
    assert tags_for(["type=ref,event=tag"], "refs/tags/release-x") == ["release-x", "latest"]
    # With the registry's tags known, a tag that is no version cannot prove it is newest.
    assert tags_for(["type=ref,event=tag"], "refs/tags/release-x", existing=[]) == ["release-x"]


def test_1_9_1_after_2_0_0_keeps_its_own_tags() -> None:
    plan = compute(SEMVER3, [], ctx_for("refs/tags/v1.9.1"), existing_tags=["2.0.0", "latest"],
                   now=NOW)
    assert plan.tags == ["1.9.1", "1.9"]
    assert "2.0.0" in plan.latest_reason


def test_semver_precedence_and_invalid_versions() -> None:
    keys = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
            "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    parsed = [parse_semver(k) for k in keys]
    assert all(p is not None for p in parsed)
    ks = [p.key() for p in parsed if p]
    assert ks == sorted(ks) and len(set(ks)) == len(ks)
    for bad in ("1.2", "01.2.3", "1.2.3-01", "V1.2.3", "1.2.3.4", ""):
        assert parse_semver(bad) is None, bad


# -- labels --------------------------------------------------------------------------

def test_labels_and_annotations() -> None:
    ctx = ctx_for("refs/tags/v1.2.3", repo_url="https://github.com/octocat/Hello-World",
                  repo_name="Hello-World")
    plan = compute(["type=semver,pattern={{version}}"], [], ctx,
                   meta={"description": "This your first repo!", "licenses": "MIT"}, now=NOW)
    p = "org.opencontainers.image."
    assert plan.labels == {
        p + "created": "2020-01-10T00:30:00.000Z",
        p + "description": "This your first repo!",
        p + "licenses": "MIT",
        p + "revision": SHA,
        p + "source": "https://github.com/octocat/Hello-World",
        p + "title": "Hello-World",
        p + "url": "https://github.com/octocat/Hello-World",
        p + "version": "1.2.3",
    }
    assert plan.annotations == plan.labels
    plan = compute([], [], ctx, meta={"title": "Other", "url": "https://example.org"}, now=NOW)
    assert plan.labels[p + "title"] == "Other"
    assert plan.labels[p + "url"] == "https://example.org"
    assert plan.labels[p + "source"] == "https://github.com/octocat/Hello-World"
    with pytest.raises(UsageError, match="licence"):
        compute([], [], ctx, meta={"licence": "MIT"})


# -- bad input -----------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "words"), [
    ("type=semvr,pattern={{version}}", "did you mean 'semver'"),
    ("type=semver", "needs pattern="),
    ("type=ref", "event=branch|tag|pr"),
    ("type=ref,event=push", "event=branch|tag|pr"),
    ("type=raw", "needs value="),
    ("type=sha,format=medium", "format=short"),
    ("type=sha,prefx=a", "did you mean 'prefix'"),
    ("type=raw,value=a,priority=high", "not a whole number"),
    ("type=match,pattern=x,group=one", "group number"),
    ("type=match,pattern=(", "bad regular expression"),
    ("type=raw,value=x,enable=yes", "true or false"),
    ("type=raw,value={{brnach}}", "did you mean 'branch'"),
    ("type=raw,value=${{ github.ref_name }}", "GitHub Actions expression"),
    ("type=schedule,pattern={{date 'YYYY' tz='Mars/Base'}}", "time zone"),
    ("type=pep440", "needs pattern="),
    ("type=semver,pattern={{version}},match=(", "bad regular expression"),
    ("type=raw,value=a,value=b", "given twice"),
])
def test_bad_tag_specs_say_what_is_wrong(spec: str, words: str) -> None:
    ctx = ctx_for("refs/heads/master", scheduled=True)
    with pytest.raises(UsageError) as e:
        compute([spec], [], ctx, now=NOW)
    assert spec.split(",")[0] in e.value.line()
    assert words in e.value.line()


@pytest.mark.parametrize(("flavor", "words"), [
    ("latest=maybe", "latest=auto"),
    ("prefx=a", "did you mean 'prefix'"),
    ("onlatest=true", "must follow"),
    ("suffix=a,onlatest=yes", "onlatest=true"),
    ("latest", "not key=value"),
])
def test_bad_flavors_say_what_is_wrong(flavor: str, words: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_flavor([flavor])
    assert flavor in e.value.line() and words in e.value.line()


def test_comments_and_blank_spec_lines_are_skipped() -> None:
    assert [s.text for s in parse_specs(["# c", "", "type=sha"])] == ["type=sha"]


@pytest.mark.parametrize(("remote", "url", "name"), [
    ("git@github.com:octo/app.git", "https://github.com/octo/app", "app"),
    ("https://github.com/octo/app.git", "https://github.com/octo/app", "app"),
    ("https://tok:x-oauth@github.com/octo/app", "https://github.com/octo/app", "app"),
    ("ssh://git@gitlab.example:2222/g/sub/app.git", "https://gitlab.example/g/sub/app", "app"),
    ("/srv/git/app.git", None, "app"),
])
def test_git_remote_gives_web_url_and_name(remote: str, url: str | None, name: str) -> None:
    assert web_url(remote) == (url, name)


# -- git state from CI variables --------------------------------------------------------

def gh_env(event: str, ref: str, **extra: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_REF": ref,
            "GITHUB_SHA": SHA, "GITHUB_REPOSITORY": "octo/app",
            "GITHUB_SERVER_URL": "https://github.com", **extra}


@pytest.mark.parametrize(("event", "ref", "payload", "extra", "specs", "expected"), [
    ("push", "refs/heads/main", {"repository": {"default_branch": "main"}}, {},
     ["type=edge", "type=ref,event=branch"], ["edge", "main"]),
    ("push", "refs/tags/v1.2.3", {}, {}, SEMVER3, ["1.2.3", "1.2", "latest"]),
    ("pull_request", "refs/pull/7/merge", {}, {"GITHUB_BASE_REF": "main",
                                               "GITHUB_HEAD_REF": "feat"},
     ["type=ref,event=pr", "type=raw,value=into-{{base_ref}}", "type=ref,event=branch"],
     ["pr-7", "into-main"]),
    ("pull_request_target", "refs/heads/main", {"number": 9}, {}, ["type=ref,event=pr"],
     ["pr-9"]),
    ("schedule", "refs/heads/main", {}, {}, ["type=schedule", "type=ref,event=branch"],
     ["nightly", "main"]),
    ("workflow_dispatch", "refs/heads/main", {}, {}, [], ["main"]),
])
def test_github_actions_events_give_their_tags(event: str, ref: str, payload: dict[str, Any],
                                               extra: dict[str, str], specs: list[str],
                                               expected: list[str]) -> None:
    ctx = github_context(gh_env(event, ref, **extra), payload)
    assert ctx.source == "github" and ctx.sha == SHA
    assert ctx.repo_url == "https://github.com/octo/app" and ctx.repo_name == "app"
    assert compute(specs, [], ctx, now=NOW).tags == expected


def test_github_pr_head_sha_and_commit_time() -> None:
    head = "f" * 40
    payload = {"pull_request": {"head": {"sha": head}, "base": {"ref": "dev"}},
               "head_commit": {"id": SHA, "timestamp": "2022-02-02T10:00:00+01:00"}}
    ctx = github_context(gh_env("pull_request", "refs/pull/3/merge"), payload)
    assert ctx.sha == SHA and ctx.base_ref == "dev" and ctx.pr_number == "3"
    assert ctx.commit_time == datetime(2022, 2, 2, 9, tzinfo=UTC)
    ctx = github_context(gh_env("pull_request", "refs/pull/3/merge",
                                DOCKER_METADATA_PR_HEAD_SHA="true"), payload)
    assert ctx.sha == head


def test_github_is_default_branch_for_tag_events() -> None:
    ctx = github_context(gh_env("push", "refs/tags/v1.0.0"),
                         {"repository": {"default_branch": "main"}})
    assert not ctx.is_default_branch
    ctx = github_context(gh_env("schedule", "refs/heads/main"), {})
    assert ctx.is_default_branch  # no payload: GitHub schedules run on the default branch


def test_detect_reads_no_git_when_ci_says_everything(tmp_path: Path) -> None:
    # The unit-test guard fails any process start: detect must not run git here.
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"repository": {"default_branch": "main"},
                                "head_commit": {"id": SHA, "timestamp": "2022-02-02T10:00:00Z"}}))
    ctx = GitContext.detect(tmp_path, gh_env("push", "refs/heads/main",
                                             GITHUB_EVENT_PATH=str(path)))
    assert (ctx.event, ctx.default_branch, ctx.is_default_branch) == ("branch", "main", True)
    assert ctx.commit_time == datetime(2022, 2, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(("env", "event", "expected"), [
    ({"CI_COMMIT_TAG": "v2.3.4", "CI_COMMIT_REF_NAME": "v2.3.4"}, "tag",
     ["2.3.4", "2.3", "latest"]),
    ({"CI_MERGE_REQUEST_IID": "12", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
      "CI_COMMIT_REF_NAME": "feat"}, "pr", ["pr-12", "to-main"]),
    ({"CI_COMMIT_BRANCH": "main"}, "branch", ["edge", "main"]),
    ({"CI_COMMIT_BRANCH": "feat/x"}, "branch", ["feat-x"]),
    ({"CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "schedule"}, "branch",
     ["nightly", "edge", "main"]),
])
def test_gitlab_ci_variables_give_their_tags(tmp_path: Path, env: dict[str, str], event: str,
                                             expected: list[str]) -> None:
    full = {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA, "CI_DEFAULT_BRANCH": "main",
            "CI_PROJECT_URL": "https://gitlab.example/g/app", "CI_PROJECT_NAME": "app",
            "CI_COMMIT_TIMESTAMP": "2023-05-06T07:08:09+00:00", **env}
    ctx = GitContext.detect(tmp_path, full)  # everything given: no git
    assert ctx == gitlab_context(full)
    assert (ctx.source, ctx.event) == ("gitlab", event)
    assert ctx.commit_time == datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)
    specs = ["type=schedule", *SEMVER3, "type=edge", "type=ref,event=branch",
             "type=ref,event=pr", "type=raw,value=to-{{base_ref}},enable=" +
             ("true" if event == "pr" else "false")]
    plan = compute(specs, [], ctx, now=NOW)
    assert plan.tags == expected
    assert plan.labels["org.opencontainers.image.source"] == "https://gitlab.example/g/app"
