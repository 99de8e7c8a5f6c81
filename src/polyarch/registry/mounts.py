"""Where a blob to push already is on the target registry: its source repositories.

An image built ``FROM REGISTRY/team/base`` and pushed to ``REGISTRY/team/app`` carries
the base's layers; the registry already holds them in ``team/base``, so they are
mounted (``POST /v2/team/app/blobs/uploads/?mount=DIGEST&from=team/base``), not
uploaded again. The source repositories of a blob are learnt from:

* ``containerd.io/distribution.source.<host>=<repo>[,<repo>...]`` annotations on its
  descriptors in the layout (containerd and BuildKit write them where they keep them);
* the base images named in the layout's provenance attestations (SLSA v0.2
  ``materials``, v1 ``resolvedDependencies``: ``pkg:docker/HOST/REPO@TAG?...`` with the
  digest that was pulled);
* base images the caller knows (the ``FROM`` lines of the Dockerfile, a project's
  dependencies).

A base image on the same registry is read (its index and manifests, bounded like every
answer) to know exactly which blobs its repository holds, so a blob is only mounted
from a repository that has it; a base that cannot be read is skipped (its blobs are
uploaded as if it were not there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from polyarch.errors import RegistryError
from polyarch.refs import DOCKER_HUB, ImageRef, ReferenceError, parse_ref
from polyarch.registry.api import RegistryAPI
from polyarch.registry.layout import OCILayout
from polyarch.registry.media import INDEX_TYPES, Manifest, load_json

SOURCE_PREFIX = "containerd.io/distribution.source."
PREDICATE_TYPE = "in-toto.io/predicate-type"
#: Most base images read per push, and child manifests read per base index.
MAX_BASES = 16
MAX_CHILDREN = 64
_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def _host(host: str) -> str:
    h = host.strip().lower()
    return DOCKER_HUB if h in _HUB else h


def _descs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[Any] = [doc.get("config")]
    for key in ("manifests", "layers"):
        value = doc.get(key)
        if isinstance(value, list):
            out += value
    return [d for d in out if isinstance(d, dict) and isinstance(d.get("digest"), str)]


def _walk(layout: OCILayout, root: Manifest) -> Iterable[tuple[Manifest, dict[str, Any]]]:
    """Every manifest under ``root`` (itself included) with its JSON document."""
    todo: list[Manifest] = [root]
    seen: set[str] = set()
    while todo and len(seen) < 1000:
        man = todo.pop()
        if man.digest in seen:
            continue
        seen.add(man.digest)
        try:
            doc = man.json
        except ValueError:
            continue
        yield man, doc
        if man.media_type in INDEX_TYPES:
            for d in _descs(doc):
                if layout.has_blob(d["digest"]):
                    try:
                        todo.append(layout.manifest(d["digest"]))
                    except (RegistryError, ValueError):
                        continue


def annotated_sources(layout: OCILayout, root: Manifest, registry: str) -> dict[str, list[str]]:
    """digest -> repositories on ``registry`` its descriptors' annotations name."""
    out: dict[str, list[str]] = {}
    want = _host(registry)
    for _man, doc in _walk(layout, root):
        for d in _descs(doc):
            ann = d.get("annotations")
            if not isinstance(ann, dict):
                continue
            for key, value in ann.items():
                if not (isinstance(key, str) and key.startswith(SOURCE_PREFIX)
                        and isinstance(value, str)):
                    continue
                if _host(key[len(SOURCE_PREFIX):]) != want:
                    continue
                repos = out.setdefault(d["digest"], [])
                for repo in value.split(","):
                    if repo.strip() and repo.strip() not in repos:
                        repos.append(repo.strip())
    return out


