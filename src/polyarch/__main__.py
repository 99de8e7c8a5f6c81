"""The program: ``polyarch`` and ``python -m polyarch``. The engine look-ups of a
``publish`` or ``build`` start here, before the command-line interface is imported
(:func:`polyarch.engines.start_at_entry`); every other command starts without loading
the engines."""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The commands whose engine look-ups start at the entry.
EARLY_COMMANDS = ("publish", "build")


def builds(argv: Sequence[str]) -> bool:
    """Whether this command line is a build whose engine look-ups are worth starting
    before it is parsed (not its help, not a dry run, which makes its own)."""
    return bool(argv) and argv[0] in EARLY_COMMANDS and not (
        {"-h", "--help", "--dry-run"} & set(argv))


def main() -> None:
    if builds(sys.argv[1:]):
        from polyarch.engines import start_at_entry

        start_at_entry()
    from polyarch.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
