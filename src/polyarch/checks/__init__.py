"""Verification of multi-platform images: coverage, labels, ELF machines, secrets, smoke.

The entry points are in :mod:`polyarch.checks.verify` (``verify_source``, ``verify``).
This package module imports nothing, so its modules import each other without a cycle.
"""
