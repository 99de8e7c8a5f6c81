"""``polyarch build`` without a registry: the verified image written as an OCI archive or
layout directory, loaded into the local engine, or kept in the cache."""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import free_port, make_context

from .helpers import COPY_ONLY, needs_podman

ENGINES = ["docker", pytest.param("podman", marks=needs_podman)]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("outputs") / "ctx", dockerfile=COPY_ONLY)


def _archive_index(path: Path) -> dict[str, object]:
    with tarfile.open(path) as t:
        names = t.getnames()
        assert "oci-layout" in names or "./oci-layout" in names, names
        member = t.extractfile("index.json" if "index.json" in names else "./index.json")
        assert member is not None
        doc = json.loads(member.read())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("engine", ENGINES)
def test_archive_with_no_registry(engine: str, context: Path, tmp_path: Path,
                                  cache_dir: Path) -> None:
    """-o oci:app.tar needs no registry: the only one named listens nowhere."""
    nowhere = f"127.0.0.1:{free_port()}/team/app:1"
    app = tmp_path / "app.tar"
    run = polyarch("build", "--engine", engine, "-t", nowhere, "-o", f"oci:{app}", "--json",
                   str(context))
    assert run.code == 0, run.text
    doc = run.json()
    assert doc["push"] is None and doc["promoted"] is False and doc["layout"] is None
    assert doc["outputs"] == [f"wrote the OCI archive {app}"]
    assert doc["verification"]["ok"] is True
    assert sorted(p["platform"] for p in doc["platforms"]) == ["linux/amd64", "linux/arm64"]
    # The archive holds the very index that was verified.
    index = _archive_index(app)
    manifests = index["manifests"]
    assert isinstance(manifests, list)
    assert doc["index"]["digest"] in {m["digest"] for m in manifests}

    check = polyarch("verify", f"oci:{app}", "--json")
    assert check.code == 0, check.text
    assert check.json()["ok"] is True
    assert check.json()["index_digest"] == doc["index"]["digest"]
    assert sorted(p["platform"] for p in check.json()["platforms"]) == ["linux/amd64",
                                                                       "linux/arm64"]
    shown = polyarch("inspect", "--json", f"oci:{app}")
    assert shown.code == 0, shown.text
    assert sorted(p["platform"] for p in shown.json()["platforms"]) == ["linux/amd64",
                                                                       "linux/arm64"]
    # Nothing stayed behind in the cache.
    assert not any((cache_dir / "builds").iterdir())


def test_archive_without_any_tag(context: Path, tmp_path: Path, cache_dir: Path) -> None:
    app = tmp_path / "app.tar"
    run = polyarch("build", "-o", f"oci:{app}", str(context))
    assert run.code == 0, run.text
    assert f"wrote the OCI archive {app}" in run.out
    assert polyarch("verify", f"oci:{app}").code == 0


def test_an_oci_layout_output_is_written_replaced_and_verifiable(context: Path, tmp_path: Path,
                                                                 cache_dir: Path) -> None:
    out = tmp_path / "layout"
    run = polyarch("build", "-o", f"oci:{out}", "--json", str(context))
    assert run.code == 0, run.text
    digest = run.json()["index"]["digest"]
    assert (out / "oci-layout").is_file()
    index = json.loads((out / "index.json").read_text())
    assert digest in {m["digest"] for m in index["manifests"]}
    assert (out / "blobs/sha256" / digest.removeprefix("sha256:")).is_file()
    # An existing layout is replaced (any other non-empty directory is refused: see
    # tests/unit/pipeline/test_outputs.py).
    again = polyarch("build", "-o", f"oci:{out}", "--json", str(context))
    assert again.code == 0, again.text
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [again.json()["index"]["digest"]]
    check = polyarch("verify", f"oci:{out}", "--json")
    assert check.code == 0 and check.json()["ok"] is True, check.text


def test_nothing_asked_keeps_the_layout_in_the_cache(context: Path, cache_dir: Path) -> None:
    run = polyarch("build", "--json", str(context))
    assert run.code == 0, run.text
    doc = run.json()
    assert doc["outputs"] == [] and doc["push"] is None
    kept = Path(doc["layout"])
    assert kept.parent == cache_dir / "builds"
    assert (kept / "oci-layout").is_file() and (kept / "index.json").is_file()
    assert polyarch("verify", f"oci:{kept}").code == 0
    # The human output says where it is and how to get it out.
    run = polyarch("build", str(context))
    assert run.code == 0, run.text
    line = next(ln for ln in run.out.splitlines() if ln.startswith("kept"))
    path = Path(line.split("oci:", 1)[1])
    assert path.parent == cache_dir / "builds" and path.is_dir()
    assert "-o oci:PATH, --load or --push" in run.out


@pytest.fixture
def loaded_name() -> Iterator[str]:
    name = f"polyarch-test/load-{uuid.uuid4().hex[:10]}:1"
    yield name
    subprocess.run(["docker", "image", "rm", "--force", name], capture_output=True)


