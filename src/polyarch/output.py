"""The one reporter every command writes through.

Three modes: ``human`` (rich, colours and live progress on a terminal), ``plain``
(line by line, for CI logs and pipes) and ``json`` (nothing on stdout but one JSON
document at the end; progress goes to stderr as plain lines).

Every line, table cell, annotation and JSON string printed here passes through
:mod:`polyarch.redact`: secret values registered there (and known token formats, URL
passwords) never reach the terminal, a CI log or a JSON document.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from polyarch import redact

if TYPE_CHECKING:
    from rich.console import Console

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: What :meth:`Reporter.table` imports (rich's console, table and text).
TABLE_MODULES = ("rich.console", "rich.table", "rich.text")


def fit(text: str) -> str:
    """``text`` fit for a terminal or a CI log: registered secrets masked
    (:mod:`polyarch.redact`), and control characters other than newline and tab escaped
    (``\\x1b``), so that a file name or a string from an image cannot retitle the terminal,
    move the cursor or erase lines."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], redact.text(text))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or bool(
        os.environ.get("GITHUB_ACTIONS") or os.environ.get("GITLAB_CI")
    )


class Guarded:
    """A text stream (stdout, stderr) whose failure does not stop the command: a reader
    that closed its pipe (``polyarch publish --json | head -c1``) or a terminal that hung
    up must not end a run half-way (after the tags moved). The first failure is kept in
    :attr:`lost`, and the stream's descriptor is pointed at /dev/null so that nothing
    later (nor Python's flush at exit) fails on it again."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lost: str | None = None

    def write(self, text: str) -> int:
        if self.lost is None:
            try:
                return int(self.stream.write(text))
            except (OSError, ValueError) as e:
                self._lose(e)
        return len(text)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as e:
                self._lose(e)

    def _lose(self, e: BaseException) -> None:
        self.lost = getattr(e, "strerror", None) or str(e) or type(e).__name__
        import contextlib

        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)

    def isatty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self.stream, "encoding", "utf-8"))


def reader_gone(stream: Any = None) -> bool:
    """True when ``stream`` (default stdout) is a pipe whose reading end is closed: what
    is printed there is lost (checked before a build, so that a publish into a closed pipe
    is refused before anything moves)."""
    import select
    import stat

    stream = sys.stdout if stream is None else stream
    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        p = select.poll()
        p.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


class Reporter:
    """Lines go out as plain text where no terminal shows them (pipes, CI logs, JSON
    mode): what rich would write there, without loading it; so do tables where that is
    exactly rich's output (:func:`plain_table`). rich renders every line on a terminal
    (styles, live status) and the other tables; it is imported on first use."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.interactive = sys.stderr.isatty() and not in_ci() and not json_mode
        self.stdout = Guarded(sys.stdout)
        self.stderr = Guarded(sys.stderr)
        self._out: Console | None = None
        self._err: Console | None = None

    def _console(self, stream: Guarded) -> Console:
        from rich.console import Console

        return Console(file=cast("IO[str]", stream), highlight=False, emoji=False,
                       soft_wrap=True, force_terminal=None if self.interactive else False,
                       width=None if self.interactive else 200)

    @property
    def out(self) -> Console:
        """The console of results (stderr when stdout carries JSON)."""
        if self._out is None:
            self._out = self._console(self.stderr if self.json_mode else self.stdout)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = self._console(self.stderr)
        return self._err

    def _print(self, err: bool, text: str, style: str | None = None) -> None:
        """One line (``text`` fit already). Off a terminal, the text as rich would
        write it there (no styles, no wrapping, soft_wrap); a tab, which rich expands
        by cell width, goes through rich."""
        if self.interactive or "\t" in text:
            (self.err if err else self.out).print(text, markup=False, style=style)
            return
        stream = self.stderr if err or self.json_mode else self.stdout
        stream.write(text + "\n")
        stream.flush()

    # -- lines -------------------------------------------------------------
    def info(self, text: str) -> None:
        if not self.quiet:
            self._print(False, fit(text))

    def log(self, text: str) -> None:
        """A line of a tool's own output (prebuild commands): stderr, like build logs."""
        if not self.quiet:
            self._print(True, fit(text))

    def step(self, text: str) -> None:
        """A step heading ("==> building linux/amd64")."""
        if not self.quiet:
            self._print(False, f"==> {fit(text)}", "bold")

    def progress(self, text: str) -> None:
        """A line relayed from the build engine's progress."""
        if not self.quiet:
            self._print(True, fit(text))

    def command(self, argv: Sequence[str]) -> None:
        """Echo a command about to run, shell-quoted. Its secret-looking values are
        registered for masking even when nothing is echoed (``--quiet``)."""
        import shlex

        shown = shlex.join(redact.argv(argv))
        if not self.quiet:
            self._print(True, "+ " + fit(shown), "dim")

    def warn(self, text: str) -> None:
        text = fit(text)
        self._print(True, f"warning: {text}", "yellow")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::warning::{_gh_escape(text)}", file=self.stderr)

    def error(self, text: str, detail: str | None = None) -> None:
        text = fit(text)
        if detail:
            self._print(True, fit(detail.rstrip()))
        self._print(True, f"polyarch: error: {text}", "bold red")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::error::{_gh_escape(text)}", file=self.stderr)

    # -- structured --------------------------------------------------------
    def table_modules(self) -> tuple[str, ...]:
        """The modules :meth:`table` will import (none when it prints nothing, or prints
        it without rich off a terminal): a step that waits for something else (a build)
        may load them in the meantime."""
        return TABLE_MODULES if self.interactive and not self.quiet else ()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.quiet:
            return
        title = fit(title) if title else None
        heads = [fit(c) for c in columns]
        cells = [[fit(str(x)) for x in r] for r in rows]
        if not self.interactive:
            stream = self.stderr if self.json_mode else self.stdout  # as self.out's
            text = plain_table(title, heads, cells, encoding=stream.encoding or "utf-8")
            if text is not None:
                stream.write(text)
                stream.flush()
                return
        from rich.table import Table
        from rich.text import Text

        t = Table(title=title, show_lines=False, title_justify="left")
        for c in heads:
            t.add_column(c, overflow="fold")
        for r in cells:
            # Plain text: a path such as "/srv/tools [x64]/run" is not rich markup.
            t.add_row(*(Text(x) for x in r))
        self.out.print(t)

    def emit_json(self, doc: Any) -> None:
        self.stdout.write(json.dumps(redact.data(doc), indent=2, sort_keys=False) + "\n")
        self.stdout.flush()

    @property
    def stdout_lost(self) -> str | None:
        """Why what was printed on stdout did not arrive (None: it did)."""
        return self.stdout.lost

    def group(self, title: str) -> _Group:
        return _Group(self, title)


