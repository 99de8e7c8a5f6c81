"""The composite action's inputs and the GitLab template's variables round-trip to
polyarch's options (src/polyarch/config/table.py): every input is documented, used,
and reaches polyarch through the environment, as its POLYARCH_* variable or as the
IN_<NAME> variable the script turns into the option's flag; every variable named
after an option names a real one. Everything is read from the files, so an input
added to them is checked without a change here."""

from __future__ import annotations

import re
from typing import Any

import pytest

from polyarch import config
from polyarch.config import Opt

from .ci_files import DOCS_CI, GITLAB_TEMPLATE, ROOT, load_action, load_gitlab

#: An option's variable (POLYARCH_TAG_SPECS) or the action's name for an input that its
#: script turns into flags (IN_TAG_SPECS).
POLYARCH_VAR = re.compile(r"^POLYARCH_[A-Z0-9_]+$")
INPUT_VAR = re.compile(r"^IN_[A-Z0-9_]+$")
INPUT_VALUE = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$")

OPTION_BY_ENV: dict[str, Opt] = {o.env: o for o in config.OPTIONS}
PUBLISH_BY_KEY: dict[str, Opt] = {
    key: o for o in config.OPTIONS if "publish" in o.commands for key in (o.key, *o.aliases)}


def _var_of(name: str, prefix: str) -> str:
    return prefix + name.upper().replace("-", "_")


def _steps() -> list[dict[str, Any]]:
    steps = load_action()["runs"]["steps"]
    assert steps, "action.yml has no steps"
    return list(steps)


def _inputs() -> dict[str, dict[str, Any]]:
    inputs = load_action()["inputs"]
    assert inputs, "action.yml declares no input"
    return dict(inputs)


def _carriers() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """input -> the (variable, step) pairs whose env passes it."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for step in _steps():
        for var, value in (step.get("env") or {}).items():
            m = INPUT_VALUE.match(str(value).strip())
            if m:
                found.setdefault(m.group(1), []).append((var, step))
    return found


def _reads(script: str, var: str) -> bool:
    return re.search(rf"\$\{{?{re.escape(var)}\b", script) is not None


def _polyarch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if re.match(r"\s*(\S*/)?polyarch\s", line)]


def _docs_ci_names() -> set[str]:
    """What docs/ci.md names in its prose: the first word of each `code span`
    (`sign: true` names sign, `POLYARCH_DOTENV=PATH` names POLYARCH_DOTENV)."""
    prose = re.sub(r"^```.*?^```", "", DOCS_CI.read_text(), flags=re.S | re.M)
    spans = re.findall(r"`([^`]+)`", prose)
    return {m.group(0) for m in (re.match(r"[\w$*.-]+", span) for span in spans) if m}


@pytest.mark.parametrize("name", sorted(_inputs()))
def test_every_action_input_is_documented_in_docs_ci(name: str) -> None:
    assert name in _docs_ci_names(), f"input {name!r} of action.yml is not in docs/ci.md"


@pytest.mark.parametrize("name", sorted(_inputs()))
def test_every_action_input_is_used_by_a_step(name: str) -> None:
    used = re.compile(rf"\binputs\.{re.escape(name)}(?![\w-])")
    assert any(used.search(str(step)) for step in _steps()), f"input {name!r} is never used"


def test_inputs_reach_the_steps_only_as_whole_environment_values() -> None:
    # `if:` may test an input; anywhere else an interpolated input would be copied
    # into a script or another action's argument unquoted.
    for step in _steps():
        for field, value in step.items():
            if field in ("env", "if"):
                continue
            assert "inputs." not in str(value), (step.get("name") or step.get("id"), field)
        for var, value in (step.get("env") or {}).items():
            if "inputs." in str(value):
                assert INPUT_VALUE.match(str(value).strip()), f"{var}: {value!r} is not one input"


@pytest.mark.parametrize("name", sorted(_inputs()))
def test_each_input_reaches_polyarch_through_the_environment(name: str) -> None:
    carriers = _carriers().get(name)
    assert carriers, f"input {name!r} is passed in no step's env"
    opt = PUBLISH_BY_KEY.get(name)
    for var, step in carriers:
        script = str(step.get("run", ""))
        if opt is None:
            # Not an option (args, version, ...): a documented exception, read by the
            # step's own script or by a tool that docs/ci.md names.
            assert not POLYARCH_VAR.match(var), f"{var} carries {name!r}, which is no option"
            assert _reads(script, var) or var in _docs_ci_names(), (
                f"{var} (input {name!r}) is read neither by its step nor named in docs/ci.md")
        elif POLYARCH_VAR.match(var):
            assert var == opt.env, f"input {name!r} is passed as {var}, its option reads {opt.env}"
        else:
            assert var == _var_of(name, "IN_"), f"input {name!r} is passed as {var}"
            assert _reads(script, var), f"the script never reads {var}"
            assert _polyarch_lines(script), "the step that reads it does not run polyarch"
            if opt.cli == "argument":
                assert any(_reads(line, var) for line in _polyarch_lines(script)), (
                    f"{var} is not polyarch's {opt.metavar} argument")
            else:
                passed = set(re.findall(r"argv\+=\((--?[A-Za-z0-9-]+)", script))
                assert passed & set(opt.flags), (
                    f"{var} is read, but none of {opt.flags} is passed to polyarch")


def test_every_polyarch_variable_the_action_sets_is_an_option() -> None:
    env_vars = [(var, value) for step in _steps() for var, value in (step.get("env") or {}).items()]
    inputs = _inputs()
    polyarch_vars = [var for var, _ in env_vars if POLYARCH_VAR.match(var)]
    input_vars = [(var, value) for var, value in env_vars if INPUT_VAR.match(var)]
    assert polyarch_vars or input_vars, "the action passes nothing to polyarch"
    for var in polyarch_vars:
        assert var in OPTION_BY_ENV, f"action.yml sets {var}, which is no polyarch option"
    for var, value in input_vars:
        m = INPUT_VALUE.match(str(value).strip())
        assert m and m.group(1) in inputs, f"{var} carries no input ({value!r})"
        assert var == _var_of(m.group(1), "IN_"), f"{var} carries input {m.group(1)!r}"


def _template_jobs() -> dict[str, dict[str, Any]]:
    jobs = {name: body for name, body in load_gitlab(GITLAB_TEMPLATE).items()
            if isinstance(body, dict) and "script" in body}
    assert jobs, "templates/gitlab-ci.yml defines no job"
    return jobs


def _job_scripts(job: dict[str, Any]) -> str:
    return "\n".join(str(job.get(key, "")) for key in ("before_script", "script", "after_script"))


def _polyarch_source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "src" / "polyarch").rglob("*.py")))


def test_every_polyarch_variable_of_the_gitlab_template_is_an_option_or_documented() -> None:
    variables = 0
    for name, job in _template_jobs().items():
        scripts = _job_scripts(job)
        assert _polyarch_lines(scripts), f"{name} does not run polyarch"
        for var in job.get("variables") or {}:
            if not POLYARCH_VAR.match(var):
                continue
            variables += 1
            if var in OPTION_BY_ENV:
                continue
            # No option: the template's own scripts read it (POLYARCH_VERSION), or
            # polyarch does (POLYARCH_DOTENV); either way docs/ci.md says what it is.
            assert _reads(scripts, var) or f'"{var}"' in _polyarch_source(), (
                f"{name} sets {var}: no option, read neither by its scripts nor by polyarch")
            assert var in _docs_ci_names(), f"{var} of templates/gitlab-ci.yml is not in docs/ci.md"
    assert variables, "the template sets no POLYARCH_* variable: the test reads the wrong thing"