def _docker_run(name: str, platform: str) -> str:
    r = subprocess.run(["docker", "run", "--rm", "--pull", "never", "--platform", platform,
                        name, "uname", "-m"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_load_every_platform(context: Path, loaded_name: str, cache_dir: Path) -> None:
    run = polyarch("build", "--load", "-t", loaded_name, "--json", str(context))
    assert run.code == 0, run.text
    assert run.json()["outputs"] == [
        f"loaded into docker as docker.io/{loaded_name}: every platform (containerd image"
        " store)"]
    assert _docker_run(loaded_name, "linux/arm64") == "aarch64"
    assert _docker_run(loaded_name, "linux/amd64") == "x86_64"


@needs_podman
def test_podman_load_keeps_the_host_platform(context: Path, tmp_path: Path,
                                             cache_dir: Path) -> None:
    name = f"localhost/polyarch-test/load-{uuid.uuid4().hex[:10]}:1"
    try:
        run = polyarch("build", "--engine", "podman", "--load", "-t", name, "--json",
                       str(context))
        assert run.code == 0, run.text
        (said,) = run.json()["outputs"]
        assert said.startswith(f"loaded into podman as {name}: the host's platform only")
        # Under the name asked for only: not also under the cache's path, which podman
        # gave the pull from the layout.
        names = subprocess.run(["podman", "images", "--all", "--format",
                                "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True,
                               check=True, timeout=120).stdout.split()
        assert not [n for n in names if str(cache_dir).lstrip("/") in n], names
        r = subprocess.run(["podman", "run", "--rm", "--pull", "never", name, "uname", "-m"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "x86_64"
    finally:
        subprocess.run(["podman", "rmi", "--force", name], capture_output=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rebuild_writes_only_its_new_blobs(engine: str, tmp_path: Path,
                                             cache_dir: Path) -> None:
    """Every build's layout shares the cache's blob store: the second build, whose only new
    layer is the top one, finds every other blob already linked in and BuildKit's
    exporter skips them (same inode as the store's); its layout holds only what its
    index reaches."""
    dockerfile = COPY_ONLY + "COPY top.txt /top.txt\n"
    ctx = make_context(tmp_path / "ctx", dockerfile=dockerfile)
    (ctx / "top.txt").write_text(f"one {uuid.uuid4().hex}\n")
    first = tmp_path / "first"
    run = polyarch("build", "--engine", engine, "-o", f"oci:{first}", str(ctx))
    assert run.code == 0, run.err
    store = cache_dir / "blobs" / "sha256"
    stored = {p.name: p.stat().st_ino for p in store.iterdir()}
    assert len(stored) >= 6, stored  # 2 platforms: index, 2 manifests, 2 configs, layers

    (ctx / "top.txt").write_text(f"two {uuid.uuid4().hex}\n")
    # No output asked: the layout stays in the cache, as the exporter wrote it.
    run = polyarch("build", "--engine", engine, "--json", str(ctx))
    assert run.code == 0, run.err
    layout = Path(run.json()["layout"])
    blobs = {p.name: p.stat().st_ino for p in (layout / "blobs" / "sha256").iterdir()}
    now = {p.name: p.stat().st_ino for p in store.iterdir()}
    reused = [h for h in blobs if h in stored]
    new = [h for h in blobs if h not in stored]
    # The lower layers (one per platform) were not written again: the layout's files are the
    # store's (same inode), linked in before the build and left alone by the exporter.
    assert len(reused) >= 2, (reused, new)
    if engine == "docker":
        # BuildKit's exporter skips a blob its destination has; podman (containers/image)
        # writes it again (same bytes, a new file): correct, only slower.
        assert all(blobs[h] == stored[h] for h in reused), (reused, new)
    # What is new (top layers, configs, manifests, index) went into the store too.
    assert new and all(now[h] == blobs[h] for h in new)
    # The layout holds exactly what its index reaches: not the first build's top layers.
    first_only = set(stored) - set(blobs)
    assert first_only and not first_only & set(blobs)


def test_buildx_says_the_index_is_stored_before_it_ends(tmp_path: Path) -> None:
    """The exporter's step ends (and the event that starts the judging ahead comes) with
    the index and every blob it reaches stored whole in the layout (each read back
    against its digest), while buildx still runs: it is the digest buildx reports at
    the end."""
    from polyarch.engines import BuildRequest, StepEvent
    from polyarch.engines.buildx import Buildx
    from polyarch.platforms import parse_platforms
    from polyarch.registry import OCILayout

    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    for arch in ("amd64", "arm64"):  # new layers: a real export
        (ctx / f"rootfs-{arch}" / "nonce").write_text(uuid.uuid4().hex)
    out = tmp_path / "out"
    seen: list[tuple[str, set[str]]] = []

    def step(ev: StepEvent) -> None:
        if ev.state == "exported":
            lay = OCILayout(out, partial=True)
            reached = set()
            for m in lay.manifest(ev.name).json["manifests"]:  # every blob, read whole
                man = lay.manifest(m["digest"])
                for d in [man.json["config"], *man.json["layers"]]:
                    reached.add(d["digest"])
                    assert sum(len(c) for c in lay.iter_blob(d["digest"])) == d["size"]
            seen.append((ev.name, reached))

    req = BuildRequest(context=ctx, dockerfile=ctx / "Dockerfile",
                       platforms=parse_platforms("linux/amd64,linux/arm64"), output=out)
    res = Buildx().build(req, on_step=step)
    assert len(seen) == 1, seen
    digest, reached = seen[0]
    assert digest == res.digest and len(reached) >= 4  # two configs, two layers at least
