"""Bad input through the real CLI against the real engine and registry: one clear line, a
documented exit code, no traceback, nothing pushed.

First the command line and the machine (platforms, tags, flags, the engine, buildx, an
emulator, the registry's credentials); then files and settings that once ended in exit
70 (configuration, descriptors, projects, ``POLYARCH_*`` values), each refused with exit
2 before anything is built or pushed. The in-process property tests in tests/unit/fuzz/
cover the space; these are the cases as a user meets them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Run, last_error_line, polyarch
from conftest import free_port, make_context, registry_catalog, registry_tags
from faultproxy import LocalRegistry

from .helpers import echoed_build

DIGEST = "sha256:" + "ab" * 32


def assert_clean_failure(run: Run, code: int, *needles: str) -> str:
    assert run.code == code, f"exit {run.code}, wanted {code}\n{run.err}"
    assert "Traceback" not in run.text
    line = last_error_line(run)
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


def nothing_pushed(registry: str, repo: str) -> None:
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_an_unknown_platform_is_refused_with_a_suggestion(hello_context: Path, repo: str,
                                                          registry: str) -> None:
    run = polyarch("publish", "-t", f"{repo}:1", "--platform", "linux/amd64,linux/arm65",
                   str(hello_context))
    assert_clean_failure(run, 2, "unknown platform 'linux/arm65'", "did you mean linux/arm64")
    nothing_pushed(registry, repo)


def test_a_missing_dockerfile_is_refused_naming_the_file_flag(hello_context: Path, repo: str,
                                                              registry: str) -> None:
    run = polyarch("publish", "-t", f"{repo}:1", "-f", str(hello_context / "Nope.Dockerfile"),
                   str(hello_context))
    assert_clean_failure(run, 2, "Dockerfile", "Nope.Dockerfile not found", "-f/--file")
    nothing_pushed(registry, repo)


@pytest.mark.parametrize("args", [("publish",), ("publish", "--dry-run"),
                                  ("build", "--dry-run")])
def test_a_missing_build_context_is_refused_once(tmp_path: Path, repo: str, registry: str,
                         args: tuple[str, ...]) -> None:
    run = polyarch(*args, "-t", f"{repo}:1", str(tmp_path / "no-such-dir"))
    assert_clean_failure(run, 2, "build context", "no-such-dir is not a directory")
    # Said once: the error, not a warning before it.
    assert run.err.count("no-such-dir is not a directory") == 1, run.err
    nothing_pushed(registry, repo)


@pytest.mark.parametrize(("tag", "needle"), [
    ("127.0.0.1:5000/Upper/Case:1", "must be lower case"),
    ("127.0.0.1:5000/a/b:bad tag!", "invalid tag"),
])
def test_a_malformed_tag_is_refused(hello_context: Path, tag: str, needle: str) -> None:
    run = polyarch("publish", "-t", tag, str(hello_context))
    assert_clean_failure(run, 2, needle)


def test_publish_without_a_tag_asks_for_one(hello_context: Path) -> None:
    run = polyarch("publish", str(hello_context))
    assert_clean_failure(run, 2, "no tag given", "-t/--tag")


def test_an_unreachable_registry_exits_4_naming_it(hello_context: Path) -> None:
    port = free_port()  # nothing listens there
    run = polyarch("publish", "-t", f"127.0.0.1:{port}/a/b:1", str(hello_context))
    assert_clean_failure(run, 4, f"127.0.0.1:{port}")


def test_registry_refuses_credentials(hello_context: Path, auth_registry: LocalRegistry,
                                      tmp_path: Path) -> None:
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    wrong = "not-the-password-42"
    token = base64.b64encode(f"alice:{wrong}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {auth_registry.address: {"auth": token}}}))
    run = polyarch("publish", "-t", f"{auth_registry.address}/team/app:1", str(hello_context),
                   env={"DOCKER_CONFIG": str(cfg)})
    line = assert_clean_failure(run, 4, auth_registry.address)
    assert "401" in line or "credentials" in line or "unauthorized" in line.lower()
    assert wrong not in run.text and token not in run.text
    assert registry_tags(auth_registry.address, "team/app", auth=("alice", "wonderland-s3cret")) == []


def _running_with(needle: str) -> list[str]:
    """Command lines of the processes whose arguments hold ``needle``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmd:
                found.append(cmd)
    return found


