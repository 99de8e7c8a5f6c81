"""Secrets in images: file contents (token formats, streamed), credential files by name,
and image metadata (config env, labels, history, annotations).

Findings (:class:`SecretHit`) carry a kind, a place and at most a masked fingerprint
(``ghp_…(40 chars)``), never a secret value.
"""

from __future__ import annotations

from polyarch.checks.secrets.attest import scan_statement, statement_name
from polyarch.checks.secrets.content import ContentScanner, scan_bytes
from polyarch.checks.secrets.files import MAX_SIZE, is_candidate, is_env_file, scan
from polyarch.checks.secrets.hits import SecretHit, fingerprint
from polyarch.checks.secrets.image import (
    build_args_of,
    scan_annotations,
    scan_config,
    scan_descriptors,
)
from polyarch.checks.secrets.kinds import content_wanted, is_elf, skip_by_magic, vendored
from polyarch.checks.secrets.known import known_values
from polyarch.checks.secrets.parsers import env_hits, secret_env_key

__all__ = [
    "MAX_SIZE",
    "ContentScanner",
    "SecretHit",
    "build_args_of",
    "content_wanted",
    "env_hits",
    "fingerprint",
    "is_candidate",
    "is_elf",
    "known_values",
    "is_env_file",
    "scan",
    "scan_annotations",
    "scan_bytes",
    "scan_config",
    "scan_descriptors",
    "scan_statement",
    "secret_env_key",
    "skip_by_magic",
    "statement_name",
    "vendored",
]
