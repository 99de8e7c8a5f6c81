"""SARIF 2.1.0 output, for code-scanning UIs (GitHub code scanning and others)."""

from __future__ import annotations

from typing import Any

from polyarch.lint.model import RULES, Finding

_LEVEL = {"error": "error", "warning": "warning", "info": "note", "note": "note"}
DOCS = "https://github.com/polyarch/polyarch/blob/main/docs/lint.md"


def to_sarif(findings: list[Finding], version: str) -> dict[str, Any]:
    rules = [{
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "helpUri": f"{DOCS}#{r.id.lower()}-{r.name}",
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
            "tool": {"driver": {"name": "polyarch-lint", "version": version,
                                "informationUri": DOCS, "rules": rules}},
            "results": results,
        }],
    }
