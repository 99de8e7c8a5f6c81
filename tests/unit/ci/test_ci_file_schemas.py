"""action.yml, the workflow examples and the GitLab files against the schemas GitHub and
GitLab publish: the GitHub Actions and GitHub workflow schemas of SchemaStore and
GitLab's CI schema, as check-jsonschema vendors them (package data: no network). The
checker runs in process through its command line, with the options its own pre-commit
hook passes for each schema (for GitLab: the ``gitlab-ci`` data transform, which reads
``!reference`` tags, and the non-unicode regex variant)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from check_jsonschema import main as check_jsonschema
from check_jsonschema.catalog import SCHEMA_CATALOG
from click.testing import CliRunner, Result

from .ci_files import ACTION, GITLAB_TEMPLATE, ROOT, gitlab_files, load_gitlab, workflow_examples


def check(schema: str, *paths: Path) -> Result:
    """check-jsonschema --builtin-schema vendor.SCHEMA, as its pre-commit hook runs it."""
    hook_args = SCHEMA_CATALOG[schema]["hook_config"].get("add_args", [])
    args = ["--builtin-schema", f"vendor.{schema}", *hook_args, "--color", "never", "--verbose",
            *map(str, paths)]
    return CliRunner().invoke(check_jsonschema, args)


def assert_valid(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output


def assert_invalid(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Schema validation errors were encountered" in result.output
    for fragment in fragments:
        assert fragment in result.output


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_files_to_check_are_there() -> None:
    assert ACTION.is_file()
    assert workflow_examples(), "no GitHub workflow in docs/ci/"
    assert len(gitlab_files()) >= 2, "the GitLab template or docs/ci/gitlab-ci.yml is missing"


def test_the_action_matches_the_github_actions_schema() -> None:
    assert_valid(check("github-actions", ACTION))


@pytest.mark.parametrize("path", workflow_examples(), ids=_rel)
def test_the_workflow_examples_match_the_github_workflow_schema(path: Path) -> None:
    assert_valid(check("github-workflows", path))


@pytest.mark.parametrize("path", gitlab_files(), ids=_rel)
def test_the_gitlab_files_match_the_gitlab_ci_schema(path: Path) -> None:
    assert_valid(check("gitlab-ci", path))


def test_the_gitlab_template_jobs_are_valid_jobs_once_extended(tmp_path: Path) -> None:
    # The schema takes anything under a hidden key (.name). A job that `extends:` one
    # gets all of it, so each hidden job with a script is checked as that job would be.
    jobs = {name[1:]: body for name, body in load_gitlab(GITLAB_TEMPLATE).items()
            if name.startswith(".") and isinstance(body, dict) and "script" in body}
    assert jobs, "templates/gitlab-ci.yml: no hidden job to extend"
    extended = tmp_path / "extended.gitlab-ci.yml"
    extended.write_text(yaml.safe_dump(jobs, sort_keys=False))
    assert_valid(check("gitlab-ci", extended))


# The checks can fail: cases of our own, each with one mistake the schema forbids.

def test_a_composite_run_step_without_a_shell_fails_the_actions_schema(tmp_path: Path) -> None:
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n"
                   "    - run: echo hi\n")
    assert_invalid(check("github-actions", bad), "shell")


def test_a_job_without_runs_on_fails_the_workflow_schema(tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yml"
    bad.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n")
    assert_invalid(check("github-workflows", bad), "runs-on")


def test_a_misspelt_job_key_fails_the_gitlab_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gitlab-ci.yml"
    bad.write_text("publish:\n  script: [echo hi]\n  artifact:\n    paths: [out]\n")
    assert_invalid(check("gitlab-ci", bad), "'artifact' was unexpected")


def test_a_misspelt_key_of_a_hidden_job_fails_once_extended(tmp_path: Path) -> None:
    template = tmp_path / "template.yml"
    template.write_text(".publish:\n  script: [echo hi]\n  artifact:\n    paths: [out]\n")
    assert_valid(check("gitlab-ci", template))  # why the hidden jobs are checked as jobs
    jobs = {name[1:]: body for name, body in load_gitlab(template).items()}
    extended = tmp_path / "extended.gitlab-ci.yml"
    extended.write_text(yaml.safe_dump(jobs))
    assert_invalid(check("gitlab-ci", extended), "'artifact' was unexpected")


def test_gitlab_reference_tags_are_read_as_gitlab_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "ref.gitlab-ci.yml"
    path.write_text(".setup:\n  script: [apk add git]\n"
                    "publish:\n  script:\n    - !reference [.setup, script]\n    - make\n")
    assert_valid(check("gitlab-ci", path))
    assert load_gitlab(path)["publish"]["script"] == [[".setup", "script"], "make"]
    # a !reference that is no list is rejected, by the checker and by the test's loader
    path.write_text("publish:\n  script: !reference .setup\n")
    assert check("gitlab-ci", path).exit_code != 0
    with pytest.raises(yaml.YAMLError):
        load_gitlab(path)
