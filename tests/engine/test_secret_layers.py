"""The content scanner on real BuildKit layers: every case a pull finds is caught.

One small amd64 image, exported as an OCI layout by ``docker buildx build --output
type=oci``, holds each case: a ``ghp_`` token in ``config.yaml`` (in a file a later layer
deletes, too), a token in ``.git/config``'s remote URL, an SSH key at
``/app/deploy_key``, kubeadm's ``/etc/kubernetes/admin.conf``, a Google Cloud key under
its download name, an ``.env`` over 1 MiB, a hard link named ``.npmrc``, and a TLS key
under ``/etc/ssl/private``. The layout is verified the way publish verifies its build:
every regular file of every layer (before whiteouts apply) through the content scanner,
hard links under their own names, then the image config's history.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import make_context

from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platform
from polyarch.registry.layout import OCILayout

DATA = Path(__file__).parent.parent / "unit" / "secrets" / "data"

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY app/ /app/
COPY admin.conf /etc/kubernetes/admin.conf
COPY server.key /etc/ssl/private/server.key
RUN busybox mkdir -p /app/repo/.git /a /root \\
 && echo '[remote "origin"]' > /app/repo/.git/config \\
 && echo '  url = https://deploy:E6FhJHp1wR0D6LwfeXfZ@git.acme.dev/acme/app.git' >> /app/repo/.git/config \\
 && echo '//registry.npmjs.org/:_authToken=6f1e9c2a-4b7d-4e8f-9a3c-2d5b8e7f1a90' > /a/blob \\
 && busybox ln /a/blob /root/.npmrc
RUN echo 'token: ghp_huG8GP38g4o5MNJAYKJ1UXXFWXLCpaNfhs0g' > /app/old.yaml
RUN rm /app/old.yaml
"""


def context(tmp: Path) -> Path:
    ctx = make_context(tmp / "ctx", DOCKERFILE, arches=("amd64",))
    app = ctx / "app"
    app.mkdir()
    (app / "config.yaml").write_text("github:\n  token: ghp_huG8GP38g4o5MNJAYKJ1UXXFWXLCpaNfhs0g\n")
    shutil.copy(DATA / "found" / "deploy_key", app / "deploy_key")
    shutil.copy(DATA / "found" / "project-123abc-0123456789ab.json", app)
    filler = b"".join(b"FEATURE_%d=on\n" % i for i in range(120_000))
    (app / ".env").write_bytes(filler + b"DATABASE_PASSWORD=Vq7#pL2!xR9s\n")
    shutil.copy(DATA / "found" / "admin.conf", ctx / "admin.conf")
    (ctx / "server.key").write_text(
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDLq3Wd9Xz0pQ7m\n"
        "-----END PRIVATE KEY-----\n")
    return ctx


