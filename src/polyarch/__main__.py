"""The program: ``polyarch`` and ``python -m polyarch``. The engine look-ups of a
``publish`` or ``build`` start here, before the command-line interface is imported
(:func:`polyarch.engines.start_at_entry`)."""

from __future__ import annotations

import sys


def main() -> None:
    from polyarch.engines import start_at_entry

    start_at_entry(sys.argv[1:])
    from polyarch.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
