"""``polyarch verify oci:PATH`` as a process on hostile layouts: FIFOs and devices where
files should be, documents nested 100,000 deep or 100 MB long, a cut gzip layer. Each
ends with one error line and exit 4 or 5 within the run's deadline, and the process
stays under 100 MiB (its own peak resident size)."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from oci_images import make_layer, write_oci_layout

from .helpers import PEAK_RSS_WRAPPER

DEADLINE = 120  # seconds: a hang fails the test instead of blocking the suite


def run_verify(d: Path) -> tuple[int, str, int]:
    """Exit code, output and peak resident KiB of ``polyarch verify oci:d`` (measured by
    a small wrapper process, see ``PEAK_RSS_WRAPPER``)."""
    env = {k: v for k, v in os.environ.items() if k != "POLYARCH_DEBUG"}
    env["POLYARCH_CACHE_DIR"] = str(d.parent / "cache")
    rss_file = d.parent / f"rss-{time.monotonic_ns()}"
    env["RSS_FILE"] = str(rss_file)
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen([sys.executable, "-c", PEAK_RSS_WRAPPER, sys.executable, "-m",
                              "polyarch", "verify", f"oci:{d}", "--platform", "linux/amd64"],
                             stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, env=env,
                             start_new_session=True)
        try:
            p.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            pytest.fail(f"verify oci:{d} still ran after {DEADLINE} s")
        errf.seek(0)
        err = errf.read().decode("utf-8", "replace")
    return p.returncode, err, int(rss_file.read_text()) // 1024


@pytest.fixture()
def lay(tmp_path: Path) -> Path:
    layer = make_layer({"etc/hostname": b"box\n"}, "gzip")
    return write_oci_layout(tmp_path / "L", [("linux/amd64", [(*layer, "gzip")])])


def layer_file(d: Path) -> Path:
    from polyarch.registry import OCILayout

    lay = OCILayout(d)
    man = lay.manifest(lay.root().json["manifests"][0]["digest"]).json
    return d / "blobs" / "sha256" / str(man["layers"][0]["digest"]).split(":")[1]


def nested_index(d: Path) -> None:
    (d / "index.json").write_text("[" * 100_000)


def huge_index(d: Path) -> None:
    with (d / "index.json").open("r+b") as f:
        f.truncate(100 << 20)


def fifo_index(d: Path) -> None:
    (d / "index.json").unlink()
    os.mkfifo(d / "index.json")


def fifo_layer(d: Path) -> None:
    blob = layer_file(d)
    blob.unlink()
    os.mkfifo(blob)


def zero_layer(d: Path) -> None:
    blob = layer_file(d)
    blob.unlink()
    blob.symlink_to("/dev/zero")


def cut_gzip_layer(d: Path) -> None:
    """A layer whose gzip stream is cut, stored under the digest of its cut bytes."""
    raw = gzip.decompress(make_layer({"bin/app": os.urandom(200_000)}, "gzip")[0])
    cut = gzip.compress(raw)[:-100]
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    for f in (d / "blobs" / "sha256").iterdir():
        f.unlink()
    write_oci_layout(d, [("linux/amd64", [(cut, diff_id, "gzip")])])


CASES = {
    "index.json nested 100,000 deep": (nested_index, 4, "nested too deeply"),
    "index.json of 100 MB": (huge_index, 4, "index.json is larger than 4 MiB"),
    "index.json a FIFO": (fifo_index, 4, "is not a regular file (a FIFO)"),
    "layer blob a FIFO": (fifo_layer, 4, "is not a regular file (a FIFO)"),
    "layer blob a link to /dev/zero": (zero_layer, 4,
                                       "is not a regular file (a character device)"),
    "layer cut inside its gzip stream": (cut_gzip_layer, 5, "verification failed"),
}
#: What else the output says (the findings table).
DETAIL = {
    "layer cut inside its gzip stream": "gzip stream is truncated",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_layout_ends_with_one_error_line(case: str, lay: Path) -> None:
    spoil, want_code, needle = CASES[case]
    spoil(lay)
    code, err, peak_kib = run_verify(lay)
    assert code == want_code, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("polyarch: error:")]
    assert len(errors) == 1 and needle in errors[0], err
    assert DETAIL.get(case, needle) in err
    assert peak_kib < 100 * 1024, f"peak {peak_kib} KiB"