def test_a_refusing_registry_stops_the_build_started_alongside_its_check(
        tmp_path: Path, auth_registry: LocalRegistry) -> None:
    """The registry's check runs while the engine builds: its no stops a build that
    would take minutes at once, is the run's error (exit 4, as when it came first), and
    leaves nothing running."""
    nonce = os.urandom(8).hex()
    ctx = make_context(tmp_path / "ctx", dockerfile=(
        "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\nARG NONCE\n"
        "RUN echo $NONCE && sleep 173\n"))
    cfg = tmp_path / "dockercfg"  # no credentials for the registry
    cfg.mkdir()
    (cfg / "config.json").write_text("{}")
    t0 = time.monotonic()
    run = polyarch("publish", "--platform", "linux/amd64", "--build-arg", f"NONCE={nonce}",
                   "-t", f"{auth_registry.address}/team/app:1", str(ctx),
                   env={"DOCKER_CONFIG": str(cfg), "POLYARCH_DEBUG": "1"}, timeout=170)
    took = time.monotonic() - t0
    assert_clean_failure(run, 4, auth_registry.address)
    assert echoed_build(run.err) is not None  # it had started
    assert took < 60, run.err
    assert _running_with(f"NONCE={nonce}") == []
    end = time.monotonic() + 30  # the engine ends the step of a build whose client left
    while _running_with("sleep 173") and time.monotonic() < end:
        time.sleep(0.5)
    assert _running_with("sleep 173") == []
    assert registry_tags(auth_registry.address, "team/app",
                         auth=("alice", "wonderland-s3cret")) == []


