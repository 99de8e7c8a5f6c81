"""The platforms of a built image index, each on its own: what the verification of
one platform reads (:mod:`.overlap` verifies them so while the blobs of those that
passed leave; :mod:`.ahead` judges them while the engine finishes the build)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polyarch.platforms import Platform
from polyarch.registry.layout import OCILayout
from polyarch.registry.media import OCI_INDEX, Manifest, is_attestation


class OnePlatform(OCILayout):
    """The layout seen as an index of one platform entry (with the attestation
    manifests that describe it): what that platform's own verification reads."""

    def __init__(self, path: Path, entry: dict[str, Any], attached: list[dict[str, Any]],
                 *, partial: bool = False) -> None:
        super().__init__(path, partial=partial)
        self.description = f"oci:{path} ({entry['digest'][:19]})"
        self._entry = [entry, *attached]

    def root(self) -> Manifest:
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": self._entry}).encode()
        return self._learn(Manifest.from_bytes(data, OCI_INDEX))


def platform_views(lay: OCILayout, root: Manifest, expected: Sequence[Platform], *,
                   partial: bool = False) -> list[tuple[str, list[Platform], OCILayout]]:
    """Each platform entry of ``root``: its digest, the expected platforms it matches
    and the layout seen as an index of that entry alone (with the attestation manifests
    attached to it). ``partial``: the layout's index.json is not written yet."""
    manifests = [d for d in root.json.get("manifests") or [] if isinstance(d, dict)]

    def attached(entry: dict[str, Any]) -> list[dict[str, Any]]:
        return [d for d in manifests if is_attestation(d) and (d.get("annotations") or {})
                .get("vnd.docker.reference.digest") == entry["digest"]]

    out: list[tuple[str, list[Platform], OCILayout]] = []
    for entry in manifests:
        if is_attestation(entry) or not isinstance(entry.get("digest"), str):
            continue
        pd = entry.get("platform") or {}
        mine = [p for p in expected if p.matches(str(pd.get("os")), str(pd.get("architecture")),
                                                 pd.get("variant"))]
        out.append((entry["digest"], mine, OnePlatform(lay.path, entry, attached(entry),
                                                        partial=partial)))
    return out
