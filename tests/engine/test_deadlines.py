"""Deadlines on the commands polyarch runs, through the real CLI: a credential helper
that hangs ends the run with exit 3 and a line naming it, and stops it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cli_helpers import last_error_line, polyarch
from faultproxy import LocalRegistry


def test_a_hung_credential_helper_is_stopped(tmp_path: Path, auth_registry: LocalRegistry) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pidfile = tmp_path / "helper.pid"
    helper = bindir / "docker-credential-hang"
    helper.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    helper.chmod(0o755)
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "hang"}))
    t0 = time.monotonic()
    run = polyarch("inspect", f"{auth_registry.address}/team/app:1", timeout=120,
                   env={"DOCKER_CONFIG": str(cfg), "POLYARCH_COMMAND_TIMEOUT": "2",
                        "PATH": f"{bindir}:{os.environ['PATH']}"})
    took = time.monotonic() - t0
    assert run.code == 3, run.err
    assert "Traceback" not in run.text
    assert last_error_line(run).startswith(
        "polyarch: error: credential helper docker-credential-hang did not answer within 2 s"
        f" for {auth_registry.address}")
    assert took < 30
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z", f"the helper ({pid}) still runs"
    except ProcessLookupError:
        pass
