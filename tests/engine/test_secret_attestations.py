"""Secrets a pull reaches besides the final layers, on real builds: a build argument in
BuildKit's mode=max provenance (the token never reaches a layer of the final image:
it is used in a build stage only), and the values given to this build (a ``--secret``
file, the registry password) written into a layer. Each publish exits 5, pushes
nothing, and names what it found, never the value."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import LocalRegistry

from .helpers import assert_registry_empty, stored_blobs

# Made up, in npm's token format.
TOKEN = "npm_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"

# The token is used in the build stage only; the final image's layers and history do
# not hold it (its stage is not in the image), only the provenance does.
MULTI_STAGE = """\
FROM scratch AS build
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ARG NPM_TOKEN
RUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > /tmp/npmrc \\
 && echo built > /app.txt && rm /tmp/npmrc

FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY --from=build /app.txt /app.txt
"""


def test_build_argument_in_provenance_pushes_nothing(tmp_path: Path,
                                                     own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", MULTI_STAGE, arches=("amd64",))
    ref = f"{own_registry.address}/team/app:1.0"
    run = polyarch("publish", "--platform", "linux/amd64", "--build-arg", f"NPM_TOKEN={TOKEN}",
                   "-t", ref, "--json", str(ctx), env={"POLYARCH_PROVENANCE": "mode=max"})
    assert run.code == 5, run.text
    assert "nothing was pushed" in last_error_line(run)
    doc = run.json()
    (plat,) = doc["verification"]["platforms"]
    found = [f for f in plat["findings"] if f["severity"] == "error"]
    # Only the attestation holds it: the image's own layers and config are clean.
    assert found and all(f["kind"] == "attestation" for f in found), found
    msg = found[0]["message"]
    assert msg.startswith("provenance attestation (https://slsa.dev/provenance/v0.2)")
    assert "npm access token" in msg and "NPM_TOKEN" in msg
    assert TOKEN not in run.text and TOKEN[4:] not in run.text
    assert_registry_empty(own_registry, "team/app")

    # The same build without the token: its mode=max provenance (build arguments, the
    # LLB of both stages, the Dockerfile's source map) passes and is pushed.
    run = polyarch("publish", "--platform", "linux/amd64", "--build-arg", "NODE_ENV=production",
                   "-t", ref, "--json", str(ctx), env={"POLYARCH_PROVENANCE": "mode=max"})
    assert run.code == 0, run.text
    (plat,) = run.json()["verification"]["platforms"]
    assert [f for f in plat["findings"] if f["check"] == "secrets"] == []
    assert registry_tags(own_registry.address, "team/app") == ["1.0"]


COPIES_SECRETS = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY notes.txt /app/notes.txt
RUN --mount=type=secret,id=deploy cp /run/secrets/deploy /app/deploy-key
"""


def test_secret_file_and_registry_password_in_layers_push_nothing(
        tmp_path: Path, auth_registry: LocalRegistry, isolated_docker_config: Path) -> None:
    # A registry password (read by polyarch to push) that also sits in a file the build
    # copied, and a --secret file copied into a layer: neither has a format of its own.
    password = "wonderland-s3cret"
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    (isolated_docker_config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.address: {"auth": token}}}))
    ctx = make_context(tmp_path / "ctx", COPIES_SECRETS, arches=("amd64",))
    (ctx / "notes.txt").write_text(f"registry login: alice / {password}\n")
    secret = tmp_path / "deploy.txt"
    deploy = "Kq7-plain-deploy-value-9Zx"
    secret.write_text(deploy + "\n")
    run = polyarch("publish", "--platform", "linux/amd64", "--secret", f"id=deploy,src={secret}",
                   "-t", f"{auth_registry.address}/team/app:1", "--json", str(ctx),
                   env={"POLYARCH_PROVENANCE": "false"})
    assert run.code == 5, run.text
    (plat,) = run.json()["verification"]["platforms"]
    paths = {f["path"] for f in plat["findings"]
             if "value of a secret given to this build" in f["message"]}
    assert paths == {"/app/notes.txt", "/app/deploy-key"}, plat["findings"]
    assert password not in run.text and deploy not in run.text
    assert stored_blobs(auth_registry) == []
    assert registry_tags(auth_registry.address, "team/app", auth=("alice", password)) == []
