"""The cosign command lines polyarch runs, and the choices behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyarch import redact
from polyarch.errors import UsageError
from polyarch.signing import cosign
from polyarch.signing.cosign import Access, Requirement, Signer

REF = "registry.example.com/team/app@sha256:" + "a" * 64


def test_a_key_signs_without_the_transparency_log_unless_asked() -> None:
    sg = cosign.signer_from("cosign.key", False, None)
    assert sg == Signer(Path("cosign.key"), tlog=False)
    assert cosign.sign_argv(sg, REF, Access()) == [
        "cosign", "sign", "--yes", "--key=cosign.key", "--tlog-upload=false", REF]
    assert cosign.signer_from("cosign.key", False, True) == Signer(Path("cosign.key"), True)
    assert "transparency log: not uploaded" in sg.describe()


def test_keyless_signing_uploads_to_the_transparency_log_unless_told_not_to() -> None:
    sg = cosign.signer_from(None, True, None)
    assert sg is not None and sg.keyless and sg.tlog
    argv = cosign.sign_argv(sg, REF, Access())
    assert argv == ["cosign", "sign", "--yes", "--tlog-upload=true", REF]
    assert not any(a.startswith("--key") for a in argv)
    assert cosign.signer_from(None, True, False) == Signer(None, False)


def test_no_signing_asked() -> None:
    assert cosign.signer_from(None, False, True) is None


def test_attest_names_polyarchs_predicate_type() -> None:
    sg = Signer(Path("k.key"), False)
    argv = cosign.attest_argv(sg, REF, Path("p.json"), Access(plain_http=True))
    assert argv == ["cosign", "attest", "--yes",
                    "--type=https://polyarch.dev/attestation/verification/v1",
                    "--predicate=p.json", "--key=k.key", "--tlog-upload=false",
                    "--allow-http-registry", REF]


def test_registry_access_flags_and_environment() -> None:
    acc = Access(plain_http=False, cacert=Path("/etc/docker/certs.d/r:5000/ca.crt"),
                 docker_config=Path("/home/u/.docker"))
    assert acc.flags() == ["--registry-cacert=/etc/docker/certs.d/r:5000/ca.crt"]
    assert acc.env() == {"COSIGN_YES": "true", "DOCKER_CONFIG": "/home/u/.docker"}
    assert Access(plain_http=True).flags() == ["--allow-http-registry"]


def test_verify_with_a_key_ignores_the_log_unless_asked(tmp_path: Path) -> None:
    pub = tmp_path / "cosign.pub"
    pub.write_text("-----BEGIN PUBLIC KEY-----\n")
    req = cosign.requirement_from(str(pub), None, None, None)
    assert req == Requirement(pub)
    assert cosign.verify_argv(req, REF, Access()) == [
        "cosign", "verify", f"--key={pub}", "--insecure-ignore-tlog=true", "--output=json", REF]
    req = cosign.requirement_from(str(pub), None, None, True)
    assert req is not None
    assert "--insecure-ignore-tlog=true" not in cosign.verify_argv(req, REF, Access())


def test_keyless_verification_names_the_identity_and_issuer() -> None:
    req = cosign.requirement_from("keyless", "https://github.com/o/r/.github/workflows/r.yml"
                                  "@refs/heads/main",
                                  "https://token.actions.githubusercontent.com", None)
    assert req is not None and req.tlog
    argv = cosign.verify_attestation_argv(req, REF, Access())
    assert argv[:3] == ["cosign", "verify-attestation",
                        "--type=https://polyarch.dev/attestation/verification/v1"]
    assert ("--certificate-identity=https://github.com/o/r/.github/workflows/r.yml"
            "@refs/heads/main") in argv
    assert "--certificate-oidc-issuer=https://token.actions.githubusercontent.com" in argv
    assert "--insecure-ignore-tlog=true" not in argv


@pytest.mark.parametrize(("require", "identity", "issuer", "says"), [
    ("keyless", None, "https://i", "needs --certificate-identity"),
    ("keyless", "me", None, "needs --certificate-identity"),
    (None, "me", "https://i", "need --require-signature keyless"),
    ("no-such.pub", None, None, "no such file"),
])
def test_bad_requirements_are_usage_errors(require: str | None, identity: str | None,
                                           issuer: str | None, says: str) -> None:
    with pytest.raises(UsageError) as e:
        cosign.requirement_from(require, identity, issuer, None)
    assert says in e.value.message
    assert e.value.exit_code == 2


def test_a_public_key_is_refused_as_the_signing_key(tmp_path: Path) -> None:
    pub = tmp_path / "cosign.pub"
    pub.write_text("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")
    with pytest.raises(UsageError, match="is not a private key"):
        cosign.check_key(Signer(pub, False))
    key = tmp_path / "cosign.key"
    key.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJr\n")
    cosign.check_key(Signer(key, False))
    with pytest.raises(UsageError, match="cannot read it"):
        cosign.check_key(Signer(tmp_path / "missing.key", False))


def test_the_key_password_is_masked_in_output() -> None:
    cosign.register_secrets({"COSIGN_PASSWORD": "pw-1234567"})
    try:
        assert "pw-1234567" not in redact.text("decrypt failed with pw-1234567")
    finally:
        redact.REDACTOR.clear()
