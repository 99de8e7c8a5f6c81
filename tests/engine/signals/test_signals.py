"""Ctrl-C, SIGTERM and SIGHUP in each phase: the build stops, what polyarch started is
killed, tags already moved are put back, build directories are removed, one line says what
state things are in, and the exit code is 130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP: the
terminal or ssh session closed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REGISTRY, make_context, registry_tags
from faultproxy import Fault, FaultProxy

SLOW = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${{TARGETARCH}}/ /
RUN echo {marker} && sleep 60
"""


class Run:
    """polyarch in the background; its output lines are collected as they come."""

    def __init__(self, args: list[str], cache: Path) -> None:
        env = {**os.environ, "POLYARCH_CACHE_DIR": str(cache)}
        env.pop("POLYARCH_DEBUG", None)
        self.p = subprocess.Popen([sys.executable, "-m", "polyarch", *args], env=env,
                                  text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in ln for ln in self.lines)

    def stop(self, sig: int) -> tuple[int, str]:
        self.p.send_signal(sig)
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            pytest.fail(f"polyarch did not stop within 60 s of signal {sig}")
        self._reader.join(10)
        return self.p.returncode, "\n".join(self.lines)


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _processes_naming(text: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if text in ln and "ps -eo" not in ln]


def _builds_left(cache: Path) -> list[Path]:
    d = cache / "builds"
    return sorted(d.iterdir()) if d.is_dir() else []


#: signal -> (exit code, what the line calls it)
ENDINGS = {signal.SIGTERM: (143, "terminated (SIGTERM)"), signal.SIGHUP: (129, "hung up (SIGHUP)")}


@pytest.mark.parametrize("sig", list(ENDINGS), ids=lambda s: signal.Signals(s).name)
def test_sigterm_or_sighup_during_the_build_kills_the_build_and_removes_its_directory(
        tmp_path: Path, sig: int) -> None:
    marker = f"polyarch-signal-{uuid.uuid4().hex[:8]}"
    ctx = make_context(tmp_path / "ctx", SLOW.format(marker=marker), arches=("amd64",))
    cache = tmp_path / "cache"
    run = Run(["build", "--platform", "linux/amd64", "--no-cache", str(ctx)], cache)
    _wait_for(lambda: run.said(marker), "the RUN step to start")
    code, err = run.stop(sig)
    assert code == ENDINGS[sig][0], err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"polyarch: error: {ENDINGS[sig][1]} while building: nothing was"
                           " pushed; stopped docker buildx build"), last
    assert "Traceback" not in err
    _wait_for(lambda: not _processes_naming(str(ctx)), "the engine's build process to end", 20)
    assert _builds_left(cache) == []


def test_sigint_during_the_push_moves_no_tag(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    cache = tmp_path / "cache"
    with FaultProxy(REGISTRY) as proxy:
        repo = f"test/{uuid.uuid4().hex[:12]}"
        # Hold every blob upload: the push is under way and cannot finish.
        proxy.add(Fault.delay(120), times=None, method="PUT", match="/blobs/uploads/")
        run = Run(["publish", "-t", f"{proxy.address}/{repo}:1", str(ctx)], cache)
        _wait_for(lambda: run.said("==> push"), "the push to start", timeout=180)
        time.sleep(2)
        code, err = run.stop(signal.SIGINT)
        proxy.clear()
    assert code == 130, err
    assert "interrupted (Ctrl-C) while pushing by digest: no tag was moved" in err
    assert registry_tags(REGISTRY, repo) == []
    assert _builds_left(cache) == []


@pytest.mark.parametrize("sig", list(ENDINGS), ids=lambda s: signal.Signals(s).name)
def test_sigterm_or_sighup_while_tags_move_puts_back_the_tags_already_moved(
        tmp_path: Path, sig: int) -> None:
    ctx = make_context(tmp_path / "ctx")
    cache = tmp_path / "cache"
    repo = f"test/{uuid.uuid4().hex[:12]}"
    with FaultProxy(REGISTRY) as proxy:
        # The first tag is written; the second one's write hangs.
        proxy.add(Fault.delay(120), times=1, method="PUT", match=f"/{repo}/manifests/two")
        tags = [f"{proxy.address}/{repo}:{t}" for t in ("one", "two", "three")]
        run = Run(["publish", *(a for t in tags for a in ("-t", t)), str(ctx)], cache)
        # Once "one" is there, polyarch is writing "two" (held by the proxy).
        _wait_for(lambda: registry_tags(REGISTRY, repo) == ["one"], "the first tag",
                  timeout=180)
        time.sleep(1)
        code, err = run.stop(sig)
        remaining = registry_tags(REGISTRY, repo)
    assert code == ENDINGS[sig][0], err
    assert f"{ENDINGS[sig][1]} while moving tags:" in err
    assert "one" not in remaining, err  # put back (it did not exist before)
    assert "three" not in remaining


def test_closing_the_terminal_stops_the_build_cleanly(tmp_path: Path) -> None:
    """polyarch on a terminal of its own (a pty, its controlling terminal) that closes
    mid-build, as an ssh session does: the kernel sends SIGHUP and every later write to the
    terminal fails; the build is stopped, its directory removed, and the exit is 129 (not
    a crash on the dead terminal)."""
    import fcntl
    import pty
    import termios

    marker = f"polyarch-hangup-{uuid.uuid4().hex[:8]}"
    ctx = make_context(tmp_path / "ctx", SLOW.format(marker=marker), arches=("amd64",))
    cache = tmp_path / "cache"
    master, slave = pty.openpty()

    def own_terminal() -> None:  # in the child, after its new session: take the pty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "POLYARCH_CACHE_DIR": str(cache)}
    env.pop("POLYARCH_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-m", "polyarch", "build", "--platform",
                          "linux/amd64", "--no-cache", str(ctx)], env=env, stdin=slave,
                         stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=own_terminal)
    os.close(slave)
    seen = b""
    end = time.monotonic() + 120
    while marker.encode() not in seen and time.monotonic() < end:
        try:
            seen += os.read(master, 65536)
        except OSError:
            break
    assert marker.encode() in seen, seen.decode(errors="replace")[-2000:]
    os.close(master)  # the terminal goes away
    try:
        code = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("polyarch did not stop within 60 s of its terminal closing")
    assert code == 129
    _wait_for(lambda: not _processes_naming(str(ctx)), "the engine's build process to end", 20)
    assert _builds_left(cache) == []
