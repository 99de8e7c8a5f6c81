"""Secrets in attestations: the in-toto statements (provenance, SBOM) pushed with an image.

BuildKit's provenance in ``mode=max`` records every build argument
(``invocation.parameters.args``: ``"build-arg:NPM_TOKEN": "npm_..."``) and the
environment of every build step (``llbDefinition[].op.exec.meta.env``), of every stage,
also those whose layers the final image does not keep. Anyone who can pull the image
can read its attestations, so a statement is scanned like a file (token formats, values
given to this build) and read as JSON for those two places, where a value under a
secret-looking name is a finding whatever its format.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

from polyarch.checks.secrets.content import ContentScanner
from polyarch.checks.secrets.hits import SecretHit
from polyarch.checks.secrets.image import REMEDY_ARG, pair_hits

#: Statements up to this size are also read as JSON (all of them are scanned as text).
MAX_PARSE = 16 << 20
#: JSON values looked at in one statement, at most.
MAX_NODES = 1_000_000
_ARG = "build-arg:"


def statement_name(predicate_type: str) -> str:
    """``provenance``, ``SBOM`` or ``in-toto`` for an in-toto predicate type."""
    t = predicate_type.lower()
    if "provenance" in t:
        return "provenance"
    if any(w in t for w in ("spdx", "cyclonedx", "sbom", "syft")):
        return "SBOM"
    return "in-toto"


def scan_statement(chunks: Iterable[bytes]) -> list[SecretHit]:
    """Findings of one attestation layer (an in-toto statement), streamed: at most
    :data:`MAX_PARSE` bytes are held, for the JSON reading."""
    scanner = ContentScanner("")
    held: list[bytes] | None = []
    size = 0
    for chunk in chunks:
        scanner.feed(chunk)
        size += len(chunk)
        if held is not None:
            if size <= MAX_PARSE:
                held.append(chunk)
            else:
                held = None
    text_hits = scanner.finish()
    found: list[SecretHit] = []
    if held is not None:
        try:
            doc = json.loads(b"".join(held))
        except (ValueError, RecursionError):
            doc = None
        found = _structured(doc)
    kinds = {h.kind for h in found}
    return found + [h for h in text_hits if h.kind not in kinds]


def _structured(doc: Any) -> list[SecretHit]:
    """Build arguments and build-step environments with secret values, breadth first
    (the invocation's build arguments before the steps' environments that repeat
    them), iteratively (no recursion however deep the statement is)."""
    hits: list[SecretHit] = []
    seen: set[tuple[str, str]] = set()
    queue = deque([doc])
    nodes = 0
    while queue and nodes < MAX_NODES:
        node = queue.popleft()
        nodes += 1
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    queue.append(value)
                if not isinstance(key, str):
                    continue
                if key.startswith(_ARG) and isinstance(value, str):
                    name = key[len(_ARG):]
                    found = pair_hits(name, value, "build argument recorded in the attestation",
                                      f"build argument {name}", REMEDY_ARG.format(name=name))
                elif key == "env" and isinstance(value, list):
                    found = []
                    for item in value:
                        if isinstance(item, str) and "=" in item:
                            name, _, v = item.partition("=")
                            found += pair_hits(
                                name, v, "secret in a build step's environment",
                                f"environment of a build step, {name}",
                                REMEDY_ARG.format(name=name))
                else:
                    continue
                for h in found:
                    # A build argument is in every step's environment too: once.
                    name = h.where.rpartition(" ")[2]
                    if (h.kind, name) not in seen:
                        seen.add((h.kind, name))
                        hits.append(h)
        elif isinstance(node, list):
            queue.extend(v for v in node if isinstance(v, (dict, list)))
    return hits
