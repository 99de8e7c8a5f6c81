"""The build options as engine flags: buildx gets them unchanged, podman gets what it has
and refuses the rest with one error naming the flag."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from polyarch import config
from polyarch.config.table import BY_NAME
from polyarch.engines import BuildRequest
from polyarch.engines.base import engine_argv
from polyarch.engines.buildx import Buildx
from polyarch.engines.podman import PodmanEngine, unsupported
from polyarch.errors import UsageError
from polyarch.pipeline.build import engine_args
from polyarch.platforms import parse_platforms

DIGEST = "sha256:" + "b" * 64


def request(**kw: object) -> BuildRequest:
    """A request; the passthrough options (``network=...``) reach it as the build step
    puts them there, from the option table."""
    passthrough = {k: kw.pop(k) for k in list(kw) if k in BY_NAME and BY_NAME[k].engine}
    base: dict[str, object] = {
        "context": Path("ctx"), "dockerfile": Path("ctx/Dockerfile"),
        "platforms": parse_platforms("linux/amd64,linux/arm64"),
        "output": Path("layout"),
        "args": engine_args(config.override(config.Options(platforms=()), passthrough, "test"))}
    base.update(kw)
    return BuildRequest(**base)  # type: ignore[arg-type]


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_every_buildx_flag_reaches_the_argv_unchanged() -> None:
    req = request(
        build_contexts={"base": f"docker-image://127.0.0.1:5000/t/base@{DIGEST}",
                        "src": "oci-layout:///srv/layout@" + DIGEST},
        ssh=("default", "gh=/run/k1,/run/k2"),
        annotation_args=("index:org.opencontainers.image.description=a, b",
                         "manifest[linux/arm64]:x.y=1", "plain=2"),
        attest=("type=sbom,generator=docker/buildkit-syft-scanner",),
        provenance="mode=max", sbom=True,
        cache_from=("type=registry,ref=127.0.0.1:5000/t/app:cache",),
        cache_to=("type=registry,ref=127.0.0.1:5000/t/app:cache,mode=max",),
        network="host", shm_size="2g", ulimits=("nofile=1024:2048", "nproc=512"),
        entitlements=("network.host", "security.insecure"))
    argv = Buildx().build_argv(req, Path("meta.json"))
    assert pairs(argv, "--build-context") == [
        f"base=docker-image://127.0.0.1:5000/t/base@{DIGEST}", f"src=oci-layout:///srv/layout@{DIGEST}"]
    assert pairs(argv, "--ssh") == ["default", "gh=/run/k1,/run/k2"]
    assert pairs(argv, "--annotation") == list(req.annotation_args)
    assert pairs(argv, "--attest") == ["type=sbom,generator=docker/buildkit-syft-scanner"]
    assert "--provenance=mode=max" in argv and "--sbom=true" in argv
    assert pairs(argv, "--cache-from") == list(req.cache_from)
    # A registry cache holds the image's layers: it is exported only after verification,
    # by a cache-only build of the same request.
    assert pairs(argv, "--cache-to") == []
    export = Buildx().build_argv(replace(req, cache_only=True, output=None), Path("meta.json"))
    assert pairs(export, "--cache-to") == list(req.cache_to)
    assert pairs(export, "--output") == ["type=cacheonly"]
    assert pairs(argv, "--network") == ["host"]
    assert pairs(argv, "--shm-size") == ["2g"]
    assert pairs(argv, "--ulimit") == ["nofile=1024:2048", "nproc=512"]
    assert pairs(argv, "--allow") == ["network.host", "security.insecure"]
    assert argv[-1] == "ctx"  # the context stays last


def test_buildx_bool_attestations() -> None:
    argv = Buildx().build_argv(request(provenance=False, sbom=False), Path("m"))
    assert "--provenance=false" in argv and "--sbom=false" in argv
    argv = Buildx().build_argv(request(), Path("m"))
    assert not [a for a in argv if a.startswith(("--provenance", "--sbom"))]


def test_podman_maps_what_it_has() -> None:
    req = request(build_contexts={"base": f"docker-image://127.0.0.1:5000/t/base@{DIGEST}"},
                  ssh=("default",), annotation_args=("manifest:a.b=1", "c.d=2"),
                  network="none", shm_size="64m", ulimits=("nofile=1024:2048",))
    argv = PodmanEngine(list_name="localhost/x:1").build_argv(req, logfile=Path("log"))
    assert pairs(argv, "--build-context") == [f"base=docker-image://127.0.0.1:5000/t/base@{DIGEST}"]
    # The context's image is on a loopback registry: the build's own registries.conf
    # says so, rather than TLS off for every registry.
    assert "--tls-verify=false" not in argv
    assert "127.0.0.1:5000" in PodmanEngine().plain_http_hosts(req)
    assert pairs(argv, "--ssh") == ["default"]
    assert pairs(argv, "--annotation") == ["a.b=1", "c.d=2"]
    assert pairs(argv, "--network") == ["none"]
    assert pairs(argv, "--shm-size") == ["64m"]
    assert pairs(argv, "--ulimit") == ["nofile=1024:2048"]


def test_podman_keeps_tls_for_remote_context_images() -> None:
    req = request(build_contexts={"base": "docker-image://ghcr.io/o/base:1", "src": "../src"})
    argv = PodmanEngine(list_name="localhost/x:1").build_argv(req, logfile=Path("log"))
    assert "--tls-verify=false" not in argv
    assert PodmanEngine().plain_http_hosts(req) == set()
    assert pairs(argv, "--build-context") == ["base=docker-image://ghcr.io/o/base:1", "src=../src"]


@pytest.mark.parametrize(("kw", "flag"), [
    ({"attest": ("type=sbom",)}, "--attest"),
    ({"sbom": "generator=x/y"}, "--sbom"),
    ({"provenance": True}, "--provenance"),
    ({"entitlements": ("network.host",)}, "--allow-entitlement"),
    ({"cache_from": ("type=registry,ref=r/c",)}, "--cache-from"),
    ({"annotation_args": ("index:a=1",)}, "--annotation index:a="),
    ({"annotation_args": ("manifest[linux/arm64]:a=1",)}, "--annotation manifest[linux/arm64]:a="),
])
def test_podman_refuses_the_rest_naming_the_flag(kw: dict[str, object], flag: str) -> None:
    with pytest.raises(UsageError) as e:
        unsupported(request(**kw))
    assert flag in e.value.line() and e.value.exit_code == 2
    assert "--engine docker" in e.value.line()


def test_podman_takes_annotation_keys_with_colons() -> None:
    unsupported(request(annotation_args=("com.example:x=1",)))  # no TYPE prefix: fine


def test_options_to_request_round_trip(tmp_path: Path) -> None:
    """The options reach the request through the build step's mapping."""
    from polyarch.pipeline.build import request as build_request

    opts = config.load({"annotations": ["index:k=v"], "ssh": ["default"], "network": "host",
                        "shm-size": "1g", "ulimits": ["nproc=10"], "entitlements": ["network.host"],
                        "attest": ["type=sbom"], "cache-from": ["type=local,src=/c"],
                        "cache-to": ["type=local,dest=/c"], "sbom": "generator=a/b",
                        "build-contexts": ["base=docker-image://r/b:1"]},
                       env={}, cwd=tmp_path)
    req = build_request(opts, tmp_path / "layout", annotations={})
    args = engine_argv(req.args, "docker")
    assert req.annotation_args == ("index:k=v",) and pairs(args, "--ssh") == ["default"]
    assert (pairs(args, "--network"), pairs(args, "--shm-size"), pairs(args, "--ulimit")) == (
        ["host"], ["1g"], ["nproc=10"])
    assert pairs(args, "--allow") == ["network.host"] and pairs(args, "--attest") == ["type=sbom"]
    assert req.cache_from == ("type=local,src=/c",) and req.cache_to == ("type=local,dest=/c",)
    assert req.sbom == "generator=a/b" and req.build_contexts == {"base": "docker-image://r/b:1"}


