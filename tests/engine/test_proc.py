"""The subprocess runner with real processes: deadlines (wall clock for short commands,
inactivity for long ones), process groups, terminate_all, output decoding."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from polyarch import proc, procgroup, settings
from polyarch.config import load_settings
from polyarch.errors import EnvironmentProblem, RegistryError


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"  # exited; only its parent's reaping is left


def _wait_for(path: Path, seconds: float = 10) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_short_commands_get_the_default_deadline(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    with (settings.using(load_settings({"POLYARCH_COMMAND_TIMEOUT": "1"})),
          pytest.raises(proc.CommandTimedOut) as e):
        proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], echo=False)
    took = time.monotonic() - t0
    assert took < 1 + procgroup.KILL_GRACE + 2
    assert e.value.exit_code == 3 and isinstance(e.value, EnvironmentProblem)
    assert e.value.line() == ("sh did not finish within 1 s; it was stopped (if it needs longer,"
                              " raise POLYARCH_COMMAND_TIMEOUT (seconds))")
    # What the command started went with it: its whole process group was stopped.
    assert _dead(int(_wait_for(pidfile)))


def test_a_deadline_never_shows_the_arguments() -> None:
    with pytest.raises(proc.CommandTimedOut) as e:
        proc.run(["sh", "-c", "sleep 30 # NPM_TOKEN=npm_abcdefghijklmnop"], timeout=0.5,
                 echo=False)
    assert "npm_" not in e.value.line() and e.value.message.startswith("sh did not finish")
    with pytest.raises(proc.CommandFailed) as f:
        proc.run(["sh", "-c", "exit 3 # password=hunter2"], echo=False)
    assert f.value.message == "sh exited with status 3"


def test_long_commands_must_choose_an_inactivity_deadline() -> None:
    with pytest.raises(ValueError, match="needs idle_timeout"):
        proc.run(["true"], timeout=None)


def test_inactivity_deadline_stops_a_silent_command() -> None:
    t0 = time.monotonic()
    with pytest.raises(proc.CommandTimedOut, match="sh showed no progress for 1 s"):
        proc.run(["sh", "-c", "echo started >&2; sleep 60"], timeout=None, idle_timeout=1,
                 echo=False)
    assert time.monotonic() - t0 < 1 + procgroup.KILL_GRACE + 2


def test_a_command_that_keeps_talking_runs_past_its_inactivity_deadline() -> None:
    lines: list[str] = []
    r = proc.run(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo step $i >&2; sleep 0.3; done"],
                 timeout=None, idle_timeout=1, on_line=lines.append, echo=False)
    assert r.ok and lines == [f"step {i}" for i in range(1, 9)]


def test_a_log_file_counts_as_progress(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.touch()
    r = proc.run(["sh", "-c", f"for i in 1 2 3 4 5 6 7; do echo $i >> {log}; sleep 0.3; done"],
                 timeout=None, idle_timeout=1, activity_paths=[log], echo=False)
    assert r.ok and log.read_text().split() == [str(i) for i in range(1, 8)]


def test_children_run_in_their_own_process_group() -> None:
    r = proc.run(["sh", "-c", "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat)"], echo=False)
    pid, pgid, sid = (int(x) for x in r.stdout.split())
    assert pgid == pid == sid  # a session and group of its own
    assert pgid != os.getpgrp()


def test_terminate_all_stops_every_live_group(tmp_path: Path) -> None:
    pids = [tmp_path / "a", tmp_path / "b"]
    results: list[object] = []

    def go(pidfile: Path) -> None:
        try:
            results.append(proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"],
                                    check=False, timeout=None, idle_timeout=600, echo=False))
        except BaseException as e:  # noqa: BLE001
            results.append(e)

    threads = [threading.Thread(target=go, args=(p,)) for p in pids]
    for t in threads:
        t.start()
    grandchildren = [int(_wait_for(p)) for p in pids]
    assert len(proc.live()) == 2
    stopped = proc.terminate_all(grace=2)
    for t in threads:
        t.join(10)
    assert stopped == ["sh", "sh"]
    assert all(isinstance(r, proc.Result) and r.returncode == -15 for r in results), results
    assert all(_dead(p) for p in grandchildren)
    assert proc.live() == []


def test_output_that_is_not_utf8_is_kept_not_fatal() -> None:
    r = proc.run(["printf", "a\\377b\\r\\nc"], echo=False)
    assert r.stdout == "a\ufffdb\nc"


def test_input_and_exit_status() -> None:
    assert proc.run(["cat"], input="hello", echo=False).stdout == "hello"
    assert proc.run(["false"], check=False, echo=False).returncode == 1
    with pytest.raises(proc.CommandFailed):
        proc.run(["false"], echo=False)


def test_a_failed_command_raises_its_callers_error() -> None:
    with pytest.raises(proc.CommandFailed) as f:
        proc.run(["sh", "-c", "echo why >&2; exit 1"], echo=False,
                 error_class=EnvironmentProblem, error_message="x failed")
    assert (f.value.message, f.value.detail, f.value.exit_code) == ("x failed", "why", 3)
    made: list[proc.Result] = []

    def error(r: proc.Result) -> RegistryError:
        made.append(r)
        return RegistryError(f"tool said: {r.stderr.strip()}")

    with pytest.raises(RegistryError) as e:
        proc.run(["sh", "-c", "echo denied >&2; exit 4"], echo=False, error=error)
    assert e.value.message == "tool said: denied" and e.value.exit_code == 4
    assert [r.returncode for r in made] == [4]
    assert proc.run(["true"], echo=False, error=error).ok and len(made) == 1
    with pytest.raises(ValueError, match="needs check=True"):
        proc.run(["true"], check=False, echo=False, error=error)


def test_a_bad_timeout_setting_is_a_config_error() -> None:
    with pytest.raises(proc.FatalError) as e:
        load_settings({"POLYARCH_IDLE_TIMEOUT": "soon"})
    assert e.value.exit_code == 2 and "POLYARCH_IDLE_TIMEOUT" in e.value.message


def test_a_command_that_leaves_a_daemon_holding_its_output_returns() -> None:
    # The daemon keeps the pipe open; the command itself has exited.
    t0 = time.monotonic()
    r = proc.run(["sh", "-c", "sleep 30 & echo done"], echo=False, timeout=20)
    assert r.stdout == "done\n" and time.monotonic() - t0 < 10
    proc.terminate_all(grace=0)  # nothing is live: the sleep is not ours to track


def test_interrupt_stops_the_running_command(tmp_path: Path) -> None:
    """KeyboardInterrupt in the waiting thread (Ctrl-C) stops the command's group."""
    pidfile = tmp_path / "pid"
    import signal

    def interrupt() -> None:
        _wait_for(pidfile)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=None,
                 idle_timeout=600, echo=False)
    assert _dead(int(pidfile.read_text()))
    assert proc.terminate_all(grace=0) == ["sh"]


