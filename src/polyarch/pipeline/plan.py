"""Preflight: can this machine build and publish every requested platform?

``polyarch doctor`` prints the checks as a table; ``publish`` runs them and stops
before building at the first blocking problem.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from polyarch.config import Options
from polyarch.engines import Engine, choose_engine, select_engine
from polyarch.engines.buildx import DEDICATED_BUILDER, BuilderInfo, Buildx, EngineInfo
from polyarch.engines.podman import PodmanEngine
from polyarch.errors import EnvironmentProblem, UsageError
from polyarch.pipeline.checklist import Check, Plan
from polyarch.platforms import Platform, from_uname

if TYPE_CHECKING:
    from polyarch.registry import RegistryClient

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


__all__ = ["BINFMT_DIR", "Check", "Plan", "registry_push_check", "run_preflight"]


def is_local_engine(docker_context: str | None) -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    ctx = docker_context or os.environ.get("DOCKER_CONTEXT", "")
    return (not host or host.startswith("unix://")) and ctx in ("", "default")


def binfmt_machines(root: Path = BINFMT_DIR) -> set[tuple[int, int]]:
    """(ELF class, ELF machine) pairs that an enabled binfmt_misc handler runs."""
    out: set[tuple[int, int]] = set()
    try:
        entries = list(root.iterdir())
    except OSError:
        return out
    for e in entries:
        if e.name in {"register", "status"}:
            continue
        try:
            text = e.read_text()
        except OSError:
            continue
        lines = text.splitlines()
        if not lines or lines[0].strip() != "enabled":
            continue
        magic = next((ln.split()[1] for ln in lines if ln.startswith("magic ")), "")
        offset = next((ln.split()[1] for ln in lines if ln.startswith("offset ")), "0")
        if offset != "0" or len(magic) < 40 or not magic.startswith("7f454c46"):
            continue
        raw = bytes.fromhex(magic[:40])
        cls, endian = raw[4], raw[5]
        machine = int.from_bytes(raw[18:20], "little" if endian == 1 else "big")
        out.add((cls, machine))
    return out


def _native(engine_arch: str, p: Platform) -> bool:
    try:
        host = from_uname(engine_arch)
    except ValueError:
        return False
    if host.architecture == p.architecture:
        return True
    # 64-bit hosts run their 32-bit siblings natively.
    return (host.architecture, p.architecture) in {("amd64", "386"), ("arm64", "arm")}


def emulator_remedy(p: Platform) -> str:
    arch = p.architecture if p.architecture != "arm" else "arm"
    return (
        f"install QEMU user emulation: on Debian/Ubuntu 'apt-get install qemu-user-static"
        f" binfmt-support', or 'docker run --privileged --rm tonistiigi/binfmt --install {arch}'"
    )


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    """``test(path)``, false where the path cannot even be looked at (a name too long)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def run_preflight(
    opts: Options,
    *,
    buildx: Buildx | None = None,
    build_engine: Engine | None = None,
    need_push: bool = True,
    registry_check: Callable[[Options], Check | None] | None = None,
    allow_create: bool = True,
    check_inputs: bool = True,
) -> Plan:
    """Run every check. Stops early only where later checks cannot run."""
    plan = Plan()
    eng = build_engine or buildx or select_engine(opts)
    bx = eng if isinstance(eng, Buildx) else Buildx(docker_context=opts.docker_context,
                                                     builder=opts.builder)
    checks = plan.checks

    # Inputs first: they cost nothing and need no engine.
    ctx = Path(opts.context)
    if not check_inputs:
        pass
    elif not _is(ctx, Path.is_dir):
        checks.append(Check("build context", False, f"{opts.context} is not a directory",
                            "pass the directory that holds your sources as the last argument",
                            UsageError))
    else:
        checks.append(Check("build context", True, str(ctx)))
        df = opts.dockerfile
        if not _is(df, Path.is_file):
            checks.append(Check("Dockerfile", False, f"{df} not found",
                                "pass -f/--file PATH or create a Dockerfile in the context",
                                UsageError))
        else:
            checks.append(Check("Dockerfile", True, str(df)))
    if check_inputs:
        checks.extend(_input_files(opts))
    if need_push:
        if opts.tags:
            checks.append(Check("tags", True, ", ".join(str(t) for t in opts.tags)))
        else:
            checks.append(Check("tags", False, "no tag given",
                                "pass -t/--tag REGISTRY/REPO:TAG or set 'tags' in the config",
                                UsageError))
    if opts.engine == "auto":
        checks.append(Check("engine choice", True, f"{eng.name} ({choose_engine(opts).reason})"))
    if isinstance(eng, PodmanEngine):
        _podman_checks(plan, eng, opts, registry_check if need_push and opts.tags else None)
        return plan

    # Engine, buildx, builder and registry: independent look-ups, run side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        f_engine = pool.submit(_catch, _once(bx, "info", bx.engine_info))
        f_buildx = pool.submit(_catch, _once(bx, "buildx", bx.buildx_version))
        f_builder = pool.submit(_once(bx, f"builder {opts.builder}",
                                      lambda: bx.inspect_builder(opts.builder)))
        f_registry = (
            pool.submit(registry_check, opts)
            if need_push and opts.tags and registry_check is not None
            else None
        )
        engine = f_engine.result()
        version = f_buildx.result()
        builder = f_builder.result()
        registry = f_registry.result() if f_registry is not None else None

    if isinstance(engine, EnvironmentProblem):
        checks.append(Check("engine", False, engine.message, engine.hint or "", EnvironmentProblem))
        return plan
    plan.engine = engine
    checks.append(Check("engine", True, f"Docker {engine.server_version} ({engine.os}/{engine.arch})"))
    if isinstance(version, EnvironmentProblem):
        checks.append(Check("buildx", False, version.message, version.hint or "",
                            EnvironmentProblem))
        return plan
    checks.append(Check("buildx", True, version))

    if opts.nodes and not opts.builder:
        from polyarch.pipeline.nodes import plan_nodes

        plan_nodes(plan, bx, opts, allow_create)
    else:
        _choose_builder(plan, bx, opts, allow_create, builder)
        if plan.builder is not None:
            _check_platforms(plan, opts.platforms, local=is_local_engine(opts.docker_context))
    if registry is not None:
        checks.append(registry)
    return plan


