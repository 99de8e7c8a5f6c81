"""The ``time`` line of publish and build: where the time went, step by step, and the
build context the builder had to receive again when that is what the build spent."""

from __future__ import annotations

from polyarch.commands._render import timings
from polyarch.pipeline.result import ImageResult


def test_the_time_line_names_each_step_in_order() -> None:
    r = ImageResult("sha256:" + "a" * 64, "application/vnd.oci.image.index.v1+json",
                    build_seconds=1.46, context_bytes=1_627_000)
    assert timings(r) == "build 1.5s, scan 0.0s, push 0.0s, tag 0.0s"


def test_a_context_sent_again_is_said_beside_the_build_time() -> None:
    # Measured: the builder had collected its copy of a 1.5 GB context (two platforms'
    # trees of 750 MB), and the build spent 30 s taking it again.
    r = ImageResult("sha256:" + "a" * 64, "application/vnd.oci.image.index.v1+json",
                    build_seconds=30.04, context_bytes=1_492_830_000)
    assert timings(r) == ("build 30.0s (build context 1,493 MB sent), scan 0.0s,"
                          " push 0.0s, tag 0.0s")
    assert r.to_json()["timings"]["context_bytes"] == 1_492_830_000
