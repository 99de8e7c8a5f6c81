"""Keep httpx from importing its command-line client.

httpx imports its CLI module (rich.progress, pygments, ...) when those are installed,
which costs tens of milliseconds per run; polyarch never uses it. A None entry in
sys.modules makes that import fail, and httpx defines a stub in its place.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
