"""What publish says about verification: on failure the --allow PLATFORM=GLOB line for
each error, which given back to publish accepts it; then a line per platform with its
counts and the command that shows every finding."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from cli_helpers import polyarch
from conftest import make_context
from faultproxy import LocalRegistry

from .helpers import WRONG_ARCH, assert_registry_empty


def test_publish_prints_the_allow_line_that_accepts_the_error(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    # The amd64 busybox tree in both variants: /bin/busybox is x86-64 on arm64, and every
    # applet links to it from /bin, a directory of the default PATH.
    ctx = make_context(tmp_path / "ctx", dockerfile=WRONG_ARCH)
    ref = f"{own_registry.address}/team/app:1"
    run = polyarch("publish", "--engine", "docker", "-t", ref, str(ctx))
    assert run.code == 5, run.text
    assert "reached: in /bin, a directory of the config's PATH" in run.err, run.err
    lines = re.findall(r"^\s*(--allow \S+)\s*$", run.err, re.M)
    assert lines == ["--allow linux/arm64=/bin/busybox"], run.err
    assert re.search(r"^\s*linux/arm64: 1 error, 0 warnings, \d+ notes?", run.err, re.M)
    assert_registry_empty(own_registry, "team/app")

    accepted = polyarch("publish", "--engine", "docker", "-t", ref,
                        *shlex.split(lines[0]), str(ctx))
    assert accepted.code == 0, accepted.text
    out = accepted.text
    assert re.search(r"linux/arm64: 0 errors, 0 warnings, 1 note \(polyarch verify --json "
                     + re.escape(ref) + r" shows them\)", out), out
    assert re.search(r"linux/amd64: 0 errors, 0 warnings, 0 notes$", out, re.M), out
