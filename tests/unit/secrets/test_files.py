"""Credential detectors on generated files: what they find, and that they never echo values."""

from __future__ import annotations

import base64
import json

import pytest

from polyarch.checks.secrets import SecretHit, env_hits, is_candidate, scan

TOKEN = "npm_Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBvXo"


def hits(path: str, text: str | bytes) -> list[SecretHit]:
    assert is_candidate(path), path
    data = text.encode() if isinstance(text, str) else text
    found = scan(path, data)
    for h in found:
        # No finding may carry a value from the file.
        for word in data.decode(errors="replace").replace("=", " ").replace(":", " ").split():
            if len(word) >= 12 and word.isalnum():
                assert word not in h.describe()
    return found


def kinds(found: list[SecretHit]) -> list[str]:
    return [h.kind for h in found]


def test_npmrc_with_token() -> None:
    found = hits("/root/.npmrc", f"registry=https://registry.npmjs.org/\n"
                                 f"//registry.npmjs.org/:_authToken={TOKEN}\n")
    assert kinds(found) == ["npm auth token"]
    assert found[0].where == "line 2, _authToken"
    assert TOKEN not in found[0].describe()


@pytest.mark.parametrize("text", [
    "registry=https://registry.npmjs.org/\n",
    "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
    "//registry.npmjs.org/:_authToken=\n",
])
def test_npmrc_without_token(text: str) -> None:
    assert hits("/app/.npmrc", text) == []


def test_docker_config_with_auths() -> None:
    auth = base64.b64encode(b"bob:hunter2hunter2").decode()
    doc = {"auths": {"ghcr.io": {"auth": auth}, "quay.io": {}}}
    found = hits("/root/.docker/config.json", json.dumps(doc))
    assert kinds(found) == ["docker registry credentials"]
    assert "ghcr.io" in found[0].where and auth not in found[0].describe()


def test_docker_config_with_helper_only_is_fine() -> None:
    doc = {"auths": {"ghcr.io": {}}, "credsStore": "desktop"}
    assert hits("/root/.docker/config.json", json.dumps(doc)) == []
    assert hits("/app/node_modules/x/config.json", '{"name": "x"}') == []


def test_ssh_private_keys_fail_and_packaged_tls_keys_warn() -> None:
    key = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
    assert kinds(hits("/root/.ssh/id_ed25519", key)) == ["private SSH key"]
    rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
    assert kinds(hits("/home/u/id_rsa", rsa)) == ["private SSH key"]
    # A TLS key shipped by some package: a warning, not a failure.
    tls = hits("/usr/lib/python3/test/keycert.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n")
    assert [(h.kind, h.severity) for h in tls] == [("private key (PEM)", "warning")]
    assert hits("/root/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAC3Nz user@host\n") == []


def test_git_credentials_file_is_found_without_its_token() -> None:
    found = hits("/root/.git-credentials", "https://bob:ghp_abcdefghijklmnop1234@github.com\n")
    assert kinds(found) == ["git credentials"]
    assert "ghp_" not in found[0].describe()


def test_aws_and_google_cloud_credential_files_are_found() -> None:
    aws = ("[default]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"
           "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n")
    found = hits("/root/.aws/credentials", aws)
    assert kinds(found) == ["AWS credentials file"]
    assert found[0].where == "line 3, aws_secret_access_key"
    sa = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n",
          "client_email": "x@y.iam.gserviceaccount.com"}
    found = hits("/app/gcp-service-account.json", json.dumps(sa))
    assert "Google Cloud service account key" in kinds(found)
    assert kinds(hits("/root/.config/gcloud/application_default_credentials.json", "{}")) == [
        "Google Cloud credentials"]


def test_env_files_report_secret_keys_by_line() -> None:
    text = ("# settings\nDEBUG=1\nDATABASE_PASSWORD=s3cr3tPassw0rdValue\n"
            "API_KEY='k_live_abcdef123456'\nSECRET_KEY=${SECRET_KEY}\n"
            "TOKEN_URL=https://auth.example.com\nexport GITHUB_TOKEN=ghp_xyz\n")
    found = hits("/app/.env", text)
    assert [h.where for h in found] == ["line 3, key DATABASE_PASSWORD", "line 4, key API_KEY",
                                        "line 7, key GITHUB_TOKEN"]
    assert not is_candidate("/app/.env.example")
    assert is_candidate("/app/.env.production") and is_candidate("/app/prod.env")


def test_netrc_and_pypirc() -> None:
    netrc = "machine example.com login bob password pa55w0rdValue\n"
    assert kinds(hits("/root/.netrc", netrc)) == ["netrc password"]
    pypirc = "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n"
    assert kinds(hits("/root/.pypirc", pypirc)) == ["PyPI credentials (.pypirc)"]


def test_image_env_reports_only_secret_valued_keys() -> None:
    found = env_hits(["PATH=/usr/bin", "NPM_TOKEN=npm_abcdefghijklmnop", "PASSWORD_FILE=/run/s",
                      "API_KEY=", "GPG_KEY_ID=ABC"])
    assert [h.where for h in found] == ["key NPM_TOKEN"]


def test_ordinary_files_are_not_candidates() -> None:
    for p in ("/bin/busybox", "/etc/passwd", "/usr/share/doc/readme.txt", "/app/main.py"):
        assert not is_candidate(p)
