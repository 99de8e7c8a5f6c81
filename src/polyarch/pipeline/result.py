"""What a build or publish of one image did (one renderer turns it into output), and the
failure that carries the result so far when verification finds errors."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyarch import redact
from polyarch.errors import VerificationError
from polyarch.pipeline.verify import Verified, findings_text

if TYPE_CHECKING:  # (the steps after the build are loaded while it runs)
    from polyarch.pipeline.build import PlatformBuilt
    from polyarch.pipeline.push import Pushed
    from polyarch.pipeline.sign import Signed
    from polyarch.pipeline.tag import Tagged

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class ImageResult:
    """What a build or publish of one image did; one renderer turns it into output."""

    digest: str
    media_type: str
    tags: tuple[str, ...] = ()
    platforms: tuple[PlatformBuilt, ...] = ()
    build_seconds: float = 0.0
    verified: Verified | None = None
    pushed: Pushed | None = None
    tagged: Tagged | None = None
    outputs: tuple[str, ...] = ()  # what was written or loaded, in words
    layout: str | None = None  # the kept layout, when nothing else was asked for
    dry_run: bool = False
    commands: tuple[tuple[str, ...], ...] = ()
    signed: Signed | None = None
    #: The index annotations the build meant (on the manifest when it built one platform):
    #: what a build descriptor hands to merge.
    annotations: dict[str, str] = field(default_factory=dict)
    #: Build context the builder received; the whole context when it held none from an
    #: earlier build (0 when the engine does not say).
    context_bytes: int = 0

    @property
    def promoted(self) -> bool:
        return self.tagged is not None

    def reference(self) -> str:
        return f"{self.tags[0]}@{self.digest}" if self.tags and self.digest else ""

    def to_json(self) -> dict[str, Any]:
        v = self.verified
        return {
            "schema": SCHEMA_VERSION,
            "dry_run": self.dry_run,
            "index": {"digest": self.digest, "mediaType": self.media_type},
            "tags": list(self.tags),
            "promoted": self.promoted,
            "platforms": [p.to_json() for p in self.platforms],
            "push": self.pushed.to_json() if self.pushed else None,
            "outputs": list(self.outputs),
            "layout": self.layout,
            "timings": {
                "build_seconds": round(self.build_seconds, 3),
                "context_bytes": self.context_bytes,
                "verify_seconds": round(v.seconds, 3) if v else 0.0,
                **(v.timings() if v else {}),
                "push_seconds": round(self.pushed.seconds, 3) if self.pushed else 0.0,
                "tag_seconds": round(self.tagged.seconds, 3) if self.tagged else 0.0,
                "sign_seconds": round(self.signed.seconds, 3) if self.signed else 0.0,
            },
            "signature": self.signed.to_json() if self.signed else None,
            "verification": v.to_json() if v else None,
            "commands": [shlex.join(redact.argv(c)) for c in self.commands],
        }


class VerificationFailed(VerificationError):
    """Verification found errors; carries the partial result (not promoted) that --json
    and the CI outputs show."""

    def __init__(self, message: str, result: ImageResult, detail: str | None) -> None:
        super().__init__(message, detail=detail)
        self.result = result
        self.image_name: str | None = None  # set for an image of a project

    @property
    def doc(self) -> dict[str, Any]:
        """The partial result's ``--json`` document."""
        return self.result.to_json()


def require_ok(v: Verified, partial: ImageResult, *, consequence: str,
               see: str | None = None) -> None:
    """Raise :class:`VerificationFailed` (exit 5) when ``v`` found errors; ``partial``
    is the result so far (built and verified, not promoted)."""
    if v.report is None or v.report.ok:
        return
    raise VerificationFailed(f"{v.report.summary()}; {consequence}", partial,
                             detail=findings_text(v.report, see=see))
