"""Credential files of other tools, found by their names and read the way each tool reads
them; keys a package generates at install time (SSH host keys, the snakeoil TLS key).
Every value here is made up; the layouts follow each tool's documentation."""

from __future__ import annotations

import base64
import json

import pytest

from polyarch.checks import layers
from polyarch.checks.secrets import is_candidate, scan_bytes

PW = "Qx7vLm2Kp9Rw4Tz"  # a made-up password (no format of its own)
B64 = base64.b64encode(f"alice:{PW}".encode()).decode()

FOUND = [
    # podman, skopeo, buildah: ${XDG_RUNTIME_DIR}/containers/auth.json
    ("/run/user/0/containers/auth.json", json.dumps({"auths": {"quay.io": {"auth": B64}}}),
     "container registry credentials (auth.json)"),
    ("/root/.config/containers/auth.json", json.dumps({"auths": {"ghcr.io": {"auth": B64}}}),
     "container registry credentials (auth.json)"),
    # Composer: ~/.composer/auth.json or a project's auth.json
    ("/var/www/app/auth.json", json.dumps({"http-basic": {"repo.acme.dev": {
        "username": "alice", "password": PW}}}), "Composer credentials (auth.json)"),
    ("/root/.config/composer/auth.json", json.dumps({"github-oauth": {"github.com": PW}}),
     "Composer credentials (auth.json)"),
    # libpq's password file: hostname:port:database:username:password
    ("/root/.pgpass", f"# dev\ndb.internal:5432:app:app:{PW}\n",
     "PostgreSQL password file (.pgpass)"),
    # Maven
    ("/root/.m2/settings.xml", f"<settings><servers><server><id>nexus</id>"
     f"<username>ci</username><password>{PW}</password></server></servers></settings>\n",
     "Maven credentials (settings.xml)"),
    # Cargo: $CARGO_HOME/credentials.toml (the Rust image's CARGO_HOME is /usr/local/cargo)
    ("/usr/local/cargo/credentials.toml", f'[registry]\ntoken = "cio{PW}"\n',
     "Cargo registry token"),
    ("/root/.cargo/credentials", f'[registries.acme]\ntoken = "{PW}"\n', "Cargo registry token"),
    # Vault's token helper file
    ("/root/.vault-token", "s.Qx7vLm2Kp9Rw4TzAb3Cd5Ef\n", "HashiCorp Vault token (.vault-token)"),
    # Terraform: terraform login's credentials file, and the CLI config's credentials block
    ("/root/.terraform.d/credentials.tfrc.json", json.dumps({"credentials": {
        "app.terraform.io": {"token": f"{PW}.atlasv1.{PW}{PW}"}}}),
     "Terraform credentials (credentials.tfrc.json)"),
    ("/root/.terraformrc", f'credentials "app.terraform.io" {{\n  token = "{PW}"\n}}\n',
     "Terraform credentials"),
    # RubyGems
    ("/root/.gem/credentials", f"---\n:rubygems_api_key: rubygems_{PW}\n", "RubyGems credentials"),
    # .netrc and kubeconfig
    ("/root/.netrc", f"machine git.acme.dev login ci password {PW}\n", "netrc password"),
    ("/root/.kube/config", f"users:\n- name: ci\n  user:\n    token: {PW}\n",
     "Kubernetes credentials (kubeconfig)"),
]


@pytest.mark.parametrize("path,text,kind", FOUND, ids=[c[0] for c in FOUND])
def test_credential_files_of_other_tools(path: str, text: str, kind: str) -> None:
    assert is_candidate(path)
    hits = scan_bytes(path, text.encode())
    assert kind in [h.kind for h in hits], [h.describe() for h in hits]
    assert all(h.severity == "error" for h in hits)
    shown = " ".join(h.describe() for h in hits)
    assert PW not in shown and B64 not in shown


CLEAN = [
    # An i18n file named auth.json (a package's translations), an empty podman file.
    ("/app/locales/en/auth.json", json.dumps({"login": "Sign in", "password": "Password"})),
    ("/run/containers/0/auth.json", json.dumps({"auths": {}})),
    ("/root/.pgpass", "# host:port:db:user:password\n*:*:*:app:*\n"),
    # Maven's default settings.xml: its <password> examples are inside comments.
    ("/usr/share/maven/conf/settings.xml",
     "<settings>\n<!--\n<server>\n<id>deploymentRepo</id>\n<username>repouser</username>\n"
     "<password>repopwd</password>\n</server>\n-->\n<servers></servers></settings>\n"),
    ("/root/.m2/settings.xml", "<settings><servers><server><password>${env.NEXUS_PW}</password>"
     "</server></servers></settings>"),
    ("/usr/local/cargo/credentials.toml", "[registry]\n"),
    ("/root/.vault-token", "\n"),
]


@pytest.mark.parametrize("path,text", CLEAN, ids=[c[0] for c in CLEAN])
def test_clean_files_of_other_tools(path: str, text: str) -> None:
    assert scan_bytes(path, text.encode()) == []


def test_name_rules_apply_whatever_the_first_bytes() -> None:
    # A .pgpass whose first host name happens to start with "MZ" (a Windows
    # executable's magic) or a gzip-looking byte pair is still read by name.
    for head in (b"MZhost", b"\x1f\x8bhost"):
        data = head + f":5432:app:app:{PW}\n".encode()
        sink = layers.content_scanner("/root/.pgpass", data[:64])
        assert sink is not None
        sink.feed(data)
        assert [h.kind for h in sink.finish()] == ["PostgreSQL password file (.pgpass)"]
    # Other files with such first bytes are still skipped.
    assert layers.content_scanner("/app/data.bin", b"\x1f\x8b\x08\x00") is None


HOST_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
            "-----END OPENSSH PRIVATE KEY-----\n")
SNAKEOIL = ("-----BEGIN PRIVATE KEY-----\n"
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDLq3Wd9Xz0pQ7m\n"
            "-----END PRIVATE KEY-----\n")


def test_ssh_host_key_baked_in_says_how_to_generate_it_at_start() -> None:
    (hit,) = scan_bytes("/etc/ssh/ssh_host_ed25519_key", HOST_KEY.encode())
    assert hit.kind == "SSH host key baked into the image" and hit.severity == "error"
    assert "ssh-keygen -A" in hit.remedy and "--allow '/etc/ssh/ssh_host_*'" in hit.remedy
    # A user's key at another path stays a private SSH key.
    (other,) = scan_bytes("/root/.ssh/id_ed25519", HOST_KEY.encode())
    assert other.kind == "private SSH key"


def test_snakeoil_key_baked_in_says_how_to_generate_it_at_start() -> None:
    (hit,) = scan_bytes("/etc/ssl/private/ssl-cert-snakeoil.key", SNAKEOIL.encode())
    assert hit.kind == "TLS key baked into the image (ssl-cert-snakeoil)"
    assert hit.severity == "error"
    assert "make-ssl-cert generate-default-snakeoil" in hit.remedy
    assert "--allow '/etc/ssl/private/ssl-cert-snakeoil.key'" in hit.remedy
