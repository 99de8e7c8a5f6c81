"""Precision and recall of `polyarch lint` on a folder of hand-labelled Dockerfiles.

    python benchmarks/lint_precision.py FOLDER LABELS.tsv [--platform LIST] [-v]

LABELS.tsv: one file a line, tab separated: file name, rules (comma separated, `-` for
none), then anything (source, note); `#` lines are comments. A (file, rule) pair counts
once: a true positive when the linter reports the rule at severity warning or error and
the label lists it, a false positive when the label does not, a false negative when
the label lists a rule the linter does not report. Notes and infos are not counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polyarch.lint import lint
from polyarch.platforms import parse_platforms


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("labels", type=Path)
    ap.add_argument("--platform", default="linux/amd64,linux/arm64")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    platforms = parse_platforms(a.platform)
    tp = fp = fn = files = 0
    for raw in a.labels.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, rules = raw.split("\t")[:2]
        want = set() if rules.strip() == "-" else {r.strip() for r in rules.split(",")}
        path = a.folder / name
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
        if a.verbose and got != want:
            print(f"{name}: false positive {sorted(got - want)}, missed {sorted(want - got)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"files {files}  labelled pairs {tp + fn}  reported pairs {tp + fp}")
    print(f"true positives {tp}  false positives {fp}  false negatives {fn}")
    print(f"precision {precision:.3f}  recall {recall:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
