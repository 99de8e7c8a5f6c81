"""The Docker buildx engine's preflight: the engine, buildx, the builder (the current
one, the dedicated ``polyarch`` builder, or the configured nodes) and each platform."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from polyarch.engines.base import Check, Plan
from polyarch.engines.buildx_info import DEDICATED_BUILDER, BuilderInfo, BuildxProbes, EngineInfo
from polyarch.engines.emulation import binfmt_machines, emulator_remedy, native
from polyarch.errors import EnvironmentProblem
from polyarch.platforms import Platform

if TYPE_CHECKING:
    from polyarch.nodespec import NodeSpec

T = TypeVar("T")


def is_local_engine(docker_context: str | None) -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    ctx = docker_context or os.environ.get("DOCKER_CONTEXT", "")
    return (not host or host.startswith("unix://")) and ctx in ("", "default")


def preflight(bx: BuildxProbes, platforms: Sequence[Platform], *, builder: str | None,
              nodes: Sequence[NodeSpec], allow_create: bool) -> Plan:
    plan = Plan()
    checks = plan.checks
    # Engine, buildx and builder: independent look-ups, run side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        f_engine = pool.submit(_catch, lambda: bx.remember("info", bx.engine_info))
        f_buildx = pool.submit(_catch, lambda: bx.remember("buildx", bx.buildx_version))
        f_builder = pool.submit(bx.remember, f"builder {builder}",
                                lambda: bx.inspect_builder(builder))
        engine = f_engine.result()
        version = f_buildx.result()
        current = f_builder.result()

    if isinstance(engine, EnvironmentProblem):
        checks.append(Check("engine", False, engine.message, engine.hint or "", EnvironmentProblem))
        plan.stopped = True
        return plan
    checks.append(Check("engine", True, f"Docker {engine.server_version} ({engine.os}/{engine.arch})"))
    if isinstance(version, EnvironmentProblem):
        checks.append(Check("buildx", False, version.message, version.hint or "",
                            EnvironmentProblem))
        plan.stopped = True
        return plan
    checks.append(Check("buildx", True, version))

    if nodes and not builder:
        from polyarch.engines.buildx_nodes import plan_nodes

        plan_nodes(plan, bx, nodes, platforms, allow_create)
        return plan
    chosen = _choose_builder(plan, bx, engine, builder, allow_create, current)
    if chosen is not None:
        _check_platforms(plan, chosen, engine, platforms,
                         local=is_local_engine(bx.docker_context))
    return plan


def _catch(fn: Callable[[], T]) -> T | EnvironmentProblem:
    try:
        return fn()
    except EnvironmentProblem as e:
        return e


def _choose_builder(plan: Plan, bx: BuildxProbes, engine: EngineInfo, builder: str | None,
                    allow_create: bool, prefetched: BuilderInfo | None) -> BuilderInfo | None:
    """The builder to build with (None: there is none that can); sets ``builder_arg``."""
    checks = plan.checks
    if builder:
        b = prefetched
        if b is None:
            checks.append(Check("builder", False, f"builder {builder!r} not found",
                                "list builders with 'docker buildx ls', or drop --builder",
                                EnvironmentProblem))
            return None
        problem = _multi_platform_problem(b, engine)
        if problem:
            checks.append(Check("builder", False, f"{b.name} ({b.driver}): {problem}",
                                _store_remedy(), EnvironmentProblem))
            return None
        plan.builder_arg = b.name
        checks.append(Check("builder", True, f"{b.name} ({b.driver} driver)"))
        return b

    current = prefetched
    if current is not None and not _multi_platform_problem(current, engine):
        # Platform coverage is checked next; a builder that lacks an emulator is not
        # fixed by another builder on the same engine.
        checks.append(Check("builder", True, f"{current.name} ({current.driver} driver,"
                            " current builder)"))
        return current
    # The current builder cannot do it: use (or create) the dedicated builder.
    why = (_multi_platform_problem(current, engine) if current else "no current builder")
    ded = bx.inspect_builder(DEDICATED_BUILDER)
    if ded is not None:
        plan.builder_arg = DEDICATED_BUILDER
        checks.append(Check("builder", True, f"{DEDICATED_BUILDER} ({ded.driver} driver;"
                            f" current builder unsuitable: {why})"))
        return ded
    create = bx.buildx("create", "--name", DEDICATED_BUILDER, "--driver", "docker-container",
                       "--bootstrap")
    plan.setup_commands.append(create)
    plan.builder_arg = DEDICATED_BUILDER
    if not allow_create:
        # What the build would use once the builder exists (a dry run shows the same
        # command the real run executes: a docker-container builder pushes by digest).
        checks.append(Check("builder", True, f"will create builder {DEDICATED_BUILDER!r}"
                            f" (current builder unsuitable: {why})"))
        return BuilderInfo(DEDICATED_BUILDER, "docker-container")
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
        return None
    checks.append(Check("builder", True, f"created {DEDICATED_BUILDER} (docker-container driver)"))
    return bx.inspect_builder(DEDICATED_BUILDER)


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
    return native(engine.arch, p) or str(p) in b.platforms or (
        p.variant == "" and any(x.startswith(f"{p}/") for x in b.platforms)
    )


def _check_platforms(plan: Plan, builder: BuilderInfo, engine: EngineInfo,
                     platforms: Sequence[Platform], *, local: bool) -> None:
    handlers = binfmt_machines() if local else set()
    for p in platforms:
        name = f"platform {p}"
        if native(engine.arch, p):
            plan.platform_modes[str(p)] = "native"
            plan.checks.append(Check(name, True, "native"))
            continue
        listed = _available(builder, engine, p)
        if local and (builder.driver == "docker" or not builder.nodes):
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
