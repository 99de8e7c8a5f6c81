"""Options shared by several subcommands, and turning CLI values into Options.

The click options of the option table (:mod:`polyarch.config.table`) are made here,
for the commands that the table says take them; a command declares by hand only what
is its own (``--dry-run``, ``--output-file``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from polyarch import config, redact
from polyarch.config import Opt, Options
from polyarch.errors import EnvironmentProblem, FatalError, ResultNotWritten
from polyarch.output import Reporter, reader_gone

if TYPE_CHECKING:
    from polyarch.pipeline.project import ProjectResult
    from polyarch.pipeline.result import ImageResult

F = TypeVar("F", bound=Callable[..., Any])


def click_option(opt: Opt, command: str) -> Callable[[F], F]:
    """The click option of one table entry in ``command``; its parameter name is the
    Options field, and "not given" is None (or an empty tuple)."""
    help_text = opt.help_in(command)
    if opt.cli == "argument":
        return click.argument(opt.name, required=False, metavar=opt.metavar)
    if opt.cli == "pair":
        flag = opt.flags[-1]
        return click.option(f"{flag}/--no-{flag.removeprefix('--')}", opt.name, default=None,
                            help=help_text)
    if opt.cli == "pair-value":
        # --x and --no-x are rewritten to --x=true/false before parsing
        # (polyarch.cli.bare_flags): a value is taken only after '=', as buildx does.
        flag = opt.flags[-1]
        return click.option(flag, opt.name, default=None, metavar="[=VALUE]",
                            help=help_text)
    if opt.cli == "flag":
        return click.option(*opt.flags, opt.name, is_flag=True, default=None, help=help_text)
    kw: dict[str, Any] = {"metavar": opt.metavar, "help": help_text, "default": None}
    if opt.choices:
        kw["type"] = click.Choice(opt.choices)
        kw.pop("metavar")
    if opt.cli == "multiple":
        kw["multiple"] = True
        kw.pop("default")
    return click.option(*opt.flags, opt.name, **kw)


def table_options(command: str) -> Callable[[F], F]:
    """Every option of the table that ``command`` takes, in table order."""
    decorators = [click_option(o, command) for o in config.for_command(command)]

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def config_option(f: F) -> F:
    return click.option("--config", "config_path", type=click.Path(path_type=Path),
                        metavar="PATH", help="Config file (default: ./polyarch.toml or"
                        " [tool.polyarch] in ./pyproject.toml).")(f)


def json_option(f: F) -> F:
    return click.option("--json", "json_mode", is_flag=True,
                        help="Print one JSON document on stdout.")(f)


def build_options(command: str) -> Callable[[F], F]:
    """The table's options of ``command`` (publish, build, doctor: the CONTEXT argument
    and the buildx-named options), --config and --json."""
    table = table_options(command)

    def apply(f: F) -> F:
        return table(config_option(json_option(f)))

    return apply


def cli_values(kw: dict[str, Any]) -> dict[str, Any]:
    """The table's values among a command's keyword arguments, keyed by file key."""
    return {o.key: kw[o.name] for o in config.OPTIONS if o.name in kw}


def check_environment() -> None:
    """Values of the environment that a later step reads, checked before anything runs
    (a dry run included): ``SOURCE_DATE_EPOCH`` (the ``POLYARCH_*`` settings, such as
    the registry deadline, are checked when the run starts: :mod:`polyarch.settings`)."""
    import os

    from polyarch.epoch import build_time

    build_time(os.environ)


def load_options(kw: dict[str, Any]) -> Options:
    check_environment()
    opts = config.load(cli_values(kw), config_path=kw.get("config_path"))
    # Secret-looking values are masked in everything printed from here on.
    redact.register_build_args(opts.build_args)
    redact.register_url_passwords(str(t) for t in opts.tags)
    for spec in opts.secrets:
        redact.REDACTOR.add_secret_spec(spec)
    return opts


def check_writable(path: Path, what: str) -> None:
    """Refuse, before anything is built, a file the run will have to write at the end
    (``--output-file``, ``--descriptor``) when it cannot be written (exit 2; a full
    disk: exit 3). A dry run checks it too; nothing is left behind."""
    from polyarch import resultfiles

    resultfiles.check(path, what)


def check_hand_over(rep: Reporter) -> None:
    """Before a command that publishes builds anything: every place its result goes can
    take it (the CI output files; stdout, which a closed pipe would lose)."""
    from polyarch import ci

    ci.check_destinations()
    if reader_gone():
        raise EnvironmentProblem("stdout is a pipe whose reader has gone: the result"
                                 " could not be shown; nothing was built",
                                 hint="run it again with stdout open (or redirected to a file)")


def hand_over(rep: Reporter, done: str | None,
              writes: Sequence[tuple[str, Callable[[], object]]],
              show: Callable[[], None]) -> None:
    """Write a run's results (``writes``: name, action) and show them, every one even
    when one fails. ``done`` says what the run did that cannot be undone now (the tags
    moved); a failure then is exit 6 with a line saying exactly that, and which result
    was not written. ``done`` None (a dry run, nothing changed): exit 3."""
    failed: list[str] = []
    for what, action in writes:
        try:
            action()
        except OSError as e:
            failed.append(f"{what} ({e.strerror or e})")
        except FatalError as e:
            failed.append(e.message.removeprefix("cannot write "))
    show()
    if rep.stdout_lost:
        failed.append(f"the output on stdout ({rep.stdout_lost}: its reader has gone)")
    if not failed:
        return
    if done is None:
        raise EnvironmentProblem(f"could not write {'; '.join(failed)}")
    raise ResultNotWritten(f"{done}, but could not write {'; '.join(failed)}",
                           hint="the image is published and nothing needs to be undone;"
                                " its reference is on this line")


def save_failure_outputs(rep: Reporter, result: ImageResult | ProjectResult) -> None:
    """The CI summary of a run that failed (what failed verification): written where
    possible, a warning where not; the run's own error stays the one reported."""
    from polyarch import ci

    try:
        ci.write_outputs(result)
    except FatalError as e:
        rep.warn(e.message)


def reporter(json_mode: bool) -> Reporter:
    from polyarch import proc  # (commands that only read a registry run no process)

    rep = Reporter(json_mode=json_mode)
    proc.echo_hook = rep.command
    return rep
