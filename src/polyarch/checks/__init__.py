"""Verification of multi-platform images: coverage, labels, ELF machines, secrets, smoke."""

from __future__ import annotations

from polyarch.checks.verify import CHECKS, Finding, PlatformResult, VerifyReport, verify

__all__ = ["CHECKS", "Finding", "PlatformResult", "VerifyReport", "verify"]
