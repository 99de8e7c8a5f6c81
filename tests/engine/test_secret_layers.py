"""The content scanner on real BuildKit layers: every case a pull finds is caught.

One small amd64 image, exported as an OCI layout by ``docker buildx build --output
type=oci``, holds each case: a ``ghp_`` token in ``config.yaml`` (in a file a later layer
deletes, too), a token in ``.git/config``'s remote URL, an SSH key at
``/app/deploy_key``, kubeadm's ``/etc/kubernetes/admin.conf``, a Google Cloud key under
its download name, an ``.env`` over 1 MiB, a hard link named ``.npmrc``, and a TLS key
under ``/etc/ssl/private``. The layers are read the way verification reads them: every
regular file of every layer (before whiteouts apply), streamed into a ContentScanner;
a hard link's entry gets its target's findings under its own name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import make_context

from polyarch.checks import layers
from polyarch.checks.secrets import (
    ContentScanner,
    SecretHit,
    content_wanted,
    scan_config,
    skip_by_magic,
)
from polyarch.registry.source import OCILayout

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


def scan_layer(chunks: list[bytes]) -> dict[str, list[SecretHit]]:
    """What a layer walker does: every regular file's content through a scanner (as
    the content policy and the magic bytes allow); hard links get their target's."""
    _, tar = layers.decompress(iter(chunks))
    found: dict[str, list[SecretHit]] = {}
    for entry in layers.iter_tar(tar, lambda name, size: size):
        path = layers.normalise(entry.path)
        if entry.type == b"1":
            target = layers.normalise(entry.linkname)
            if found.get(target):
                found[path] = found[target]
            continue
        if entry.type not in (b"0", b"\0", b"7") or not entry.head:
            continue
        if skip_by_magic(entry.head[:16]) or not content_wanted(path):
            continue
        s = ContentScanner(path)
        for i in range(0, len(entry.head), 65536):
            s.feed(entry.head[i:i + 65536])
        hits = s.finish()
        if hits:
            found[path] = hits
    return found


def test_every_case_in_real_layers(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    out = tmp_path / "layout"
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64",
                        "--output", f"type=oci,dest={out},tar=false", str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    src = OCILayout(out)
    root = src.root().json
    if "manifests" in root:  # an index: the amd64 image
        desc = next(m for m in root["manifests"]
                    if (m.get("platform") or {}).get("architecture") == "amd64")
        manifest = src.manifest(desc["digest"]).json
    else:
        manifest = root
    found: dict[str, list[SecretHit]] = {}
    for layer in manifest["layers"]:
        for path, hits in scan_layer(list(src.iter_blob(layer["digest"]))).items():
            found.setdefault(path, []).extend(hits)

    def kinds(path: str) -> set[str]:
        return {h.kind for h in found.get(path, [])}

    assert kinds("/app/config.yaml") == {"GitHub token"}
    assert kinds("/app/old.yaml") == {"GitHub token"}  # deleted by the last layer
    assert kinds("/app/repo/.git/config") == {"password in a URL"}
    assert kinds("/app/deploy_key") == {"private SSH key"}
    assert kinds("/app/project-123abc-0123456789ab.json") == {"Google Cloud service account key"}
    assert kinds("/etc/kubernetes/admin.conf") == {"Kubernetes credentials (kubeconfig)"}
    assert kinds("/app/.env") == {"secret in .env file"}
    assert [h.line for h in found["/app/.env"]] == [120_001]
    assert kinds("/root/.npmrc") == {"npm auth token (.npmrc line)"}  # the hard link
    assert kinds("/etc/ssl/private/server.key") == {"private key (PKCS#8)"}
    every = [h for hits in found.values() for h in hits]
    assert all(h.severity == "error" for h in every), [h.describe() for h in every]
    # Nothing else was flagged (busybox, the rootfs, the certificate in admin.conf).
    assert set(found) == {"/app/config.yaml", "/app/old.yaml", "/app/repo/.git/config",
                          "/app/deploy_key", "/app/project-123abc-0123456789ab.json",
                          "/etc/kubernetes/admin.conf", "/app/.env", "/a/blob", "/root/.npmrc",
                          "/etc/ssl/private/server.key"}
    shown = " ".join(h.describe() for h in every)
    for secret in ("huG8GP38g4o5MNJAYKJ1", "E6FhJHp1wR0D6LwfeXfZ", "Vq7#pL2", "6f1e9c2a-4b7d"):
        assert secret not in shown

    # The RUN lines that wrote secrets hold them too, in the history of the config (one
    # finding per record: the first RUN has the URL password and the .npmrc line).
    config = json.loads(src.blob(manifest["config"]["digest"]))
    in_history = sorted((h.where, h.kind) for h in scan_config(config))
    assert sorted(k for _w, k in in_history) == ["GitHub token", "npm auth token (.npmrc line)"]
    assert all(w.startswith("history entry ") for w, _k in in_history)