def _input_files(opts: Options) -> list[Check]:
    """The files ``--secret`` and ``--ssh`` name exist (the engine would fail the build
    on them, after the time spent getting there)."""
    from polyarch.config.kinds import secret_file, ssh_paths

    out: list[Check] = []
    for spec in opts.secrets:
        src = secret_file(spec)
        if src is not None and not _is(Path(src), Path.is_file):
            out.append(Check("secret", False, f"--secret {spec}: the file {src} does not exist"
                             " (or is not a file)", "check the src= path", UsageError))
    for spec in opts.ssh:
        for path in ssh_paths(spec):
            if not _is(Path(path), Path.exists):
                out.append(Check("ssh", False, f"--ssh {spec}: {path} does not exist",
                                 "name an agent socket ($SSH_AUTH_SOCK) or key files",
                                 UsageError))
    return out


def _podman_checks(plan: Plan, pm: PodmanEngine, opts: Options,
                   registry_check: Callable[[Options], Check | None] | None) -> None:
    """The podman engine: its version, then each platform natively or through binfmt."""
    checks = plan.checks
    with ThreadPoolExecutor(max_workers=2) as pool:
        f_info = pool.submit(_catch, _once(pm, "info", pm.info))
        f_registry = pool.submit(registry_check, opts) if registry_check is not None else None
        info = f_info.result()
        registry = f_registry.result() if f_registry is not None else None
    if isinstance(info, EnvironmentProblem):
        checks.append(Check("engine", False, info.message, info.hint or "", EnvironmentProblem))
        return
    plan.engine = EngineInfo(info.version, info.arch, info.os, containerd_store=False)
    mode = "rootless" if info.rootless else "rootful"
    detail = f"Podman {info.version} ({info.os}/{info.arch}, {mode}{', remote' if info.remote else ''})"
    major = int(info.version.split(".")[0]) if info.version[:1].isdigit() else 0
    if major < 4:
        checks.append(Check("engine", False, detail + ": multi-platform builds need podman 4+",
                            "install podman 4 or later (Debian 12, Ubuntu 23.04, Fedora 36"
                            " and later ship it), or use --engine docker", EnvironmentProblem))
        return
    checks.append(Check("engine", True, detail))
    handlers = binfmt_machines() if not info.remote else set()
    for p in opts.platforms:
        name = f"platform {p}"
        if _native(info.arch, p):
            plan.platform_modes[str(p)] = "native"
            checks.append(Check(name, True, "native"))
        elif info.remote:
            # The machine that runs podman is not this one: its binfmt table is unknown.
            plan.platform_modes[str(p)] = "emulated"
            checks.append(Check(name, False, "emulation on the remote podman host not checked",
                                emulator_remedy(p)))
        elif (p.elf_class, p.elf_machine) in handlers:
            plan.platform_modes[str(p)] = "emulated"
            checks.append(Check(name, True, f"emulated (QEMU {p.qemu})"))
        else:
            plan.platform_modes[str(p)] = "missing"
            checks.append(Check(name, False, "no emulator registered in binfmt_misc",
                                emulator_remedy(p), EnvironmentProblem))
    if registry is not None:
        checks.append(registry)


