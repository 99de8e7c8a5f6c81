"""A platform judged once in a run is not judged again: the same manifests verified a
second time (the publish verifies each platform on its own, then the index) give the
same report without merging and judging their files again."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch.checks import deep
from polyarch.checks.deep import Judged
from polyarch.checks.verify import verify_source
from polyarch.platforms import EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

from .test_layers import elf

BOTH = parse_platforms("linux/amd64,linux/arm64")
GHP = "ghp_Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"


def layout(tmp_path: Path) -> OCILayout:
    amd = make_layer({"bin/app": elf(EM_X86_64), "srv/.npmrc":
                      f"//registry.npmjs.org/:_authToken={GHP}\n".encode()})
    arm = make_layer({"bin/app": elf(EM_X86_64)})  # the wrong machine
    return OCILayout(write_oci_layout(tmp_path / "l", [("linux/amd64", [(*amd, "gzip")]),
                                                       ("linux/arm64", [(*arm, "gzip")])]))


def test_the_second_verification_takes_the_verdicts(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = layout(tmp_path)
    judged = Judged()
    first = verify_source(src, BOTH, cache=None, processes=0, judged=judged)
    merges: list[int] = []
    real = deep.merge
    monkeypatch.setattr(deep, "merge", lambda scans: merges.append(1) or real(scans))
    second = verify_source(src, BOTH, cache=None, processes=0, judged=judged)
    assert merges == []
    # Nothing read again: its layers count as known (cached) this time.
    assert (second.layers_read, second.layers_cached) == (0, first.layers_read)
    same = {"elapsed_seconds": 0, "layers_read": 0, "layers_cached": 0}
    assert second.to_json() | same == first.to_json() | same
    assert {f.kind for _, f in second.errors()} >= {"wrong-machine"}
    assert any(f.check == "secrets" for _, f in second.errors())
    # Other --allow rules for a platform are another judgement of it (arm64's changed,
    # amd64's did not).
    third = verify_source(src, BOTH, allow=["linux/arm64=/bin/app"], cache=None,
                          processes=0, judged=judged)
    assert merges == [1]
    assert {f.kind for _, f in third.errors()} == {"credential"}  # only amd64's token is left


def test_an_attestation_scanned_once_is_not_scanned_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyarch.checks import attestations

    from .test_attestations import NPM, layout_with_attestation, provenance

    amd = parse_platforms("linux/amd64")
    src = OCILayout(layout_with_attestation(tmp_path, provenance({"NPM_TOKEN": NPM})))
    scans: list[str] = []
    real = attestations._attestation
    monkeypatch.setattr(attestations, "_attestation",
                        lambda s, d: scans.append(d["digest"]) or real(s, d))
    judged = Judged()
    first = verify_source(src, amd, cache=None, processes=0, judged=judged)
    second = verify_source(src, amd, cache=None, processes=0, judged=judged)
    assert len(scans) == 1
    for report in (first, second):  # the token is found both times, from the one scan
        assert [f.kind for _, f in report.errors()] == ["attestation"]
    verify_source(src, amd, cache=None, processes=0)  # without the run's verdicts: scanned
    assert len(scans) == 2


def test_a_value_learnt_after_a_verdict_is_looked_for_again(tmp_path: Path) -> None:
    """A platform judged before a secret value was known (a registry password is learnt
    when the registry is first asked, perhaps while the build still runs) is judged
    again once it is: its verdict does not answer for that value."""
    from polyarch import redact

    value = "Kq7pLm2Xv9TzR4wN8sYb"
    layer = make_layer({"srv/app/settings.txt": f"password {value}\n".encode()})
    src = OCILayout(write_oci_layout(tmp_path / "v", [("linux/amd64", [(*layer, "gzip")]),
                                                      ("linux/arm64", [(*layer, "gzip")])]))
    judged = Judged()
    try:
        before = verify_source(src, BOTH, cache=None, processes=0, judged=judged)
        redact.register([value])
        after = verify_source(src, BOTH, cache=None, processes=0, judged=judged)
        again = verify_source(src, BOTH, cache=None, processes=0, judged=judged)
    finally:
        redact.REDACTOR.clear()
    assert before.ok and before.layers_read == 1
    assert not after.ok and after.layers_read == 1  # judged again, with the value
    assert any("value of a secret given to this build" in f.message for _, f in after.errors())
    assert again.layers_read == 0 and again.to_json()["platforms"] == after.to_json()["platforms"]