def test_engine_not_running(hello_context: Path, tmp_path: Path) -> None:
    run = polyarch("publish", "-t", "127.0.0.1:5000/a/b:1", str(hello_context),
                   env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_clean_failure(run, 3, "Docker engine is not reachable", "start Docker")


def test_doctor_engine_not_running(tmp_path: Path) -> None:
    run = polyarch("doctor", "--json", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert run.code == 3
    doc = run.json()
    assert doc["ok"] is False
    engine = next(c for c in doc["checks"] if c["name"] == "engine")
    assert engine["ok"] is False and "start Docker" in engine["remedy"]


def _buildx_plugin_dirs() -> list[str]:
    dirs = ["/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
            "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins",
            os.path.expanduser("~/.docker/cli-plugins")]
    return [d for d in dirs if os.path.exists(os.path.join(d, "docker-buildx"))]


def test_a_missing_buildx_plugin_exits_3_naming_the_package(hello_context: Path, tmp_path: Path) -> None:
    """Hide the buildx plugin in a private mount namespace: the engine is real, buildx is not
    there."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("this test needs root and unshare(1) to hide the buildx plugin")
    empty = tmp_path / "empty"
    empty.mkdir()
    mounts = " && ".join(f"mount --bind {empty} {d}" for d in _buildx_plugin_dirs())
    assert mounts, "no buildx plugin found to hide"
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    script = (f"{mounts} && DOCKER_CONFIG={cfg} exec {sys.executable} -m polyarch publish"
              f" -t 127.0.0.1:5000/a/b:1 {hello_context}")
    cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                        capture_output=True, text=True, timeout=120)
    run = Run(cp.returncode, cp.stdout, cp.stderr)
    assert_clean_failure(run, 3, "buildx is not installed", "docker-buildx")


@pytest.fixture
def s390x_emulator_disabled() -> Iterator[None]:
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-s390x")
    if not entry.exists():
        yield
        return
    subprocess.run(["update-binfmts", "--disable", "qemu-s390x"], check=True)
    try:
        yield
    finally:
        subprocess.run(["update-binfmts", "--enable", "qemu-s390x"], check=True)


def test_a_platform_without_node_or_emulator_exits_3_with_the_install_command(
        hello_context: Path, repo: str, registry: str, s390x_emulator_disabled: None) -> None:
    run = polyarch("publish", "-t", f"{repo}:1", "--platform", "linux/amd64,linux/s390x",
                   str(hello_context))
    assert_clean_failure(run, 3, "platform linux/s390x", "no native node and no emulator",
                         "qemu-user-static", "tonistiigi/binfmt --install s390x")
    nothing_pushed(registry, repo)


def test_unknown_config_key(hello_context: Path, repo: str, registry: str) -> None:
    (hello_context / "polyarch.toml").write_text('platfroms = ["arm64"]\n')
    run = polyarch("publish", "-t", f"{repo}:1", ".", cwd=hello_context)
    assert_clean_failure(run, 2, "polyarch.toml", "unknown key 'platfroms'",
                         "did you mean 'platforms'?")
    nothing_pushed(registry, repo)


def test_wrong_config_type(hello_context: Path, repo: str, registry: str) -> None:
    (hello_context / "pyproject.toml").write_text('[tool.polyarch]\nplatforms = "arm64"\nverify = 3\n')
    run = polyarch("publish", "-t", f"{repo}:1", ".", cwd=hello_context)
    # The first wrong value stops it: a string where the file needs a TOML array.
    assert_clean_failure(run, 2, "pyproject.toml", "'platforms' must be a list of platforms")
    nothing_pushed(registry, repo)


def test_failing_run_step(tmp_path: Path, repo: str, registry: str) -> None:
    from conftest import make_context

    ctx = make_context(tmp_path / "ctx", dockerfile=(
        "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n"
        "RUN echo compiling widgets for $(uname -m) && exit 7\n"))
    run = polyarch("publish", "-t", f"{repo}:1", str(ctx))
    line = assert_clean_failure(run, 1, "build failed", "exit code: 7")
    assert "RUN echo compiling widgets" in line
    # The build's own output is shown, not just the exit status.
    assert "compiling widgets for" in run.err
    nothing_pushed(registry, repo)


def test_bad_build_arg(hello_context: Path) -> None:
    run = polyarch("publish", "-t", "127.0.0.1:5000/a/b:1", "--build-arg", "NOEQUALS",
                   str(hello_context))
    assert_clean_failure(run, 2, "'NOEQUALS' is not KEY=VALUE")


def test_an_unknown_option_points_to_help() -> None:
    run = polyarch("publish", "--platfrom", "arm64")
    assert_clean_failure(run, 2, "--platfrom", "--help")


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--secret", "id=x,src=/nonexistent", "the file /nonexistent does not exist"),
    ("--ssh", "default=/nonexistent.sock", "/nonexistent.sock does not exist"),
    ("--ulimit", "nofile=2048:1024", "the soft limit 2048 is above the hard limit 1024"),
    ("--network", "bogus", "network 'bogus' is not one of"),
])
def test_build_flags_checked_before_the_build(hello_context: Path, repo: str, registry: str,
                                              flag: str, value: str, needle: str,
                                              dry_run: bool) -> None:
    """What buildx would refuse after the time spent getting there is refused first,
    alike by a dry run and a real one."""
    run = polyarch("publish", *(["--dry-run"] if dry_run else []), "-t", f"{repo}:1", flag,
                   value, str(hello_context))
    assert_clean_failure(run, 2, needle)
    assert echoed_build(run.err) is None
    nothing_pushed(registry, repo)


# Files and settings that once ended in exit 70.

def refused(run: Run, *needles: str) -> str:
    assert run.code == 2, f"exit {run.code}\n{run.err}"
    assert "Traceback" not in run.text and "internal error" not in run.text
    line = last_error_line(run)
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    return d


def test_config_not_utf8(ctx: Path, repo: str, registry: str) -> None:
    (ctx / "polyarch.toml").write_bytes(b'platforms = ["linux/amd64\xff"]\n')
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "polyarch.toml", "not UTF-8")
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_config_nested_too_deeply(ctx: Path, repo: str) -> None:
    (ctx / "polyarch.toml").write_text("labels = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "nested too deeply")


def test_nul_in_a_build_arg(ctx: Path, repo: str, registry: str) -> None:
    (ctx / "polyarch.toml").write_text('build-args = { A = "x\\u0000y" }\n')
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx), "'build-args' contains a NUL")
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_nodes_json_nested_too_deeply(ctx: Path, repo: str) -> None:
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx,
                     env={"POLYARCH_NODES": "[" * 50_000 + "]" * 50_000}),
            "POLYARCH_NODES", "nested too deeply")


@pytest.mark.parametrize(("tag", "needle"), [
    ("127.0.0.1:70618/x/y:1", "port 70618 is not in 1-65535"),
    ("127.0.0.1:5000/x/y:1\nz", "control characters"),
])
def test_a_reference_with_a_bad_port_or_control_characters_is_refused(
        ctx: Path, tag: str, needle: str) -> None:
    refused(polyarch("publish", "-t", tag, ".", cwd=ctx), needle)


def test_merge_to_a_port_that_would_wrap(registry: str) -> None:
    # 70618 is 5082 modulo 65536: the tag must not land on another registry.
    before = registry_catalog(registry)
    refused(polyarch("merge", "-t", "127.0.0.1:70618/x/y:1", f"{registry}/x/y@{DIGEST}"),
            "port 70618 is not in 1-65535")
    assert registry_catalog(registry) == before


def test_source_date_epoch_out_of_range(ctx: Path, registry: str) -> None:
    run = polyarch("publish", "--image", f"{registry}/fuzz/epoch", "--tag-spec",
                   "type=schedule,pattern={{date 'YYYYMMDD'}}", ".", cwd=ctx,
                   env={"SOURCE_DATE_EPOCH": "9" * 30})
    refused(run, "SOURCE_DATE_EPOCH", "out of range")
    assert registry_tags(registry, "fuzz/epoch") == []


def test_descriptor_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "part.json").write_bytes(b'{"kind": "polyarch-build", "builder": "\xff"}')
    refused(polyarch("merge", "-t", "127.0.0.1:5000/x/y:1", "part.json", cwd=tmp_path),
            "part.json", "not JSON")


def test_descriptor_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "part.json").write_text('{"kind": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(polyarch("merge", "-t", "127.0.0.1:5000/x/y:1", "part.json", cwd=tmp_path),
            "part.json", "nested too deeply")


def test_depends_on_cycle_1200_long(ctx: Path) -> None:
    n = 1200
    (ctx / "polyarch.toml").write_text("\n".join(
        f'[[image]]\nname = "i{i}"\ntags = ["127.0.0.1:5000/p/i{i}:1"]\n'
        f'depends-on = ["i{(i + 1) % n}"]\n' for i in range(n)))
    line = refused(polyarch("publish", cwd=ctx), "depends-on cycle: i0 -> i1")
    assert len(line) < 400


def test_version_from_a_list(ctx: Path) -> None:
    (ctx / "polyarch.toml").write_text(
        '[[image]]\nname = "app"\nversion = { from = ["package.json"] }\n'
        'tags = ["127.0.0.1:5000/p/app:{version}"]\n')
    refused(polyarch("publish", cwd=ctx), "'version' must be a string")


def test_package_json_nested_too_deeply(ctx: Path) -> None:
    (ctx / "package.json").write_text('{"version": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (ctx / "polyarch.toml").write_text(
        '[[image]]\nname = "app"\nversion = { from = "package.json" }\n'
        'tags = ["127.0.0.1:5000/p/app:{version}"]\n')
    refused(polyarch("publish", cwd=ctx), "package.json", "nested too deeply")


def test_bad_timeout_setting(ctx: Path, repo: str) -> None:
    refused(polyarch("publish", "-t", f"{repo}:1", ".", cwd=ctx,
                     env={"POLYARCH_COMMAND_TIMEOUT": "-1"}),
            "POLYARCH_COMMAND_TIMEOUT")


def test_json_env_value_in_json_mode(ctx: Path, repo: str) -> None:
    run = polyarch("publish", "--json", "-t", f"{repo}:1", ".", cwd=ctx,
                   env={"POLYARCH_BUILD_ARGS": json.dumps({"A": [1, {"b": None}]})})
    assert run.code in (0, 2), run.err
    assert "Traceback" not in run.text
