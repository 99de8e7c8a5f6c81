"""verify and inspect against images built with buildx and pushed to the loopback registry."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_context
from faultproxy import push_index

from polyarch import proc
from polyarch.checks.verify import verify
from polyarch.cli import run as cli_run
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import RegistryClient

pytestmark = pytest.mark.engine

BOTH = parse_platforms("linux/amd64,linux/arm64")
TOKEN = "npm_9fQx2LrTzV7wKbY3HcN8sPjD5mE1aGuR0oXt"

WRONG_ARCH = """\
FROM scratch
COPY rootfs-amd64/ /
CMD ["/bin/sh", "-c", "echo hi"]
"""

NPMRC = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY npmrc /root/.npmrc
"""

# An amd64 binary added, then deleted in a later layer (a whiteout): not in the image.
WHITEOUT = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY rootfs-amd64/bin/busybox /opt/wrong
RUN ["/bin/busybox", "rm", "/opt/wrong"]
"""


@pytest.fixture(autouse=True)
def _no_stale_echo() -> Iterator[None]:
    """The CLI points the runner's echo at its reporter; do not leak it between tests."""
    yield
    proc.echo_hook = None


def build(ctx: Path, ref: str, platforms: str = "linux/amd64,linux/arm64",
          *extra: str) -> None:
    r = subprocess.run(["docker", "buildx", "build", "--platform", platforms, "-t", ref,
                        "--push", *extra, str(ctx)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[dict[str, str]]:
    """Build the test images once: good, wrong-arch, npmrc, amd64-only, whiteout."""
    base = tmp_path_factory.mktemp("images")
    ctx = make_context(base / "ctx")
    (ctx / "npmrc").write_text(f"//registry.npmjs.org/:_authToken={TOKEN}\n")
    (ctx / "Dockerfile.wrong").write_text(WRONG_ARCH)
    (ctx / "Dockerfile.npmrc").write_text(NPMRC)
    (ctx / "Dockerfile.whiteout").write_text(WHITEOUT)
    repo = f"{registry}/test/verify-{base.name[-8:].strip('_')}".lower()
    refs = {name: f"{repo}:{name}" for name in ("good", "wrong", "npmrc", "amd64", "whiteout")}
    build(ctx, refs["good"])
    build(ctx, refs["wrong"], "linux/amd64,linux/arm64", "-f", str(ctx / "Dockerfile.wrong"))
    build(ctx, refs["npmrc"], "linux/amd64,linux/arm64", "-f", str(ctx / "Dockerfile.npmrc"))
    build(ctx, refs["amd64"], "linux/amd64")
    build(ctx, refs["whiteout"], "linux/amd64,linux/arm64", "-f", str(ctx / "Dockerfile.whiteout"))
    yield refs


def test_good_image_passes_every_check(images: dict[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "verify", images["good"], "--platform",
                             "linux/amd64,linux/arm64", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True
    assert doc["index_digest"].startswith("sha256:")
    assert [p["platform"] for p in doc["platforms"]] == ["linux/amd64", "linux/arm64"]
    for p in doc["platforms"]:
        assert p["checks"] == {"coverage": "pass", "labels": "pass", "binaries": "pass",
                               "secrets": "pass", "smoke": "skipped"}
        assert p["files_checked"] >= 1 and p["layers"] >= 2
    # Human output: a table with both platforms, exit 0.
    code, out, _ = run_cli(capsys, "verify", images["good"])
    assert code == 0
    assert "linux/amd64" in out and "linux/arm64" in out and "verified" in out


def test_arm64_variant_with_amd64_binary_fails(images: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "verify", images["wrong"], "--json")
    assert code == 5
    doc = json.loads(out)
    arm = next(p for p in doc["platforms"] if p["platform"] == "linux/arm64")
    amd = next(p for p in doc["platforms"] if p["platform"] == "linux/amd64")
    assert amd["ok"] is True
    assert arm["checks"]["binaries"] == "fail"
    bad = [f for f in arm["findings"] if f["severity"] == "error"]
    assert [f["path"] for f in bad] == ["/bin/busybox"]
    assert bad[0]["layer"].startswith("sha256:")
    assert "x86-64" in bad[0]["message"]
    assert "linux/arm64" in err  # the one-line summary names the platform
    code, out, err = run_cli(capsys, "verify", images["wrong"])
    assert code == 5
    assert "/bin/busybox" in out and "linux/arm64" in out
    # A known exception.
    code, _, _ = run_cli(capsys, "verify", images["wrong"], "--allow", "/bin/busybox")
    assert code == 0


def test_npmrc_token_fails_and_is_never_printed(images: dict[str, str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for mode in (["--json"], []):
        code, out, err = run_cli(capsys, "verify", images["npmrc"], *mode)
        assert code == 5
        assert TOKEN not in out and TOKEN not in err
        assert "/root/.npmrc" in out
    report = verify(images["npmrc"], BOTH)
    assert TOKEN not in json.dumps(report.to_json())
    for p in report.platforms:
        assert [(f.check, f.path) for f in p.findings if f.severity == "error"] == [
            ("secrets", "/root/.npmrc")]
        assert "npm auth token" in p.findings[0].message


def test_missing_and_unexpected_platforms(images: dict[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "verify", images["amd64"], "--platform",
                           "linux/amd64,linux/arm64", "--json")
    assert code == 5
    doc = json.loads(out)
    by = {p["platform"]: p for p in doc["platforms"]}
    assert by["linux/arm64"]["status"] == "missing"
    assert by["linux/arm64"]["checks"]["coverage"] == "fail"
    assert by["linux/amd64"]["ok"] is True
    report = verify(images["good"], parse_platforms("linux/amd64"), deep=False)
    assert not report.ok
    assert {p.platform: p.status for p in report.platforms} == {
        "linux/amd64": "present", "linux/arm64": "unexpected"}


def test_descriptor_disagreeing_with_config(images: dict[str, str], registry: str) -> None:
    client = RegistryClient()
    good = parse_ref(images["good"])
    index = client.get_manifest(good).json
    # Swap the platform labels of the two image entries.
    entries = [d for d in index["manifests"]
               if d.get("platform", {}).get("architecture") in ("amd64", "arm64")]
    entries[0]["platform"], entries[1]["platform"] = entries[1]["platform"], entries[0]["platform"]
    index["manifests"] = entries
    swapped = good.with_tag("swapped")
    client.put_manifest(swapped, json.dumps(index).encode(), index["mediaType"])
    report = verify(swapped, BOTH, client=client)
    assert not report.ok
    for p in report.platforms:
        assert p.check_status("labels") == "fail"
        assert p.check_status("binaries") == "fail"
        msg = next(f.message for f in p.findings if f.check == "labels")
        assert f"index entry says {p.platform}" in msg and "image config says" in msg


def test_an_index_listing_a_platform_twice_fails(images: dict[str, str]) -> None:
    client = RegistryClient()
    good = parse_ref(images["good"])
    index = client.get_manifest(good).json
    amd = next(d for d in index["manifests"] if d["platform"]["architecture"] == "amd64")
    index["manifests"].append(dict(amd))
    dup = good.with_tag("dup")
    client.put_manifest(dup, json.dumps(index).encode(), index["mediaType"])
    report = verify(dup, BOTH, client=client, deep=False)
    assert [p.status for p in report.platforms].count("duplicate") == 1
    assert not report.ok


def test_whiteout_removes_the_wrong_binary(images: dict[str, str]) -> None:
    report = verify(images["whiteout"], BOTH)
    assert report.ok, report.to_json()


def test_labels_from_client_written_index(registry: str, repo: str) -> None:
    """An index written with the client: its arm64 entry points at an amd64 config."""
    from faultproxy import make_layer

    client = RegistryClient()
    layer = make_layer({"etc/motd": b"hello\n"})
    ref = parse_ref(f"{repo}:labels")
    push_index(client, ref, [("linux/amd64", [(*layer, "gzip")]),
                             ("linux/arm64", [(*layer, "gzip")])],
               config_platforms={"linux/arm64": "linux/amd64"})
    report = verify(ref, BOTH, client=client)
    by = {p.platform: p for p in report.platforms}
    assert by["linux/amd64"].ok
    assert by["linux/arm64"].check_status("labels") == "fail"
    assert by["linux/arm64"].config_platform == "linux/amd64"


def test_index_only_is_fast(images: dict[str, str]) -> None:
    client = RegistryClient()
    verify(images["good"], BOTH, deep=False, client=client)  # warm the connection
    t0 = time.perf_counter()
    report = verify(images["good"], BOTH, deep=False, client=client)
    elapsed = time.perf_counter() - t0
    assert report.ok
    assert elapsed < 0.3
    assert all(p.check_status("binaries") == "skipped" for p in report.platforms)


def test_oci_layout_from_buildx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = make_context(tmp_path / "ctx")
    (ctx / "Dockerfile.wrong").write_text(WRONG_ARCH)
    for name, dockerfile, want in (("good", "Dockerfile", 0), ("wrong", "Dockerfile.wrong", 5)):
        tar = tmp_path / f"{name}.tar"
        r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
                            "-f", str(ctx / dockerfile), "--output", f"type=oci,dest={tar}",
                            str(ctx)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        code, out, err = run_cli(capsys, "verify", f"oci:{tar}", "--json")
        assert code == want, err
        assert json.loads(out)["reference"] == f"oci:{tar}"
    # A layout directory (tar=false) of the good image.
    d = tmp_path / "layout"
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
                        "--output", f"type=oci,dest={d},tar=false", str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert verify(f"oci:{d}", BOTH).ok


def test_zstd_compressed_layers_are_verified(tmp_path: Path, repo: str) -> None:
    ctx = make_context(tmp_path / "ctx")
    ref = f"{repo}:zstd"
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
                        "--output", f"type=image,name={ref},push=true,compression=zstd,"
                        "force-compression=true", str(ctx)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    client = RegistryClient()
    idx = client.get_manifest(parse_ref(ref)).json
    man = client.get_manifest(parse_ref(ref).with_digest(idx["manifests"][0]["digest"])).json
    assert man["layers"][0]["mediaType"].endswith("zstd")
    report = verify(ref, BOTH, client=client)
    assert report.ok, report.to_json()
    assert all(p.files_checked >= 1 for p in report.platforms)


def test_smoke_command_runs_per_platform_and_catches_the_wrong_machine(
        images: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    pulled: list[str] = []
    try:
        report = verify(images["good"], BOTH, smoke="/bin/sh -c 'test -f /hello'")
        pulled += [f"{parse_ref(images['good']).name}@{p.digest}" for p in report.platforms]
        assert report.ok, report.to_json()
        assert all(p.check_status("smoke") == "pass" for p in report.platforms)
        # The arm64 entry holds x86-64 busybox: it runs natively, and uname says so.
        code, out, _ = run_cli(capsys, "verify", images["wrong"], "--no-deep", "--smoke", "true",
                               "--json")
        doc = json.loads(out)
        pulled += [f"{parse_ref(images['wrong']).name}@{p['digest']}" for p in doc["platforms"]]
        assert code == 5
        arm = next(p for p in doc["platforms"] if p["platform"] == "linux/arm64")
        assert arm["checks"]["smoke"] == "fail"
        assert "x86_64" in arm["findings"][0]["message"]
        # A failing smoke command.
        bad = verify(images["good"], parse_platforms("linux/amd64"), smoke="false", deep=False)
        assert not bad.ok
        assert "exited 1" in bad.platforms[0].findings[0].message
    finally:
        for image in pulled:
            subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True)


def test_inspect_shows_attestations_under_their_platform(images: dict[str, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "inspect", images["good"], "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["is_index"] is True
    assert [p["platform"] for p in doc["platforms"]] == ["linux/amd64", "linux/arm64"]
    for p in doc["platforms"]:
        assert p["layers"] >= 2 and p["size"] > 500_000 and p["created"]
        # buildx attaches provenance: shown as the platform's attestation, not unknown/unknown.
        assert len(p["attestations"]) == 1
        assert any("provenance" in t for t in p["attestations"][0]["predicate_types"])
    assert doc["orphan_attestations"] == []
    code, out, _ = run_cli(capsys, "inspect", images["good"])
    assert code == 0
    assert "attestation of linux/arm64" in out and "unknown/unknown" not in out