def parse_purl(uri: str, digest: str | None = None) -> ImageRef | None:
    """``pkg:docker/HOST/REPO@TAG?platform=...`` (as BuildKit writes provenance) -> ref."""
    if not uri.startswith("pkg:docker/"):
        return None
    body = uri[len("pkg:docker/"):].split("?", 1)[0].split("#", 1)[0]
    name, _, version = body.partition("@")
    name = unquote(name)
    version = unquote(version)
    text = name
    if digest:
        text += f"@{digest}"
    elif version.startswith("sha256:"):
        text += f"@{version}"
    elif version:
        text += f":{version}"
    try:
        return parse_ref(text)
    except (ReferenceError, ValueError):
        return None


def provenance_bases(layout: OCILayout, root: Manifest) -> list[ImageRef]:
    """The images the layout's provenance attestations say the build pulled."""
    found: list[ImageRef] = []
    for _man, doc in _walk(layout, root):
        layers = doc.get("layers")
        for d in layers if isinstance(layers, list) else []:
            if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
                continue
            ann = d.get("annotations")
            ptype = ann.get(PREDICATE_TYPE) if isinstance(ann, dict) else None
            if not (isinstance(ptype, str) and "provenance" in ptype):
                continue
            size = d.get("size")
            if type(size) is not int or size > 4 * 1024 * 1024:
                continue
            try:
                statement = load_json(layout.blob(d["digest"]))
            except (RegistryError, ValueError):
                continue
            for ref in _materials(statement):
                if ref not in found:
                    found.append(ref)
    return found


def _materials(statement: Any) -> list[ImageRef]:
    pred = statement.get("predicate") if isinstance(statement, dict) else None
    if not isinstance(pred, dict):
        return []
    items: list[Any] = []
    if isinstance(pred.get("materials"), list):  # SLSA v0.2
        items += pred["materials"]
    build_def = pred.get("buildDefinition")
    if isinstance(build_def, dict) and isinstance(build_def.get("resolvedDependencies"), list):
        items += build_def["resolvedDependencies"]  # SLSA v1
    out = []
    for m in items:
        if not isinstance(m, dict) or not isinstance(m.get("uri"), str):
            continue
        dig = m.get("digest")
        sha = dig.get("sha256") if isinstance(dig, dict) else None
        ref = parse_purl(m["uri"], f"sha256:{sha}" if isinstance(sha, str) else None)
        if ref is not None:
            out.append(ref)
    return out


def blobs_of(client: RegistryAPI, base: ImageRef) -> set[str]:
    """Digests of every blob (configs, layers) and child manifest ``base`` references."""
    root = client.get_manifest(base)
    out: set[str] = set()
    mans = [root]
    if root.is_index:
        for d in _descs(root.json)[:MAX_CHILDREN]:
            out.add(d["digest"])
            size = d.get("size")
            mans.append(client.get_manifest(base.untagged().with_digest(d["digest"]),
                                            size=size if type(size) is int else None))
    for man in mans:
        if man.is_index:
            continue
        try:
            out.update(d["digest"] for d in _descs(man.json))
        except ValueError:
            continue
    return out


def mount_sources(client: RegistryAPI, layout: OCILayout, root: Manifest, target: ImageRef,
                  bases: Sequence[ImageRef] = ()) -> dict[str, list[str]]:
    """digest -> repositories of ``target``'s registry to mount it from (see module)."""
    sources = annotated_sources(layout, root, target.registry)
    candidates = [*bases, *provenance_bases(layout, root)]
    seen: set[str] = set()
    for base in candidates:
        if _host(base.registry) != _host(target.registry) or base.repository == target.repository:
            continue
        key = str(base)
        if key in seen or len(seen) >= MAX_BASES:
            continue
        seen.add(key)
        try:
            digests = blobs_of(client, base)
        except (RegistryError, ValueError):
            continue  # gone, malformed, or not readable with these credentials: upload
        for digest in digests:
            repos = sources.setdefault(digest, [])
            if base.repository not in repos:
                repos.append(base.repository)
    return {d: [r for r in repos if r != target.repository] for d, repos in sources.items()}
