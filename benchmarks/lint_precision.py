"""Precision and recall of `polyarch lint` on a folder of hand-labelled Dockerfiles.

    python benchmarks/lint_precision.py FOLDER LABELS.tsv [--platform LIST]
        [--split dev|holdout|all] [--without-disputed] [-v]

FOLDER holds the Dockerfiles, named as in the first column (they are not part of this
repository: fetch each from the repository, commit and path of its `source` column).
FOLDER may be left out when POLYARCH_LINT_CORPUS names it.

LABELS.tsv: one file a line, tab separated: file name, rules (comma separated, `-` for
none), then anything (source, note); `#` lines are comments. The last comment line
before the first file may name the columns (`# file<TAB>rules<TAB>...`); when it names
a `split` column, `--split` picks the files scored (default `dev`), and a non-empty
`disputed` column leaves the file out with `--without-disputed`.

A (file, rule) pair counts once: a true positive when the linter reports the rule at
severity warning or error and the label lists it, a false positive when the label does
not, a false negative when the label lists a rule the linter does not report. Notes and
infos are not counted. Also printed: the share of files labelled `-` (no problem) that
get any warning or error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from polyarch.lint import lint
from polyarch.platforms import parse_platforms


def rows(labels: Path) -> tuple[list[str], list[list[str]]]:
    columns = ["file", "rules"]
    out = []
    for raw in labels.read_text().splitlines():
        if not raw.strip():
            continue
        if raw.startswith("#"):
            head = raw.lstrip("#").strip().split("\t")
            if len(head) > 1 and head[0] == "file":
                columns = head
            continue
        out.append(raw.split("\t"))
    return columns, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, nargs="?")
    ap.add_argument("labels", type=Path, nargs="?")
    ap.add_argument("--platform", default="linux/amd64,linux/arm64")
    ap.add_argument("--split", choices=("dev", "holdout", "all"), default="dev")
    ap.add_argument("--without-disputed", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.labels is None and a.folder is not None and a.folder.is_file():
        a.folder, a.labels = None, a.folder
    folder = a.folder or (Path(os.environ["POLYARCH_LINT_CORPUS"])
                          if os.environ.get("POLYARCH_LINT_CORPUS") else None)
    if folder is None or a.labels is None:
        ap.error("give FOLDER (or set POLYARCH_LINT_CORPUS) and LABELS.tsv")
    platforms = parse_platforms(a.platform)
    columns, table = rows(a.labels)
    col = {name: i for i, name in enumerate(columns)}
    tp = fp = fn = files = clean = clean_flagged = 0
    for row in table:
        cell = dict(zip(columns, row, strict=False))
        if "split" in col and a.split != "all" and cell.get("split", "dev") != a.split:
            continue
        if a.without_disputed and cell.get("disputed", "").strip():
            continue
        name, rules = row[0], row[1]
        want = set() if rules.strip() == "-" else {r.strip() for r in rules.split(",")}
        path = folder / name
        if not path.is_file():
            print(f"missing: {path}", file=sys.stderr)
            continue
        files += 1
        got = {f.rule for f in lint(path.read_text(errors="replace"), path=name,
                                    platforms=platforms)
               if f.severity in ("error", "warning")}
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
        if not want:
            clean += 1
            clean_flagged += bool(got)
        if a.verbose and got != want:
            print(f"{name}: false positive {sorted(got - want)}, missed {sorted(want - got)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"files {files}  labelled pairs {tp + fn}  reported pairs {tp + fp}")
    print(f"true positives {tp}  false positives {fp}  false negatives {fn}")
    print(f"precision {precision:.3f}  recall {recall:.3f}")
    print(f"problem-free files {clean}, with any warning or error {clean_flagged}"
          f" ({clean_flagged / clean if clean else 0:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
