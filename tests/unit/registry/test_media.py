"""Media types and the kinds of index entries."""

from __future__ import annotations


def test_an_attestation_claiming_a_platform_is_a_platform_entry() -> None:
    from polyarch.registry.media import is_attestation

    ann = {"vnd.docker.reference.type": "attestation-manifest"}
    assert is_attestation({"annotations": ann, "platform": {"os": "unknown",
                                                            "architecture": "unknown"}})
    assert is_attestation({"annotations": ann})
    assert not is_attestation({"annotations": ann, "platform": {"os": "linux",
                                                                "architecture": "arm64"}})