#: The console width off a terminal (:meth:`Reporter._console`).
PLAIN_WIDTH = 200


def plain_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]],
                *, encoding: str) -> str | None:
    """The table exactly as rich prints it off a terminal (no styles, ``PLAIN_WIDTH``
    columns, rich's ``HEAVY_HEAD`` box on a UTF-8 stream), without loading rich; ``None``
    where rich's own layout is needed: another encoding (rich substitutes an ASCII box),
    text that is not printable ASCII (wide and combining characters, line breaks, tabs),
    markup in a heading or the title, a table wider than the console or a title wider than
    the table (rich folds them). A unit test compares the two on many tables."""

    def simple(text: str) -> bool:
        return text.isascii() and text.isprintable()

    if not columns or not (encoding or "").lower().startswith("utf") or any(
            len(r) != len(columns) for r in rows):
        return None
    heads = [*columns, *([title] if title else [])]
    if not all(simple(h) and "[" not in h for h in heads) or \
            not all(simple(c) for r in rows for c in r):
        return None
    widths = [max([len(c), *(len(r[i]) for r in rows)]) + 2 for i, c in enumerate(columns)]
    total = sum(widths) + len(widths) + 1
    if total > PLAIN_WIDTH or (title and len(title) > total):
        return None

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * w for w in widths) + right + "\n"

    def row(edge: str, cells: Sequence[str]) -> str:
        padded = (f" {c.ljust(w - 2)} " for c, w in zip(cells, widths, strict=True))
        return edge + edge.join(padded) + edge + "\n"

    return "".join([f"{title}\n" if title else "", rule("┏", "━", "┳", "┓"),
                    row("┃", columns), rule("┡", "━", "╇", "┩"),
                    *(row("│", r) for r in rows), rule("└", "─", "┴", "┘")])


class _Group:
    """``::group::`` folding on GitHub Actions, collapsible sections on GitLab CI."""

    def __init__(self, rep: Reporter, title: str) -> None:
        self.rep, self.title = rep, fit(title)
        self._id = "polyarch_" + "".join(c if c.isalnum() else "_" for c in title.lower())[:40]

    def __enter__(self) -> _Group:
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::group::{self.title}", file=self.rep.stderr, flush=True)
        elif os.environ.get("GITLAB_CI"):
            import time

            print(f"\x1b[0Ksection_start:{int(time.time())}:{self._id}[collapsed=true]\r\x1b[0K"
                  f"{self.title}", file=self.rep.stderr, flush=True)
        else:
            self.rep.step(self.title)
        return self

    def __exit__(self, *exc: object) -> None:
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print("::endgroup::", file=self.rep.stderr, flush=True)
        elif os.environ.get("GITLAB_CI"):
            import time

            print(f"\x1b[0Ksection_end:{int(time.time())}:{self._id}\r\x1b[0K", file=self.rep.stderr,
                  flush=True)


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class BuildProgress:
    """Per-platform progress of a build: a live status line on a terminal, plain
    ``[platform] step`` lines in CI logs and pipes."""

    def __init__(self, rep: Reporter) -> None:
        self.rep = rep
        self._status: Any = None
        self.current: dict[str, str] = {}

    def __enter__(self) -> BuildProgress:
        if self.rep.interactive and not self.rep.quiet:
            self._status = self.rep.err.status("building ...")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)

    def __call__(self, ev: Any) -> None:
        """Takes a :class:`polyarch.engines.StepEvent`."""
        if ev.state == "exported":
            return  # no step: the image is written (polyarch.pipeline.ahead)
        plat = ev.platform or "shared"
        name = ev.name
        if plat != "shared" and name.startswith(f"[{plat} "):
            name = "[" + name[len(plat) + 2 :]
        if self._status is not None:
            # Live: what each platform is doing now; finished steps scroll above it.
            if ev.state == "started":
                self.current[plat] = name
            else:
                self.current.pop(plat, None)
            lines = [f"{k}: {v}" for k, v in sorted(self.current.items())] or ["building ..."]
            self._status.update(fit("\n".join(lines)))
        if self.rep.quiet or ev.state == "started" or name.startswith("[internal]"):
            return
        secs = f" {ev.seconds:.1f}s" if ev.seconds is not None and ev.seconds >= 0.05 else ""
        mark = {"done": "done", "cached": "cached", "error": "FAILED"}.get(ev.state, ev.state)
        self.rep.progress(f"[{plat}] {name} ... {mark}{secs}")
