"""Process groups: each command :mod:`polyarch.proc` runs is the leader of a group of its
own (a new session), so that everything it started can be stopped together. Here: a
signal to a group, whether a group is alive or still runs (zombies do not count), and
stopping one (SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

#: Seconds a process group gets between SIGTERM and SIGKILL.
KILL_GRACE = 5.0


def send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def end(pgid: int) -> None:
    """SIGTERM to what is left of a process group whose leader has exited, SIGKILL to
    what is still there after :data:`KILL_GRACE` seconds."""
    send(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline and running(pgid):
        time.sleep(0.05)
    send(pgid, signal.SIGKILL)


def running(pgid: int) -> bool:
    """A member of process group ``pgid`` runs (zombies, which only wait for a parent
    to reap them, do not count). Read from /proc where there is one."""
    if not alive(pgid):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read(4096).rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return not os.path.isdir("/proc/self")


def stop(p: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group, SIGKILL after :data:`KILL_GRACE`."""
    send(p.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(KILL_GRACE)
    send(p.pid, signal.SIGKILL)  # and whatever of the group is left
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(KILL_GRACE)
