"""Signing with the real cosign against the loopback registry (transparency log off):
the index is signed and its verification attested by digest before any tag moves,
cosign itself verifies every tag, a failed verification signs nothing, and a tag moved
by hand to another index fails ``polyarch verify --require-signature``."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import LocalRegistry, TestCA

from .helpers import COPY_ONLY, WRONG_ARCH, split

PREDICATE = "https://polyarch.dev/attestation/verification/v1"
PASSWORD = "correct-horse-battery-staple"

needs_cosign = pytest.mark.skipif(shutil.which("cosign") is None,
                                  reason="cosign is not installed (scripts/engine cosign)")
pytestmark = [pytest.mark.engine, needs_cosign]


def cosign(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cosign", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**_env(), "COSIGN_PASSWORD": PASSWORD},
                          stdin=subprocess.DEVNULL)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    r = cosign("generate-key-pair", cwd=d)
    assert r.returncode == 0, r.stderr
    assert (d / "cosign.key").is_file() and (d / "cosign.pub").is_file()
    return d


def _publish(ctx: Path, keys: Path, *refs: str, extra: tuple[str, ...] = ()) -> tuple[int, str,
                                                                                   str, str]:
    tags = [a for r in refs for a in ("-t", r)]
    run = polyarch("publish", *tags, "--sign-key", str(keys / "cosign.key"), "--json", *extra,
                   str(ctx), env={"COSIGN_PASSWORD": PASSWORD})
    return run.code, run.out, run.err, run.text


def test_published_tags_verify_with_cosign_and_carry_the_attestation(
        tmp_path: Path, keys: Path, own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{own_registry.address}/team/signed"
    code, out, err, text = _publish(ctx, keys, f"{repo}:1.0", f"{repo}:latest",
                                    extra=("--smoke", ""))
    assert code == 0, text
    doc = json.loads(out)
    digest = doc["index"]["digest"]
    assert doc["signature"]["attestation"] == "signed"
    assert doc["signature"]["tlog"] is False
    assert "transparency log: not uploaded" in err
    assert PASSWORD not in text

    # The signing commands ran (side by side) before the first tag moved.
    first_tag = err.index(f"tag {repo}:1.0")
    assert err.index("+ cosign sign") < first_tag and err.index("+ cosign attest") < first_tag

    # cosign itself verifies every tag against the public key.
    for tag in ("1.0", "latest"):
        r = cosign("verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
                   "--allow-http-registry", f"{repo}:{tag}", cwd=keys)
        assert r.returncode == 0, r.stderr
        assert digest in r.stdout

    # ... and shows the verification predicate, naming both platforms by digest.
    r = cosign("verify-attestation", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
               "--allow-http-registry", f"--type={PREDICATE}", f"{repo}:1.0", cwd=keys)
    assert r.returncode == 0, r.stderr
    stmt = json.loads(base64.b64decode(json.loads(r.stdout.splitlines()[0])["payload"]))
    assert stmt["predicateType"] == PREDICATE
    assert stmt["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
    pred = stmt["predicate"]
    assert pred["verifier"]["name"] == "polyarch" and pred["result"] == "pass"
    assert pred["index"]["digest"] == digest
    plats = {p["platform"]: p for p in pred["platforms"]}
    assert set(plats) == {"linux/amd64", "linux/arm64"}
    built = {p["platform"]: p["digest"] for p in doc["platforms"]}
    for name, p in plats.items():
        assert p["digest"] == built[name]
        assert p["checks"]["binaries"] == "pass" and p["checks"]["smoke"] == "pass"

    # polyarch verify checks both, and inspect shows them.
    run = polyarch("verify", f"{repo}:1.0", "--require-signature", str(keys / "cosign.pub"),
                   "--require-attestation", "--json")
    assert run.code == 0, run.text
    assert run.json()["signature"]["attestation"]["index"]["digest"] == digest
    run = polyarch("inspect", f"{repo}:latest")
    assert run.code == 0, run.text
    assert "signed by:  cosign (key" in run.out
    assert "verified by polyarch" in run.out


def test_failed_verification_pushes_no_signature_and_no_attestation(
        tmp_path: Path, keys: Path, own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=WRONG_ARCH)
    repo = f"{own_registry.address}/team/bad"
    code, _out, err, text = _publish(ctx, keys, f"{repo}:1.0")
    assert code == 5, text
    assert "cosign" not in err.replace("--sign-key", "")  # cosign never ran
    host, name = split(repo)
    assert registry_tags(host, name) == []


def test_a_tag_moved_by_hand_to_another_index_fails_require_signature(
        tmp_path: Path, keys: Path, own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{own_registry.address}/team/app"
    code, _out, _err, text = _publish(ctx, keys, f"{repo}:1.0")
    assert code == 0, text
    pub = str(keys / "cosign.pub")
    assert polyarch("verify", f"{repo}:1.0", "--require-signature", pub).code == 0

    # Another index (published without signing) is put under the signed tag by hand.
    other = make_context(tmp_path / "other", dockerfile=COPY_ONLY + "LABEL other=1\n")
    run = polyarch("publish", "-t", f"{repo}:unsigned", str(other))
    assert run.code == 0, run.text
    subprocess.run(["skopeo", "copy", "--all", "--src-tls-verify=false",
                    "--dest-tls-verify=false", f"docker://{repo}:unsigned",
                    f"docker://{repo}:1.0"], check=True, capture_output=True, timeout=120)
    run = polyarch("verify", f"{repo}:1.0", "--require-signature", pub)
    assert run.code == 5, run.text
    assert "signature" in last_error_line(run)
    run = polyarch("verify", f"{repo}:1.0", "--require-attestation")
    assert run.code == 5, run.text


def test_a_wrong_key_password_moves_no_tag(tmp_path: Path, keys: Path,
                                           own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{own_registry.address}/team/pw"
    run = polyarch("publish", "-t", f"{repo}:1.0", "--sign-key", str(keys / "cosign.key"),
                   str(ctx), env={"COSIGN_PASSWORD": "wrong-password-here"})
    assert run.code == 3, run.text
    line = last_error_line(run)
    assert "signing" in line and "cosign" in line
    assert "wrong-password-here" not in run.text
    host, name = split(repo)
    assert "1.0" not in registry_tags(host, name)


def test_unsigned_verification_attestation_is_a_referrer_of_the_index(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{own_registry.address}/team/att"
    run = polyarch("publish", "-t", f"{repo}:1.0", "--attest-verification", "--json", str(ctx))
    assert run.code == 0, run.text
    digest = run.json()["index"]["digest"]
    host, name = split(repo)
    assert sorted(registry_tags(host, name)) == sorted(["1.0", digest.replace(":", "-")])
    run = polyarch("verify", f"{repo}:1.0", "--require-attestation", "--json")
    assert run.code == 0, run.text
    pred = run.json()["signature"]["attestation"]
    assert {p["platform"] for p in pred["platforms"]} == {"linux/amd64", "linux/arm64"}


def test_keyless_signing_in_a_dry_run_prints_cosigns_command_lines(tmp_path: Path,
                                                                   registry: str) -> None:
    """Keyless signing needs an OIDC issuer (GitHub Actions, GitLab CI): here only its
    command lines are checked, after the build's, one sign and one attest per repository,
    uploaded to the transparency log."""
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    run = polyarch("publish", "--dry-run", "--sign", "-t", "ghcr.io/o/app:1",
                   "-t", f"{registry}/o/app:1", "--json", str(ctx))
    assert run.code == 0, run.text
    cmds = run.json()["commands"]
    assert cmds[0].startswith("docker buildx build")
    signing = [c for c in cmds if c.startswith("cosign ")]
    assert signing == [
        "cosign sign --yes --tlog-upload=true 'ghcr.io/o/app@sha256:<index digest>'",
        f"cosign attest --yes --type={PREDICATE} '--predicate=<verification predicate>'"
        " --tlog-upload=true 'ghcr.io/o/app@sha256:<index digest>'",
        f"cosign sign --yes --tlog-upload=true --allow-http-registry"
        f" '{registry}/o/app@sha256:<index digest>'",
        f"cosign attest --yes --type={PREDICATE} '--predicate=<verification predicate>'"
        f" --tlog-upload=true --allow-http-registry '{registry}/o/app@sha256:<index digest>'",
    ]
    assert "--key" not in " ".join(signing)


def test_merge_signs_the_joined_index_before_its_tag_moves(tmp_path: Path, keys: Path,
                                                           own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{own_registry.address}/team/merged"
    for plat in ("amd64", "arm64"):
        run = polyarch("publish", "--platform", f"linux/{plat}", "-t", f"{repo}:{plat}",
                       str(ctx))
        assert run.code == 0, run.text
    run = polyarch("merge", "-t", f"{repo}:1.0", "--sign-key", str(keys / "cosign.key"),
                   "--json", f"{repo}:amd64", f"{repo}:arm64",
                   env={"COSIGN_PASSWORD": PASSWORD})
    assert run.code == 0, run.text
    doc = run.json()
    digest = doc["index"]["digest"]
    assert doc["signature"]["attestation"] == "signed"
    assert run.err.index("+ cosign sign") < run.err.index(f"tag {repo}:1.0")
    r = cosign("verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
               "--allow-http-registry", f"{repo}:1.0", cwd=keys)
    assert r.returncode == 0, r.stderr
    assert digest in r.stdout
    run = polyarch("verify", f"{repo}:1.0", "--require-signature", str(keys / "cosign.pub"),
                   "--require-attestation", "--no-deep", "--json")
    assert run.code == 0, run.text
    pred = run.json()["signature"]["attestation"]
    assert {p["platform"] for p in pred["platforms"]} == {"linux/amd64", "linux/arm64"}
    # The single-platform parts were not signed: only what was verified as a whole is.
    run = polyarch("verify", f"{repo}:amd64", "--platform", "linux/amd64",
                   "--require-signature", str(keys / "cosign.pub"), "--no-deep")
    assert run.code == 5, run.text


def test_every_image_of_a_project_is_signed_before_the_first_tag_moves(
        tmp_path: Path, keys: Path, own_registry: LocalRegistry) -> None:
    root = tmp_path / "proj"
    for name, dockerfile in (("base", COPY_ONLY), ("app", "FROM base\nLABEL app=1\n")):
        make_context(root / name, dockerfile=dockerfile)
    repo = f"{own_registry.address}/proj"
    (root / "polyarch.toml").write_text(f"""
