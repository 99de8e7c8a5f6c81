"""Reading ``docker buildx build --progress=rawjson``: step events per platform as they
happen, and a failed build's own text turned into the right typed error."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from polyarch import redact
from polyarch.engines.base import StepEvent
from polyarch.errors import BuildError, EnvironmentProblem, FatalError, RegistryError

_PLATFORM_PREFIX = re.compile(r"^\[(linux/[a-z0-9]+(?:/v\d)?)[\] ]")

# Build error texts that are registry problems, not build problems.
_REGISTRY_PATTERNS = (
    "failed to push", "failed to authorize", "401 unauthorized", "403 forbidden",
    "connection refused", "no such host", "i/o timeout", "server gave http response to https",
    "failed to do request", "unexpected status from", "failed to copy",
)


#: The status BuildKit's image exporters give the image index they write (its digest
#: follows). Once the exporter's own step ("exporting to oci image format") is done, the
#: layout holds the index and every blob it reaches, well before buildx exits (which
#: waits for the daemon to record the build, then writes the layout's index.json).
INDEX_WRITTEN = "exporting manifest list sha256:"

# Failures to reach the builder itself (before any step ran).
_BUILDER_PATTERNS = ("failed to dial grpc", "error during connect", "booting buildkit",
                     "cannot connect to the docker daemon", "no builder", "failed to find driver")


class RawJsonProgress:
    """Incremental parser for ``--progress=rawjson`` (pretty-printed JSON objects on
    stderr, followed by buildx's plain-text error summary)."""

    def __init__(self, on_step: Callable[[StepEvent], None] | None) -> None:
        self.on_step = on_step
        self._buf: list[str] = []
        self.text: list[str] = []  # lines outside JSON objects (the error summary)
        self.vertices: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[str]] = {}
        self._reported: set[tuple[str, str]] = set()
        self._context: dict[str, int] = {}  # vertex -> bytes of build context received
        self._index: str | None = None  # the digest of the index the exporter wrote
        self._exported = False

    @property
    def context_bytes(self) -> int:
        """Bytes of build context the builder received (every platform's ``transferring
        context:`` status and each named context's ``transferring NAME:``, at its
        largest). Small when the
        builder still held the context of an earlier build and took only what changed;
        the whole context when it had none (first build, or its cache was collected)."""
        return sum(self._context.values())

    def feed(self, line: str) -> None:
        if self._buf or line == "{":
            self._buf.append(line)
            if line == "}":
                blob = "\n".join(self._buf)
                self._buf = []
                try:
                    self._status(json.loads(blob))
                except ValueError:
                    self.text.extend(blob.splitlines())
            return
        self.text.append(line)

    def _status(self, st: dict[str, Any]) -> None:
        for v in st.get("vertexes") or []:
            d = v.get("digest", "")
            cur = self.vertices.setdefault(d, {})
            cur.update({k: x for k, x in v.items() if x is not None})
            self._maybe_report(d, cur)
        for s in st.get("statuses") or []:
            sid = str(s.get("id", ""))
            if sid.startswith(INDEX_WRITTEN) and s.get("completed"):
                self._index = sid.removeprefix("exporting manifest list ")
            # "transferring context:" and, for a named context, "transferring NAME:";
            # the Dockerfile's own transfer is no build context.
            if sid.startswith("transferring ") and sid != "transferring dockerfile:":
                v = str(s.get("vertex", ""))
                n = s.get("current")
                if isinstance(n, int):
                    self._context[v] = max(self._context.get(v, 0), n)
        if self._index is not None and not self._exported and any(
                str(v.get("name", "")).startswith("exporting to ") and v.get("completed")
                and not v.get("error") for v in self.vertices.values()):
            self._exported = True
            if self.on_step is not None:
                self.on_step(StepEvent(None, self._index, "exported"))
        for log in st.get("logs") or []:
            try:
                data = base64.b64decode(log.get("data", "")).decode("utf-8", "replace")
            except ValueError:
                continue
            self.logs.setdefault(log.get("vertex", ""), []).append(data)

    def _maybe_report(self, d: str, v: dict[str, Any]) -> None:
        name = str(v.get("name", ""))
        if v.get("error") and name.startswith("importing cache manifest"):
            state = "no cache yet"  # a missing cache is not an error; BuildKit goes on
        elif v.get("error"):
            state = "error"
        elif v.get("completed"):
            state = "cached" if v.get("cached") else "done"
        elif v.get("started"):
            state = "started"
        else:
            return
        if (d, state) in self._reported:
            return
        self._reported.add((d, state))
        if self.on_step is None:
            return
        m = _PLATFORM_PREFIX.match(name)
        secs = None
        if state in ("done", "error") and v.get("started") and v.get("completed"):
            secs = _elapsed(str(v["started"]), str(v["completed"]))
        self.on_step(StepEvent(m.group(1) if m else None, name, state, v.get("error"), secs))

    def failed_steps(self) -> list[tuple[str, str, str]]:
        """(step name, error, its log output) for every vertex that failed."""
        out = []
        for d, v in self.vertices.items():
            name = str(v.get("name", ""))
            if name.startswith("importing cache manifest"):
                continue
            if v.get("error") and "context canceled" not in str(v.get("error")):
                out.append((str(v.get("name", "")), str(v["error"]), "".join(self.logs.get(d, []))))
        return out


def build_failure(parser: RawJsonProgress) -> FatalError:
    """Turn a failed build's progress into the right typed error with the build's own text.

    The text is masked (:mod:`polyarch.redact`): a build argument's secret value that a
    step echoed, or that BuildKit repeats in an error, is not carried into the message,
    its detail, or the ``::error::`` annotation made from it."""
    summary = redact.text("\n".join(line for line in parser.text if line.strip()).strip())
    steps = parser.failed_steps()
    detail_parts = []
    for name, _err, log in steps[:2]:
        detail_parts.append(f"--- {name}")
        if log.strip():
            detail_parts.append("\n".join(log.rstrip().splitlines()[-30:]))
    if summary:
        detail_parts.append(summary)
    detail = redact.text("\n".join(detail_parts))
    last = next((ln for ln in reversed(parser.text) if ln.startswith("ERROR:")), "")
    reason = last.removeprefix("ERROR:").strip() or (steps[0][1] if steps else "build failed")
    reason = redact.text(reason)
    steps = [(redact.text(n), redact.text(e), lg) for n, e, lg in steps]
    low = (reason + " " + summary).lower()
    if not steps and any(p in low for p in _BUILDER_PATTERNS):
        return EnvironmentProblem(f"the builder is not reachable: {reason}",
                                  hint="check the builder with 'docker buildx inspect"
                                  " --bootstrap' (and DOCKER_HOST / --context / --builder)",
                                  detail=detail or None)
    push_step = not steps or all(n.startswith(("exporting", "pushing")) for n, _e, _l in steps)
    if any(p in low for p in _REGISTRY_PATTERNS) and push_step:
        return RegistryError(f"push failed: {reason.removeprefix('failed to solve: ')}",
                             detail=detail or None)
    where = f" in step {steps[0][0]}" if steps else ""
    return BuildError(f"build failed{where}: {reason}", detail=detail or None)


def _elapsed(a: str, b: str) -> float | None:
    try:
        return (_ts(b) - _ts(a)).total_seconds()
    except ValueError:
        return None


def _ts(s: str) -> datetime:
    # Go timestamps carry nanoseconds; Python takes microseconds.
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError(s)
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz)
