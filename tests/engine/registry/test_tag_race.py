"""Publishes of the same tags at the same time, against the real registry: a registry
moves one tag per request, so two publishes can leave ``:1`` on one image and
``:latest`` on the other. The tag step reads its tags back after moving them and
reports such a split (exit 7, which tag names which digest) instead of success."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from faultproxy import Fault, FaultProxy, make_layer, push_index

from polyarch.errors import TagsSplit
from polyarch.pipeline.tag import move_tags
from polyarch.refs import ImageRef, parse_ref
from polyarch.registry import Manifest, RegistryClient

pytestmark = pytest.mark.engine


def images(client: RegistryClient, repo: str, n: int) -> list[Manifest]:
    """``n`` different indexes pushed by digest to ``repo`` (tagged ``src-i`` only)."""
    out = []
    for i in range(n):
        layer = make_layer({"which": f"{i}\n".encode()}, "gzip")
        ref = parse_ref(f"{repo}:src-{i}")
        push_index(client, ref, [("linux/amd64", [(*layer, "gzip")])])
        out.append(client.get_manifest(ref))
    return out


def test_a_tag_moved_by_another_publish_in_between_is_reported(registry: str,
                                                               repo: str) -> None:
    path = repo.split("/", 1)[1]
    with RegistryClient() as direct, FaultProxy(registry) as proxy, \
            RegistryClient() as client:
        mine, theirs = images(direct, repo, 2)
        targets = [parse_ref(f"{proxy.address}/{path}:1"),
                   parse_ref(f"{proxy.address}/{path}:latest")]
        # This publish's write of :latest is held back; meanwhile another one moves :1.
        proxy.add(Fault.delay(3.0), method="PUT", match="/manifests/latest")

        def other_publish() -> None:
            for _ in range(200):
                if any(r.method == "PUT" and r.path.endswith("/manifests/1")
                       for r in proxy.log):
                    break
                time.sleep(0.02)
            direct.put_manifest(parse_ref(f"{repo}:1"), theirs.data, theirs.media_type)

        other = threading.Thread(target=other_publish)
        other.start()
        with pytest.raises(TagsSplit) as ei:
            move_tags(client, mine.data, mine.media_type, targets)
        other.join()
        assert ei.value.exit_code == 7
        msg = ei.value.message
        assert f"{targets[0]} -> {theirs.digest} (another publish)" in msg, msg
        assert f"{targets[1]} -> {mine.digest} (this publish)" in msg, msg
        assert "\n" not in msg
        # Nothing was put back: the split is reported as it is.
        assert direct.head_manifest(parse_ref(f"{repo}:1")) == theirs.digest
        assert direct.head_manifest(parse_ref(f"{repo}:latest")) == mine.digest


def test_a_later_publish_that_moved_every_tag_is_a_warning(repo: str) -> None:
    with RegistryClient() as client:
        mine, theirs = images(client, repo, 2)
        targets = [parse_ref(f"{repo}:1"), parse_ref(f"{repo}:latest")]
        warnings: list[str] = []

        class Later(RegistryClient):
            """This publish's client; another publish moves every tag between this
            one's writes and its read-back."""

            writes = 0
            interleaved = False

            def put_manifest(self, ref: ImageRef, data: bytes, media_type: str) -> str:
                self.writes += 1
                return super().put_manifest(ref, data, media_type)

            def head_manifest(self, ref: ImageRef) -> str | None:
                if self.writes == len(targets) and not self.interleaved:
                    self.interleaved = True
                    for t in targets:
                        client.put_manifest(t, theirs.data, theirs.media_type)
                return super().head_manifest(ref)

        with Later() as later:
            move_tags(later, mine.data, mine.media_type, targets, warn=warnings.append)
        assert len(warnings) == 1
        assert "another publish moved every tag after this one" in warnings[0]
        assert f"{targets[0]} -> {theirs.digest}" in warnings[0]
        assert mine.digest in warnings[0]


def test_concurrent_publishes_never_all_claim_success_on_split_tags(repo: str) -> None:
    """Five publishes of :1 and :latest at once, several rounds: whenever the tags end
    on different images, at least one of the publishes said so."""
    writers = 5
    with RegistryClient() as client:
        mans = images(client, repo, writers)
        targets = [parse_ref(f"{repo}:1"), parse_ref(f"{repo}:latest")]
        splits_seen = 0
        for _round in range(8):
            start = threading.Barrier(writers)

            def publish(man: Manifest, start: threading.Barrier = start) -> str:
                with RegistryClient() as own:
                    start.wait(timeout=30)
                    try:
                        move_tags(own, man.data, man.media_type, targets)
                    except TagsSplit as e:
                        return e.message
                return ""

            with ThreadPoolExecutor(writers) as pool:
                reports = list(pool.map(publish, mans))
            final = {client.head_manifest(t) for t in targets}
            if len(final) > 1:
                splits_seen += 1
                assert any(reports), (final, reports)
            for report in filter(None, reports):
                # Every report names both tags with a digest each.
                assert all(f"{t} -> sha256:" in report for t in targets), report
        print(f"rounds that ended split: {splits_seen} of 8")


def test_a_tag_that_cannot_be_read_back_is_a_warning_not_a_split(registry: str,
                                                                  repo: str) -> None:
    path = repo.split("/", 1)[1]
    with RegistryClient() as direct, FaultProxy(registry) as proxy:
        (mine,) = images(direct, repo, 1)
        targets = [parse_ref(f"{proxy.address}/{path}:1"),
                   parse_ref(f"{proxy.address}/{path}:latest")]
        warnings: list[str] = []
        # The read-backs of :latest fail (its first HEAD, before the move, passes).
        class FlakyReadBack(RegistryClient):
            def put_manifest(self, ref: ImageRef, data: bytes, media_type: str) -> str:
                out = super().put_manifest(ref, data, media_type)
                if ref.tag == "latest":
                    proxy.add(Fault.status(503), method="HEAD", match="/manifests/latest",
                              times=None)
                return out

        with FlakyReadBack(retries=1, backoff=0.01) as flaky:
            move_tags(flaky, mine.data, mine.media_type, targets, warn=warnings.append)
        assert direct.head_manifest(parse_ref(f"{repo}:latest")) == mine.digest
    assert len(warnings) == 1
    assert f"could not read back {targets[1]}" in warnings[0]