def test_every_case_in_real_layers(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    out = tmp_path / "layout"
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64",
                        "--output", f"type=oci,dest={out},tar=false", str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # Read the way publish reads its build: every layer blob, then the config.
    report = verify_source(OCILayout(out), [parse_platform("linux/amd64")])
    findings = [f for p in report.platforms for f in p.findings if f.check == "secrets"]
    found: dict[str, list[str]] = {}
    for f in findings:
        found.setdefault(f.path or "(config)", []).append(f.message)

    def said(path: str, kind: str) -> bool:
        return any(kind in m for m in found.get(path, []))

    assert said("/app/config.yaml", "GitHub token")
    assert said("/app/old.yaml", "GitHub token")  # deleted by the last layer, still shipped
    assert any(f.kind == "deleted-but-shipped" and f.path == "/app/old.yaml" for f in findings)
    assert said("/app/repo/.git/config", "password in a URL")
    assert said("/app/deploy_key", "private SSH key")
    assert said("/app/project-123abc-0123456789ab.json", "Google Cloud service account key")
    assert said("/etc/kubernetes/admin.conf", "Kubernetes credentials")
    assert said("/app/.env", "secret in .env file")
    assert said("/root/.npmrc", "npm auth token")  # a hard link to /a/blob
    assert said("/etc/ssl/private/server.key", "private key")
    # Every secret is an error; the link's own name is a second, weaker signal.
    extra = [f for f in findings if f.severity != "error"]
    assert [(f.path, f.severity) for f in extra] == [("/root/.npmrc", "warning")], extra
    assert "hard link" in extra[0].message
    # Nothing else was flagged (busybox, the rootfs, the certificate in admin.conf).
    assert set(found) <= {"/app/config.yaml", "/app/old.yaml", "/app/repo/.git/config",
                          "/app/deploy_key", "/app/project-123abc-0123456789ab.json",
                          "/etc/kubernetes/admin.conf", "/app/.env", "/a/blob", "/root/.npmrc",
                          "/etc/ssl/private/server.key", "(config)"}, set(found)
    shown = " ".join(f.message for f in findings)
    for secret in ("huG8GP38g4o5MNJAYKJ1", "E6FhJHp1wR0D6LwfeXfZ", "Vq7#pL2", "6f1e9c2a-4b7d"):
        assert secret not in shown
    # The RUN lines that wrote secrets hold them too, in the history of the config.
    history = " ".join(found.get("(config)", []))
    assert "GitHub token" in history and "npm auth token" in history, history
    assert not report.ok


GO_PROGRAM = """package main

import "fmt"

var token = "unset"

func main() { fmt.Println(len(token)) }
"""
# Made up, in GitHub's and npm's token formats.
LINKED_TOKEN = "ghp_HC0rj6X28fpZKejYL59ezLjtaCskntVLd3ro"
UTF16_TOKEN = "npm_Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"
PLAIN = "Vq7pL2xR9sKd"

MORE_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY files/ /
ENV DB_PASSWORD=Vq7pL2xR9sKd
RUN echo ok > /ok
ENV DB_PASSWORD=
"""


def test_binaries_utf16_tool_files_and_history_in_real_layers(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", MORE_DOCKERFILE, arches=("amd64",))
    files = ctx / "files"
    # go build -ldflags "-X main.token=...": the token ends up in the binary's data.
    src = tmp_path / "gosrc"
    src.mkdir()
    (src / "main.go").write_text(GO_PROGRAM)
    (src / "go.mod").write_text("module example.invalid/app\n\ngo 1.19\n")
    (files / "usr/local/bin").mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "gocache"),
           "GOOS": "linux", "GOARCH": "amd64", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    subprocess.run(["go", "build", "-ldflags", f"-X main.token={LINKED_TOKEN}",
                    "-o", str(files / "usr/local/bin/app"), "."],
                   cwd=src, env=env, check=True, timeout=600)
    (files / "app").mkdir()
    (files / "app/deploy.ps1").write_bytes(f"$env:NPM = '{UTF16_TOKEN}'\r\n".encode("utf-16"))
    (files / "root").mkdir()
    (files / "root/.pgpass").write_text(f"db.internal:5432:app:app:{PLAIN}\n")
    (files / "root/.vault-token").write_text("s.Qx7vLm2Kp9Rw4TzAb3Cd5Ef\n")
    (files / "usr/local/cargo").mkdir(parents=True)
    (files / "usr/local/cargo/credentials.toml").write_text(f'[registry]\ntoken = "{PLAIN}"\n')
    (files / "etc/ssh").mkdir(parents=True)
    shutil.copy(DATA / "found" / "deploy_key", files / "etc/ssh/ssh_host_ed25519_key")
    out = tmp_path / "layout"
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64",
                        "--output", f"type=oci,dest={out},tar=false", str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = verify_source(OCILayout(out), [parse_platform("linux/amd64")],
                           allow=["/etc/ssh/ssh_host_*"])
    findings = [f for p in report.platforms for f in p.findings if f.check == "secrets"]
    by_path: dict[str, list[str]] = {}
    for f in findings:
        by_path.setdefault(f.path or "(config)", []).append(f"{f.severity}: {f.message}")

    def said(path: str, text: str, severity: str = "error") -> bool:
        return any(m.startswith(severity) and text in m for m in by_path.get(path, []))

    assert said("/usr/local/bin/app", "GitHub token"), by_path
    assert said("/app/deploy.ps1", "npm access token")
    assert said("/root/.pgpass", "PostgreSQL password file")
    assert said("/root/.vault-token", "HashiCorp Vault token")
    assert said("/usr/local/cargo/credentials.toml", "Cargo registry token")
    # The host key is accepted with --allow: a note that says so.
    assert said("/etc/ssh/ssh_host_ed25519_key", "SSH host key baked into the image", "info")
    assert said("/etc/ssh/ssh_host_ed25519_key", "allowed by /etc/ssh/ssh_host_*", "info")
    # ENV emptied by a later ENV: the history still holds the value.
    assert said("(config)", "ENV DB_PASSWORD"), by_path.get("(config)")
    shown = " ".join(f.message for f in findings)
    for secret in (LINKED_TOKEN, UTF16_TOKEN[4:], PLAIN, "Qx7vLm2Kp9Rw4Tz"):
        assert secret not in shown
    assert not report.ok