def test_podman_reads_oci_layouts_through_its_oci_transport(tmp_path: Path) -> None:
    from polyarch.engines.podman_layout import oci_layout_context

    one, two = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": one, "annotations": {"org.opencontainers.image.ref.name": "base"}},
        {"digest": two}]}))
    assert oci_layout_context(f"oci-layout://{tmp_path}@{one}") == \
        f"container-image://oci:{tmp_path}:base"
    assert oci_layout_context(f"oci-layout://{tmp_path}:v1") == f"container-image://oci:{tmp_path}:v1"
    assert oci_layout_context(f"oci-layout://{tmp_path}") == f"container-image://oci:{tmp_path}"
    assert oci_layout_context("docker-image://r/b:1") == "docker-image://r/b:1"
    with pytest.raises(UsageError, match="has none in a layout of 2 images"):
        oci_layout_context(f"oci-layout://{tmp_path}@{two}")
    with pytest.raises(UsageError, match="has no sha256:3"):
        unsupported(request(build_contexts={"b": f"oci-layout://{tmp_path}@sha256:{'3' * 64}"}))
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"digest": two}]}))
    assert oci_layout_context(f"oci-layout://{tmp_path}@{two}") == f"container-image://oci:{tmp_path}"


def test_one_platform_buildx_build_puts_index_annotations_on_the_manifest() -> None:
    """BuildKit refuses index annotations when it exports one platform ("index annotations
    not supported for single platform export"): polyarch's own and the user's go on the
    manifest; several platforms keep them on the index."""
    ann = {"org.opencontainers.image.revision": "abc"}
    args = ("index:k=v", "index-descriptor:d=1", "manifest,index:both=2", "plain=3",
            "com.example:x=4")
    one = Buildx().build_argv(request(platforms=parse_platforms("linux/arm64"),
                                      annotations=ann, annotation_args=args), Path("m"))
    assert pairs(one, "--annotation") == [
        "manifest:org.opencontainers.image.revision=abc", "manifest:k=v",
        "manifest-descriptor:d=1", "manifest:both=2", "plain=3", "com.example:x=4"]
    two = Buildx().build_argv(request(annotations=ann, annotation_args=args), Path("m"))
    assert pairs(two, "--annotation") == [
        "index:org.opencontainers.image.revision=abc", *args]


def test_the_index_annotations_a_build_means() -> None:
    from polyarch.pipeline.build import index_annotations

    req = request(annotations={"org.opencontainers.image.revision": "abc"},
                  annotation_args=("index:k=v", "manifest:m=1", "manifest,index:both=a=b",
                                   "index[linux/amd64]:p=1", "plain=2"))
    assert index_annotations(req) == {"org.opencontainers.image.revision": "abc", "k": "v",
                                      "both": "a=b"}


@pytest.mark.parametrize("kind", ["nested", "fifo", "list"])
def test_podman_layout_context_with_a_hostile_index_json(tmp_path: Path, kind: str) -> None:
    import os

    from polyarch.engines.podman_layout import oci_layout_context

    index = tmp_path / "index.json"
    if kind == "nested":
        index.write_text("[" * 100_000)
    elif kind == "fifo":
        os.mkfifo(index)  # read as a file, it would wait for a writer forever
    else:
        index.write_text("[]")
    with pytest.raises(UsageError, match="index.json"):
        oci_layout_context(f"oci-layout://{tmp_path}@sha256:{'1' * 64}")
