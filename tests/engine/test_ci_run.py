""".ci/run itself, with stand-ins for scripts/test and the engine scripts (a copy of the
script in a scratch tree: the real engine is shared and must not be stopped here)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def scratch(tmp: Path, test_body: str) -> Path:
    (tmp / ".ci").mkdir()
    (tmp / "scripts").mkdir()
    shutil.copy(ROOT / ".ci/run", tmp / ".ci/run")
    log = tmp / "log"
    for name in ("engine", "engine2"):
        (tmp / "scripts" / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    (tmp / "scripts/test").write_text(f"#!/bin/bash\necho \"test $*\" >> {log}\n{test_body}\n")
    for f in (tmp / "scripts").iterdir():
        f.chmod(0o755)
    return log


def test_success_stops_both_engines(tmp_path: Path) -> None:
    log = scratch(tmp_path, "exit 0")
    r = subprocess.run([str(tmp_path / ".ci/run"), "-k", "x"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0].startswith("test -p no:cacheprovider --reruns 1") and lines[0].endswith("-k x")
    assert lines[1:] == ["engine2 down", "engine down"]


def test_no_tests_collected_is_a_failure(tmp_path: Path) -> None:
    log = scratch(tmp_path, "exit 5")
    r = subprocess.run([str(tmp_path / ".ci/run")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 5
    assert "collected no tests" in r.stderr
    assert log.read_text().splitlines()[1:] == ["engine2 down", "engine down"]


def test_failure_stops_both_engines(tmp_path: Path) -> None:
    log = scratch(tmp_path, "exit 1")
    r = subprocess.run([str(tmp_path / ".ci/run")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert log.read_text().splitlines()[1:] == ["engine2 down", "engine down"]


def terminated(tmp_path: Path, log: Path, env: dict[str, str] | None = None
               ) -> tuple[subprocess.Popen[bytes], float]:
    """.ci/run started, given SIGTERM once its tests run: the process and when."""
    p = subprocess.Popen([str(tmp_path / ".ci/run")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 20
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    return p, t0


def test_sigterm_reaches_the_tests_and_stops_the_engines(tmp_path: Path) -> None:
    log = scratch(tmp_path, f'trap "echo tests-got-TERM >> {tmp_path}/log; exit 3" TERM\n'
                            "sleep 60 & wait")
    p, t0 = terminated(tmp_path, log)
    assert p.wait(30) == 143
    assert time.monotonic() - t0 < 10  # not after the tests' own 60 s
    assert log.read_text().splitlines()[1:] == ["tests-got-TERM", "engine2 down", "engine down"]


def test_tests_that_ignore_sigterm_are_killed_after_the_grace(tmp_path: Path) -> None:
    """A test run that goes on after SIGTERM (a test that turned it into an exception and
    was counted as failed) holds the CI job no longer than the grace period."""
    log = scratch(tmp_path, f'trap "echo tests-got-TERM >> {tmp_path}/log" TERM\n'
                            "for i in $(seq 600); do sleep 0.1; done")
    p, t0 = terminated(tmp_path, log, {"POLYARCH_CI_GRACE": "2"})
    assert p.wait(30) == 143
    took = time.monotonic() - t0
    assert 2 <= took < 10, took  # the grace, then SIGKILL; not the tests' own 60 s
    assert p.stderr is not None
    assert "did not end within 2 s of SIGTERM: killed" in p.stderr.read().decode()
    assert log.read_text().splitlines()[1:] == ["tests-got-TERM", "engine2 down", "engine down"]


def test_the_run_hands_its_started_file_to_the_engine_scripts(tmp_path: Path) -> None:
    """scripts/engine{,2} up record what they start in POLYARCH_STARTED_FILE; .ci/run sets
    it for the whole run, so `down` at the end sees only what this run started."""
    log = scratch(tmp_path, f'echo "file=$POLYARCH_STARTED_FILE" >> {tmp_path}/log')
    r = subprocess.run([str(tmp_path / ".ci/run")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in log.read_text().splitlines() if ln.startswith("file="))
    started = Path(line[len("file="):])
    assert started.name.startswith("polyarch-started.")
    assert not started.exists()  # removed with the run


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def test_engine_down_stops_only_what_this_run_started(tmp_path: Path) -> None:
    """Daemons named in POLYARCH_STARTED_FILE are stopped; the others (somebody else's
    engine) keep running. Stand-in daemons (sleep) in a scratch state directory."""
    import os

    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    e2 = tmp_path / "e2"
    e2.mkdir()
    registry, dockerd, engine2 = _sleeper(), _sleeper(), _sleeper()
    try:
        (state / "run/registry.pid").write_text(f"{registry.pid}\n")
        (state / "run/dockerd.pid").write_text(f"{dockerd.pid}\n")
        (e2 / "docker2.pid").write_text(f"{engine2.pid}\n")
        started = tmp_path / "started"
        started.write_text("registry\n")
        env = dict(os.environ, POLYARCH_STATE_DIR=str(state), POLYARCH_ENGINE2_DIR=str(e2),
                   POLYARCH_STARTED_FILE=str(started))
        for script in ("engine2", "engine"):
            r = subprocess.run([str(ROOT / "scripts" / script), "down"], env=env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        assert registry.wait(10) is not None  # stopped
        assert dockerd.poll() is None and engine2.poll() is None  # left running
        assert "leaving dockerd running" in r.stderr
        # Without the file (a developer's own `scripts/engine down`) all of `up`'s are stopped.
        del env["POLYARCH_STARTED_FILE"]
        r = subprocess.run([str(ROOT / "scripts/engine"), "down"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert dockerd.wait(20) is not None
    finally:
        for p in (registry, dockerd, engine2):
            if p.poll() is None:
                p.kill()
                p.wait()