T = TypeVar("T")

#: Engine look-ups already made, per engine object: a project of many images (one
#: preflight each, all on the session's one engine) asks the engine once.
_seen: weakref.WeakKeyDictionary[object, dict[str, object]] = weakref.WeakKeyDictionary()
_seen_lock = threading.Lock()


def _once(engine: object, what: str, look_up: Callable[[], T]) -> Callable[[], T]:
    """``look_up`` made once per ``engine``: a result is kept (an error or "no such
    builder" is not, so that the next preflight asks again)."""

    def call() -> T:
        with _seen_lock:
            known = _seen.setdefault(engine, {})
            if what in known:
                return known[what]  # type: ignore[return-value]
        result = look_up()
        if result is not None:
            with _seen_lock:
                _seen.setdefault(engine, {})[what] = result
        return result

    return call


def _catch(fn: Callable[[], T]) -> T | EnvironmentProblem:
    try:
        return fn()
    except EnvironmentProblem as e:
        return e


def _choose_builder(plan: Plan, bx: Buildx, opts: Options, allow_create: bool,
                    prefetched: BuilderInfo | None) -> None:
    checks = plan.checks
    assert plan.engine is not None
    if opts.builder:
        b = prefetched
        if b is None:
            checks.append(Check("builder", False, f"builder {opts.builder!r} not found",
                                "list builders with 'docker buildx ls', or drop --builder",
                                EnvironmentProblem))
            return
        problem = _multi_platform_problem(b, plan.engine)
        if problem:
            checks.append(Check("builder", False, f"{b.name} ({b.driver}): {problem}",
                                _store_remedy(), EnvironmentProblem))
            return
        plan.builder, plan.builder_arg = b, b.name
        checks.append(Check("builder", True, f"{b.name} ({b.driver} driver)"))
        return

    current = prefetched
    if current is not None and not _multi_platform_problem(current, plan.engine):
        # Platform coverage is checked next; a builder that lacks an emulator is not
        # fixed by another builder on the same engine.
        plan.builder = current
        checks.append(Check("builder", True, f"{current.name} ({current.driver} driver,"
                            " current builder)"))
        return
    # The current builder cannot do it: use (or create) the dedicated builder.
    why = (_multi_platform_problem(current, plan.engine) if current else "no current builder")
    ded = bx.inspect_builder(DEDICATED_BUILDER)
    if ded is not None:
        plan.builder, plan.builder_arg = ded, DEDICATED_BUILDER
        checks.append(Check("builder", True, f"{DEDICATED_BUILDER} ({ded.driver} driver;"
                            f" current builder unsuitable: {why})"))
        return
    create = bx.buildx("create", "--name", DEDICATED_BUILDER, "--driver", "docker-container",
                       "--bootstrap")
    plan.create_builder = create
    plan.builder_arg = DEDICATED_BUILDER
    if not allow_create:
        # What the build would use once the builder exists (a dry run shows the same
        # command the real run executes: a docker-container builder pushes by digest).
        plan.builder = BuilderInfo(DEDICATED_BUILDER, "docker-container")
        checks.append(Check("builder", True, f"will create builder {DEDICATED_BUILDER!r}"
                            f" (current builder unsuitable: {why})"))
        return
    from polyarch import proc

    # Not checked: a failure is a failed check of the plan, shown with the others.
    r = proc.run(create, check=False, timeout=600)
    if not r.ok:
        # Leave no half-made builder behind (a cleanup: its own failure changes nothing).
        proc.run(bx.buildx("rm", DEDICATED_BUILDER), check=False, echo=False, timeout=120)
        checks.append(Check(
            "builder", False,
            f"current builder unsuitable ({why}) and creating {DEDICATED_BUILDER!r} failed: "
            + (r.stderr.strip().splitlines() or ["no output"])[-1],
            _store_remedy(), EnvironmentProblem))
        return
    plan.builder = bx.inspect_builder(DEDICATED_BUILDER)
    checks.append(Check("builder", True, f"created {DEDICATED_BUILDER} (docker-container driver)"))


