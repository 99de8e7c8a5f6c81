"""Command line: argument parsing, output and exit codes. Thin on purpose.

Every subcommand lives in ``polyarch.commands.<name>`` and is registered here.
This is the only place that turns a :class:`~polyarch.errors.FatalError` into an
exit code and a one-line message (never a traceback).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import sys
from typing import Any

import click

from polyarch import __version__, interrupt, settings
from polyarch.errors import EXIT_CODES, FatalError

# name -> (module, one-line help); modules are imported only when their command runs, so
# that `polyarch --help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("polyarch.commands.doctor", "Check that this machine can build every platform."),
    "publish": ("polyarch.commands.publish", "Build every platform, verify, publish one tag."),
    "build": ("polyarch.commands.build", "Build and verify on local disk; write, load or push it."),
    "merge": ("polyarch.commands.merge", "Join per-platform images into one index and publish."),
    "inspect": ("polyarch.commands.inspect", "Show an image index: platforms, digests, sizes."),
    "verify": ("polyarch.commands.verify", "Prove each variant of an image is its platform."),
    "tags": ("polyarch.commands.tags", "Compute tags and labels from git state."),
    "lint": ("polyarch.commands.lint", "Find multi-arch pitfalls in a Dockerfile."),
}


class _Stub(click.Command):
    """Stands in for a command in the --help listing without importing it."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        import importlib.util

        return sorted(n for n, (m, _h) in COMMANDS.items() if importlib.util.find_spec(m))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if ctx.resilient_parsing or _listing_help(ctx):
            return _Stub(cmd_name, short_help=entry[1])
        cmd = importlib.import_module(entry[0]).command
        assert isinstance(cmd, click.Command)
        return cmd

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        return name, cmd, bare_flags(rest)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["polyarch.listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta["polyarch.listing"] = False


def bare_flags(args: list[str]) -> list[str]:
    """Options that take a value only after '=' (buildx's ``--provenance``,
    ``--provenance=mode=max``): ``--x`` becomes ``--x=true`` and ``--no-x``
    ``--x=false``, so that the next argument is never taken as their value."""
    from polyarch.config.table import OPTIONS

    flags = {f for o in OPTIONS if o.cli == "pair-value" for f in o.flags}
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        if a in flags:
            a += "=true"
        elif a.startswith("--no-") and "--" + a[5:] in flags:
            a = f"--{a[5:]}=false"
        out.append(a)
    return out


def _listing_help(ctx: click.Context) -> bool:
    """True while click formats the group's own --help (it asks for every command)."""
    return bool(ctx.meta.get("polyarch.listing"))


_EPILOG = "Exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()) + "."


@click.group(cls=LazyGroup, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="polyarch")
def cli() -> None:
    """Build container images for several CPU architectures, verify every variant,
    and publish them under one tag."""
    # The settings of the run (deadlines, the cache directory, ...) are resolved once,
    # before any command runs (a bad one is exit 2), and installed until the command
    # has ended (a caller in the same process gets its own back).
    from polyarch.config import load_settings

    before = settings.install(load_settings())
    click.get_current_context().call_on_close(lambda: settings.install(before))


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    if code in (129, 130, 143):
        # Interrupted: the state is already said and put right; do not wait at exit for
        # worker threads still blocked in a registry request.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # the terminal is gone (SIGHUP)
                stream.flush()
        os._exit(code)
    _leaving()
    sys.exit(code)


def _leaving() -> None:
    """The process ends now: spare its teardown a garbage collection through every
    object the run made (about 25 ms after a publish or an inspect). Modules are still
    cleared, exit handlers run and every file polyarch writes is closed where it is
    written; only objects in reference cycles go without their finalizers, as at any
    interpreter exit that does not collect them."""
    import gc

    gc.disable()
    gc.freeze()


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (used by tests and :func:`main`). The
    signal handlers it installs are put back when it returns."""
    restore = interrupt.install()
    try:
        return _run(argv)
    finally:
        restore()


def _run(argv: list[str] | None) -> int:
    try:
        rv: Any = cli.main(args=argv, prog_name="polyarch", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except FatalError as e:
        _print_error(e.line(), e.detail)
        return e.exit_code
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt
        return _interrupted("interrupted (Ctrl-C)", 130)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        # Usage errors: one line, exit 2.
        msg = e.format_message()
        ctx = getattr(e, "ctx", None)
        if ctx is not None:
            msg = f"{msg} (see '{ctx.command_path} --help')"
        _print_error(msg, None)
        return 2
    except KeyboardInterrupt:
        return _interrupted("interrupted (Ctrl-C)", 130)
    except interrupt.Terminated as e:
        return _interrupted(e.what, e.exit_code)
    except BrokenPipeError:
        # A reader that stopped reading (``polyarch inspect ... | head -1``) got what it
        # wanted; commands that change something check their stdout and say what was done.
        _silence(sys.stdout)
        return 0
    except OSError as e:
        # A safety net for a file the input named that cannot be used; anything else
        # about files is reported where it happens.
        if e.filename is None or e.errno not in _INPUT_ERRNOS:
            return _internal(e)
        _print_error(f"cannot use {os.fsdecode(e.filename)}: {e.strerror}"
                     " (check the path given on the command line or in the config)", None)
        return 2
    except Exception as e:
        return _internal(e)


def _silence(stream: Any) -> None:
    """Point ``stream``'s descriptor at /dev/null (nothing more reaches a closed pipe, and
    Python's flush at exit does not fail on it)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


#: OSError numbers that mean "this path given as input is not usable".
_INPUT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP,
                 errno.EACCES, errno.EPERM}


def _internal(e: BaseException) -> int:
    """A bug: say so in one line, keep the traceback out of the way."""
    if _debug():
        raise e
    _print_error(
        f"internal error: {type(e).__name__}: {e} (re-run with POLYARCH_DEBUG=1 for a traceback)",
        None,
    )
    return 70


def _debug() -> bool:
    """The ``debug`` setting (POLYARCH_DEBUG), through the option table: read here, as a
    bug may come before the settings were resolved (a command that fails to import);
    a bad value counts as off."""
    from polyarch.config import load_settings

    try:
        return load_settings(only=("debug",)).debug
    except FatalError:
        return False


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` with its control characters escaped: an error is one line on a terminal
    and in a CI log, whatever input it quotes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _interrupted(what: str, code: int) -> int:
    """Stop every process polyarch started that may still run (a build, a smoke run) and
    say in one line what state things are in."""
    stopped: list[str] = []
    if "polyarch.proc" in sys.modules:  # else this run started no process
        from polyarch import proc

        stopped = proc.terminate_all()
    _print_error(f"{what} while {interrupt.phase()}"
                 + (f"; stopped {', '.join(stopped)}" if stopped else ""), None)
    return code


def _print_error(line: str, detail: str | None) -> None:
    from polyarch import redact
    from polyarch.output import Guarded, fit

    line = one_line(redact.text(line))
    detail = fit(detail) if detail else detail
    # A terminal that hung up (SIGHUP) or a closed pipe loses the line; nothing else fails.
    err = Guarded(sys.stderr)
    if detail:
        err.write(detail.rstrip() + "\n")
    err.write(f"polyarch: error: {line}\n")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        esc = line.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        err.write(f"::error::{esc}\n")
    err.flush()
