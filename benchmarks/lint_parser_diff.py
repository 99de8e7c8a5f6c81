"""polyarch's Dockerfile parser against BuildKit's (the `dockerfile` package) on every
Dockerfile in a folder: how many files parse the same, and the first difference of each
file that does not.

    python benchmarks/lint_parser_diff.py FOLDER

Needs the `dockerfile` package (a test dependency; wheels for Linux x86-64 and macOS
arm64). The comparison is the one tests/unit/lint/test_parser_differential.py makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.lint.test_parser_differential import difference  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    files = sorted(p for p in Path(sys.argv[1]).iterdir()
                   if p.is_file() and "ockerfile" in p.name)
    same = lines = 0
    for p in files:
        text = p.read_text(errors="replace")
        lines += text.count("\n")
        d = difference(text)
        if d is None:
            same += 1
        else:
            print(f"{p.name}: {d}")
    print(f"{same} of {len(files)} files ({lines} lines) parse the same as BuildKit")
    return 0 if same == len(files) else 1


if __name__ == "__main__":
    raise SystemExit(main())
