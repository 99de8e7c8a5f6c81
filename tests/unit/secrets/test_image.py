"""Secrets in image metadata: config Env/Labels/Cmd, history (BuildKit's RUN |N records),
annotations. Findings name the place and the remedy, never the value."""

from __future__ import annotations

import json
from typing import Any

from polyarch.checks.secrets import (
    build_args_of,
    scan_annotations,
    scan_config,
    scan_descriptors,
)
from polyarch.checks.secrets.image import instruction_pairs

NPM = "npm_qSFDGX0FZBJQ6c1suD6ZgCSTY9GqC79l9B1U"
PLAIN = "Vq7pL2xR9sKd"  # a secret without a recognisable format


def config(**kw: Any) -> dict[str, Any]:
    # The shape of an OCI image config as BuildKit writes it.
    return {"architecture": "amd64", "os": "linux",
            "config": {"Env": kw.get("env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/bin"]),
                       "Labels": kw.get("labels", {}), "Cmd": kw.get("cmd", ["sh"])},
            "history": kw.get("history", [])}


def test_build_args_of_buildkit_records() -> None:
    rec = f"RUN |2 NPM_TOKEN={NPM} PIP_INDEX_URL=https://pypi.org/simple /bin/sh -c npm ci # buildkit"
    assert build_args_of(rec) == [("NPM_TOKEN", NPM), ("PIP_INDEX_URL", "https://pypi.org/simple")]
    # A value with a space: read up to the next KEY= word (the last value up to a space,
    # where the record cannot tell it from the command).
    assert build_args_of("RUN |2 MSG=hello world V=1 /bin/sh -c echo") == [
        ("MSG", "hello world"), ("V", "1")]
    assert build_args_of("RUN |2 /bin/bash -c pip install -e . # buildkit") == []
    assert build_args_of("RUN /bin/sh -c make # buildkit") == []


def test_token_build_arg_in_history_fails_with_remedy() -> None:
    hist = [{"created_by": "ARG NPM_TOKEN", "empty_layer": True},
            {"created_by": f"RUN |1 NPM_TOKEN={NPM} /bin/sh -c npm ci # buildkit"}]
    (hit,) = scan_config(config(history=hist))
    assert hit.severity == "error" and "history entry 2" in hit.where
    assert "NPM_TOKEN" in hit.where and "--secret id=NPM_TOKEN" in hit.describe()
    assert NPM not in json.dumps(hit.__dict__) and NPM[4:] not in hit.describe()


def test_secret_named_arg_without_format() -> None:
    hist = [{"created_by": f"RUN |2 DB_PASSWORD={PLAIN} VERSION=1.2 /bin/sh -c ./migrate"}]
    (hit,) = scan_config(config(history=hist))
    assert hit.kind == "build argument recorded in image history" and PLAIN not in hit.describe()
    # Non-secret arguments and placeholders pass.
    ok = [{"created_by": "RUN |2 VERSION=1.2 NPM_TOKEN=${NPM_TOKEN} /bin/sh -c make"},
          {"created_by": "RUN |1 GITHUB_TOKEN= /bin/sh -c make"}]
    assert scan_config(config(history=ok)) == []


def test_env_labels_cmd() -> None:
    cfg = config(env=["PATH=/usr/bin", f"NPM_TOKEN={NPM}", f"API_KEY={PLAIN}", "NODE_ENV=production",
                      "TOKEN_FILE=/run/secrets/token"],
                 labels={"org.opencontainers.image.source": "https://github.com/acme/app",
                         "deploy.auth": f"https://ci:{PLAIN}@registry.acme.dev"},
                 cmd=["node", "server.js", "--token", NPM])
    hits = scan_config(cfg)
    where = sorted(h.where for h in hits)
    assert where == ["Cmd", "key API_KEY", "key NPM_TOKEN", "label deploy.auth"], where
    text = " ".join(h.describe() for h in hits)
    assert NPM not in text and PLAIN not in text


def test_env_in_history_of_env_instruction() -> None:
    hist = [{"created_by": f"ENV GH={'ghp_huG8GP38g4o5MNJAYKJ1UXXFWXLCpaNfhs0g'}", "empty_layer": True}]
    (hit,) = scan_config(config(history=hist))
    assert hit.kind == "GitHub token" and hit.where == "history entry 1, ENV GH"


def test_annotation_holding_a_token_is_found() -> None:
    hits = scan_annotations({"org.opencontainers.image.revision": "0123abc",
                             "com.acme.token": NPM})
    assert [h.where for h in hits] == ["annotation com.acme.token"]


