"""Values this run knows are secret (build arguments, ``--secret`` values, registry
passwords), as the content scanner looks for them: found anywhere in a file, they are
the caller's own secret.
"""

from __future__ import annotations

import json

from polyarch import redact

KNOWN_KIND = "value of a secret given to this build"
REMEDY_KNOWN = ("pass it with --secret and RUN --mount=type=secret, and do not write it"
                " to a file or a layer")
#: At most this many known values are looked for, each at least MIN_KNOWN long.
MAX_KNOWN = 16
MIN_KNOWN = 8
_known_for: tuple[str, ...] | None = None
_known: tuple[bytes, ...] = ()


def known_values() -> tuple[bytes, ...]:
    """The values this run knows are secret (:func:`redact.secret_values`), as they
    appear in a file: as given and, where it differs, escaped in a JSON string (an
    in-toto statement, a config file)."""
    global _known_for, _known
    values = redact.secret_values()
    if values is not _known_for:
        out: list[bytes] = []
        for v in values[:MAX_KNOWN]:
            if len(v) < MIN_KNOWN:
                continue
            out.append(v.encode("utf-8", "surrogateescape"))
            escaped = json.dumps(v)[1:-1]
            if escaped != v:
                out.append(escaped.encode("ascii"))
        _known_for, _known = values, tuple(out)
    return _known