[[image]]
name = "base"
context = "base"
tags = ["{repo}/base:1"]

[[image]]
name = "app"
context = "app"
depends-on = ["base"]
tags = ["{repo}/app:1"]
""")
    run = polyarch("publish", "--sign-key", str(keys / "cosign.key"), "--json", cwd=root,
                   env={"COSIGN_PASSWORD": PASSWORD})
    assert run.code == 0, run.text
    images = {i["name"]: i for i in run.json()["images"]}
    assert run.err.count("+ cosign sign") == 2
    assert run.err.rindex("+ cosign attest") < run.err.index("==> tag image base")
    for name in ("base", "app"):
        assert images[name]["signature"]["attestation"] == "signed"
        r = cosign("verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
                   "--allow-http-registry", f"{repo}/{name}:1", cwd=keys)
        assert r.returncode == 0, r.stderr
        assert images[name]["index"]["digest"] in r.stdout


def test_a_registry_with_a_private_ca_is_signed_with_that_ca(tmp_path: Path, keys: Path) -> None:
    """cosign gets the CA polyarch trusts for the registry (certs.d) as --registry-cacert."""
    ca = TestCA(tmp_path / "ca")
    certs_d = tmp_path / "certs.d"
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    with LocalRegistry(tmp_path / "tls-reg", tls=ca.issue("127.0.0.1")) as reg:
        (certs_d / reg.address).mkdir(parents=True)
        shutil.copy(ca.cert, certs_d / reg.address / "ca.crt")
        repo = f"{reg.address}/team/tls"
        run = polyarch("publish", "-t", f"{repo}:1", "--sign-key", str(keys / "cosign.key"),
                       str(ctx), env={"COSIGN_PASSWORD": PASSWORD,
                                      "POLYARCH_CERTS_D": str(certs_d)})
        assert run.code == 0, run.text
        assert f"--registry-cacert={certs_d / reg.address / 'ca.crt'}" in run.err
        assert "--allow-http-registry" not in run.err
        r = cosign("verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
                   f"--registry-cacert={ca.cert}", f"{repo}:1", cwd=keys)
        assert r.returncode == 0, r.stderr
        run = polyarch("verify", f"{repo}:1", "--require-signature", str(keys / "cosign.pub"),
                       "--require-attestation", "--no-deep",
                       env={"POLYARCH_CERTS_D": str(certs_d)})
        assert run.code == 0, run.text
