"""What a secret detector reports: where and what kind, never the value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretHit:
    kind: str
    #: Where (``line 3``, ``key NPM_TOKEN``, ``history entry 4``): never the secret itself.
    where: str = ""
    severity: str = "error"
    #: 1-based line of a file where the secret starts (None when not from a file's text).
    line: int | None = None
    #: A masked fingerprint such as ``ghp_…(40 chars)``: the fixed, public prefix of a
    #: token format and the length, never a secret character.
    fingerprint: str = ""
    #: How to avoid it (``pass it with --secret ...``); empty when obvious.
    remedy: str = ""

    def describe(self) -> str:
        text = f"{self.kind} {self.fingerprint}" if self.fingerprint else self.kind
        if self.where:
            text += f" ({self.where})"
        if self.remedy:
            text += f": {self.remedy}"
        return text


def fingerprint(value: bytes | str, public_prefix: int = 0) -> str:
    """``ghp_…(40 chars)``: the first ``public_prefix`` characters (the format's fixed
    prefix, never random material) and the length."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return f"{text[:public_prefix]}…({len(text)} chars)"