def _store_remedy() -> str:
    return ("enable the containerd image store: put {\"features\": {\"containerd-snapshotter\":"
            " true}} in /etc/docker/daemon.json and restart dockerd, or create a"
            " docker-container builder: docker buildx create --name polyarch --driver"
            " docker-container")


def _multi_platform_problem(b: BuilderInfo | None, engine: EngineInfo) -> str | None:
    if b is None:
        return "builder not found"
    if not b.nodes or all(n.status not in ("running", "inactive", "") for n in b.nodes):
        statuses = ", ".join(n.status for n in b.nodes) or "no nodes"
        return f"builder not running ({statuses})"
    if b.driver == "docker" and not engine.containerd_store:
        return ("the docker driver cannot build multi-platform images without the containerd"
                " image store")
    return None


def _available(b: BuilderInfo, engine: EngineInfo, p: Platform) -> bool:
    return _native(engine.arch, p) or str(p) in b.platforms or (
        p.variant == "" and any(x.startswith(f"{p}/") for x in b.platforms)
    )


def _check_platforms(plan: Plan, platforms: Sequence[Platform], *, local: bool) -> None:
    assert plan.builder is not None and plan.engine is not None
    handlers = binfmt_machines() if local else set()
    for p in platforms:
        name = f"platform {p}"
        if _native(plan.engine.arch, p):
            plan.platform_modes[str(p)] = "native"
            plan.checks.append(Check(name, True, "native"))
            continue
        listed = _available(plan.builder, plan.engine, p)
        if local and (plan.builder.driver == "docker" or not plan.builder.nodes):
            # BuildKit's platform list is read once when dockerd starts; the kernel's
            # binfmt_misc table is the truth for a local engine.
            emulated = (p.elf_class, p.elf_machine) in handlers
        else:
            emulated = listed
        if emulated:
            plan.platform_modes[str(p)] = "emulated"
            plan.checks.append(Check(name, True, f"emulated (QEMU {p.qemu})"))
        else:
            plan.platform_modes[str(p)] = "missing"
            plan.checks.append(Check(name, False, "no native node and no emulator",
                                     emulator_remedy(p), EnvironmentProblem))


def registry_push_check(opts: Options, client: RegistryClient) -> Check | None:
    """Can we push to every tag's repository with the credentials docker would use?"""
    from polyarch.errors import RegistryError

    seen: set[str] = set()
    for ref in opts.tags:
        key = ref.name
        if key in seen:
            continue
        seen.add(key)
        try:
            client.check_push_access(ref)
        except RegistryError as e:
            return Check("registry", False, e.message, e.hint or "", RegistryError)
    return Check("registry", True, "push access to " + ", ".join(sorted(seen)))
