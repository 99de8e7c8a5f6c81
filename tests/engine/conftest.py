"""Engine tests: everything under this folder runs against the real engine and
registries that ``scripts/engine up`` starts; ``tests/conftest.py`` marks them
``engine`` (a missing engine fails them under ``CI=true`` and skips them elsewhere)."""