def test_onbuild_and_healthcheck() -> None:
    cfg = config()
    cfg["config"]["OnBuild"] = [f"RUN npm config set //registry.npmjs.org/:_authToken {NPM}"]
    cfg["config"]["Healthcheck"] = {"Test": ["CMD", "curl", f"https://ci:{PLAIN}@acme.dev/health"]}
    assert sorted(h.where for h in scan_config(cfg)) == ["Healthcheck", "OnBuild"]


def test_odd_configs_do_not_crash() -> None:
    assert scan_config({}) == []
    assert scan_config({"config": None, "history": None}) == []
    assert scan_config({"config": {"Env": "x", "Labels": []}, "history": ["x", 3]}) == []
    assert scan_config({"config": {"Healthcheck": "x", "OnBuild": {}}}) == []


# History records as BuildKit 0.13 (docker 26, buildx 0.13) wrote them for
#   ARG SETUP_TOKEN=...; ENV DB_PASSWORD=... APP_MODE="two words"; ENV DB_PASSWORD=;
#   LABEL org.acme.deploy-token=...
BUILDKIT_HISTORY = [
    "ARG TARGETARCH",
    "COPY rootfs-amd64/ / # buildkit",
    "ARG SETUP_TOKEN=Tq9vLm2Xk8Rw",
    f"ENV DB_PASSWORD={PLAIN} APP_MODE=two words",
    "RUN |2 TARGETARCH=amd64 SETUP_TOKEN=Tq9vLm2Xk8Rw /bin/sh -c echo hi > /x # buildkit",
    "ENV DB_PASSWORD=",
    "LABEL org.acme.deploy-token=Zp4Lk8Qw2Rv7",
]


def test_instruction_pairs_of_buildkit_and_classic_records() -> None:
    assert instruction_pairs(BUILDKIT_HISTORY[3]) == (
        "ENV", [("DB_PASSWORD", PLAIN), ("APP_MODE", "two words")])
    assert instruction_pairs(BUILDKIT_HISTORY[5]) == ("ENV", [("DB_PASSWORD", "")])
    assert instruction_pairs(BUILDKIT_HISTORY[6]) == (
        "LABEL", [("org.acme.deploy-token", "Zp4Lk8Qw2Rv7")])
    # The classic builder: "#(nop)" records, ENV in its "KEY value" form too.
    assert instruction_pairs(f"/bin/sh -c #(nop)  ENV DB_PASSWORD={PLAIN}") == (
        "ENV", [("DB_PASSWORD", PLAIN)])
    assert instruction_pairs(f"/bin/sh -c #(nop)  ENV DB_PASSWORD {PLAIN}") == (
        "ENV", [("DB_PASSWORD", PLAIN)])
    assert instruction_pairs("RUN /bin/sh -c make # buildkit") == ("", [])


def test_env_emptied_later_is_still_in_the_history() -> None:
    # The config's Env says DB_PASSWORD= (emptied), the history keeps the value.
    hist = [{"created_by": c} for c in BUILDKIT_HISTORY]
    hits = scan_config(config(env=["DB_PASSWORD=", "APP_MODE=two words"], history=hist))
    where = {h.where: h for h in hits}
    assert "history entry 4, ENV DB_PASSWORD" in where
    assert "--secret id=DB_PASSWORD" in where["history entry 4, ENV DB_PASSWORD"].describe()
    assert "history entry 3, ARG SETUP_TOKEN" in where
    assert "history entry 5, build argument SETUP_TOKEN" in where
    assert "history entry 7, LABEL org.acme.deploy-token" in where
    assert not any("APP_MODE" in w or "entry 6" in w for w in where)
    shown = " ".join(h.describe() for h in hits)
    assert PLAIN not in shown and "Tq9vLm2Xk8Rw" not in shown and "Zp4Lk8Qw2Rv7" not in shown


def test_descriptor_annotations_are_scanned_by_position() -> None:
    index = {"manifests": [
        {"digest": "sha256:" + "a" * 64, "annotations": {"org.acme.token": NPM}},
        {"digest": "sha256:" + "b" * 64,
         "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                         "vnd.docker.reference.digest": "sha256:" + "a" * 64}}]}
    (hit,) = scan_descriptors(index, "index")
    assert hit.where == "index manifests[0], annotation org.acme.token"
    manifest = {"config": {"annotations": {"deploy.password": PLAIN}},
                "layers": [{"annotations": {"org.opencontainers.image.title": "app.tar"}},
                           {"annotations": {"note": f"pulled with {NPM}"}}]}
    hits = scan_descriptors(manifest)
    assert sorted(h.where for h in hits) == ["config, annotation deploy.password",
                                             "layers[1], annotation note"]
    assert NPM not in " ".join(h.describe() for h in hits)
