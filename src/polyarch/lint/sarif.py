"""SARIF 2.1.0 output, for code-scanning UIs (GitHub code scanning and others)."""

from __future__ import annotations

from typing import Any

from polyarch.lint.model import RULES, Finding

_LEVEL = {"error": "error", "warning": "warning", "info": "note", "note": "note"}


def to_sarif(findings: list[Finding], version: str) -> dict[str, Any]:
    rules = [{
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "help": {"text": f"{r.summary} polyarch's docs/lint.md describes {r.id} {r.name}, "
                         "with an example and the fix."},
    } for r in RULES.values()]
    index = {r.id: n for n, r in enumerate(RULES.values())}
    results = [{
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.message}\nfix: {f.hint}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": f.path.lstrip("./") or "Dockerfile"},
            "region": {"startLine": max(f.line, 1)},
        }}],
        "properties": {"severity": f.severity, **({"stage": f.stage} if f.stage else {})},
    } for f in findings]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "polyarch-lint", "version": version, "rules": rules}},
            "results": results,
        }],
    }
