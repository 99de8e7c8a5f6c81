"""Provenance as buildx takes it on the command line: ``--provenance=mode=max`` (a value
only after '='), ``--attest type=provenance,...``; BuildKit's attestations are pushed
with the index, tied to their platform's manifest."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cli_helpers import polyarch
from conftest import make_context
from faultproxy import LocalRegistry

from .helpers import COPY_ONLY, manifest, split

pytestmark = pytest.mark.engine


def _provenance(ref: str) -> list[dict[str, object]]:
    """The provenance predicates of every attestation manifest of the index ``ref``."""
    host, rest = split(ref)
    name, _, tag = rest.partition(":")
    index = manifest(host, name, tag)
    out = []
    for m in index["manifests"]:
        ann = m.get("annotations") or {}
        if ann.get("vnd.docker.reference.type") != "attestation-manifest":
            continue
        att = manifest(host, name, m["digest"])
        for layer in att["layers"]:
            if "provenance" not in (layer.get("annotations") or {}).get(
                    "in-toto.io/predicate-type", ""):
                continue
            r = httpx.get(f"http://{host}/v2/{name}/blobs/{layer['digest']}", timeout=30,
                          follow_redirects=True)
            r.raise_for_status()
            out.append(json.loads(r.content)["predicate"])
    return out


@pytest.mark.parametrize(("flags", "to_buildx"), [
    (["--provenance=mode=max"], "--provenance=mode=max"),
    (["--attest", "type=provenance,mode=max"], "--attest type=provenance,mode=max"),
])
def test_provenance_mode_max_from_the_command_line(flags: list[str], to_buildx: str,
                                                   tmp_path: Path,
                                                   own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    ref = f"{own_registry.address}/team/prov:1"
    run = polyarch("publish", "-t", ref, *flags, str(ctx))
    assert run.code == 0, run.text
    assert to_buildx in run.err  # passed to buildx as given
    preds = _provenance(ref)
    assert len(preds) == 2  # one per platform
    # mode=max records the build's configuration (its steps); mode=min does not.
    assert all("buildConfig" in p for p in preds), [sorted(p) for p in preds]


def test_no_provenance_leaves_no_attestation(tmp_path: Path,
                                              own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    ref = f"{own_registry.address}/team/noprov:1"
    run = polyarch("publish", "-t", ref, "--no-provenance", str(ctx))
    assert run.code == 0, run.text
    assert "--provenance=false" in run.err
    assert _provenance(ref) == []
