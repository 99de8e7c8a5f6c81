""".ci/run itself, with stand-ins for scripts/test and the engine scripts (a copy of the
script in a scratch tree: the real engine is shared and must not be stopped here)."""

from __future__ import annotations

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


def test_sigterm_reaches_the_tests_and_stops_the_engines(tmp_path: Path) -> None:
    log = scratch(tmp_path, f'trap "echo tests-got-TERM >> {tmp_path}/log; exit 3" TERM\n'
                            "sleep 60 & wait")
    p = subprocess.Popen([str(tmp_path / ".ci/run")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 143
    assert time.monotonic() - t0 < 10  # not after the tests' own 60 s
    assert log.read_text().splitlines()[1:] == ["tests-got-TERM", "engine2 down", "engine down"]
