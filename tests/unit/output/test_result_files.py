"""Files a run writes at its end (checked before, written whole or appended in one
write), and output streams whose reader has gone (a closed pipe, a hung-up terminal)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from polyarch import resultfiles
from polyarch.errors import EnvironmentProblem, UsageError
from polyarch.output import Guarded, reader_gone


def test_check_refuses_a_directory_and_a_missing_parent_that_is_a_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        resultfiles.check(tmp_path, "--output-file")
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        resultfiles.check(tmp_path / "f" / "x" / "out", "--output-file")
    with pytest.raises(EnvironmentProblem, match="GITHUB_OUTPUT .* is a directory"):
        resultfiles.check(tmp_path, "GITHUB_OUTPUT", error=EnvironmentProblem)


def test_check_leaves_nothing_behind(tmp_path: Path) -> None:
    resultfiles.check(tmp_path / "new" / "ref.txt", "--output-file")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_the_whole_file(tmp_path: Path) -> None:
    out = tmp_path / "ref.txt"
    out.write_text("old and much longer content\n")
    resultfiles.write(out, "new\n")
    assert out.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ref.txt"]


def test_write_into_a_missing_directory_makes_it(tmp_path: Path) -> None:
    resultfiles.write(tmp_path / "a" / "b" / "ref.txt", "x\n")
    assert (tmp_path / "a" / "b" / "ref.txt").read_text() == "x\n"


def test_append_adds_to_what_other_steps_wrote(tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.write_text("earlier=1\n")
    resultfiles.append(out, "digest=sha256:x\n")
    resultfiles.append(out, "more=2\n")
    assert out.read_text() == "earlier=1\ndigest=sha256:x\nmore=2\n"


def test_append_to_a_full_device_fails_and_says_why() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError) as e:
        resultfiles.append(Path("/dev/full"), "digest=sha256:x\n")
    assert e.value.errno == errno.ENOSPC


class _Broken:
    """A stream whose reader has gone."""

    def __init__(self, err: int) -> None:
        self.err = err
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        raise OSError(self.err, os.strerror(self.err))

    def flush(self) -> None:
        raise OSError(self.err, os.strerror(self.err))

    def fileno(self) -> Any:
        raise ValueError("no descriptor")


@pytest.mark.parametrize("err", [errno.EPIPE, errno.EIO])
def test_a_stream_whose_reader_has_gone_does_not_stop_the_command(err: int) -> None:
    broken = _Broken(err)
    g = Guarded(broken)
    assert g.write("tag x\n") == len("tag x\n")
    g.flush()
    g.write("more\n")
    assert g.lost == os.strerror(err)
    assert broken.calls == 1  # not tried again once lost


def test_reader_gone_sees_a_closed_pipe() -> None:
    r, w = os.pipe()
    try:
        with os.fdopen(w, "w", closefd=False) as stream:
            assert not reader_gone(stream)
            os.close(r)
            r = -1
            assert reader_gone(stream)
    finally:
        os.close(w)
        if r != -1:
            os.close(r)


def test_reader_gone_is_false_for_a_file(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w") as f:
        assert not reader_gone(f)
