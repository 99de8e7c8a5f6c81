"""The GitHub Action and the GitLab template: well-formed, and every option they pass
is one polyarch takes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from polyarch import config
from polyarch.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def test_the_action_declares_the_outputs_polyarch_writes() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert set(action["outputs"]) == {"digest", "image", "tags", "metadata"}
    for name, out in action["outputs"].items():
        assert out["value"] == f"${{{{ steps.publish.outputs.{name} }}}}"


def test_the_action_passes_inputs_through_the_environment_only() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    for step in action["runs"]["steps"]:
        script = step.get("run", "")
        # An input interpolated into the script would be a shell injection.
        assert "${{ inputs." not in script, step.get("name")


def test_the_flags_the_action_passes_are_publish_flags() -> None:
    action = (ROOT / "action.yml").read_text()
    flags = set(re.findall(r"argv\+=\((--?[a-z-]+)", action))
    assert flags, "no flag found: the test reads the wrong thing"
    result = CliRunner().invoke(cli, ["publish", "--help"])
    assert result.exit_code == 0
    for flag in flags:
        assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,]", result.output), flag


def test_the_gitlab_template_sets_only_known_variables() -> None:
    doc = yaml.safe_load((ROOT / "templates/gitlab-ci.yml").read_text())
    job = doc[".polyarch-publish"]
    known = {o.env for o in config.OPTIONS} | {"POLYARCH_DOTENV", "POLYARCH_VERSION"}
    ours = {k for k in job["variables"] if k.startswith("POLYARCH_")}
    assert ours <= known, ours - known
    assert job["artifacts"]["reports"]["dotenv"] == job["variables"]["POLYARCH_DOTENV"]