def test_end_group_stops_what_a_command_left_running(tmp_path: Path) -> None:
    """A shell command's background child (``(server &)``, double-forked, holding no pipe)
    does not outlive the command when the caller asks for the group to end with it."""
    pidfile = tmp_path / "pid"
    r = proc.run(["sh", "-c", f"(sleep 3602 >/dev/null 2>&1 & echo $! > {pidfile})"],
                 echo=False, end_group=True)
    assert r.ok and r.left_running
    assert _dead(int(_wait_for(pidfile)))


def test_without_end_group_a_command_that_left_nothing_says_so(tmp_path: Path) -> None:
    r = proc.run(["sh", "-c", "echo hi"], echo=False, end_group=True)
    assert r.stdout == "hi\n" and not r.left_running


def test_cancel_from_another_thread_stops_the_command_and_raises_its_error(
        tmp_path: Path) -> None:
    """A check made alongside a build stops it: the whole process group goes, and the
    error raised is the check's, not the command's exit."""
    pidfile = tmp_path / "pid"
    cancel = proc.Cancel()
    found = RegistryError("registry: 127.0.0.1:9/a/b: connection refused")
    later = threading.Timer(0.5, cancel.set, args=(found,))
    later.start()
    t0 = time.monotonic()
    with pytest.raises(RegistryError) as e:
        proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], echo=False,
                 timeout=None, idle_timeout=600, cancel=cancel)
    took = time.monotonic() - t0
    assert e.value is found
    assert 0.5 <= took < 0.5 + proc.CANCEL_LATENCY + procgroup.KILL_GRACE + 1
    assert _dead(int(_wait_for(pidfile)))
    assert proc.live() == []


def test_a_command_cancelled_before_it_starts_is_not_started(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cancel = proc.Cancel()
    cancel.set(RegistryError("first"))
    cancel.set(RegistryError("second"))  # the first error set is the one raised
    with pytest.raises(RegistryError, match="^first$"):
        proc.run(["touch", str(marker)], echo=False, cancel=cancel)
    assert not marker.exists()
    assert not cancel.started.is_set()  # what waits for the start is not told it started


def test_a_command_that_ends_before_any_cancel_is_not_affected() -> None:
    cancel = proc.Cancel()
    assert not cancel.started.is_set()
    res = proc.run(["sh", "-c", "echo done"], echo=False, cancel=cancel)
    assert res.ok and res.stdout == "done\n"
    assert cancel.started.is_set()  # (work beside the command waits for this)
