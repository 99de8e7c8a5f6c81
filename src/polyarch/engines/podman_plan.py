"""The podman engine's preflight: its version, then each platform natively or through
binfmt_misc (podman has no builders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from polyarch.engines.base import Check, Plan
from polyarch.engines.emulation import binfmt_machines, emulator_remedy, native
from polyarch.errors import EnvironmentProblem
from polyarch.platforms import Platform


@dataclass(frozen=True)
class PodmanInfo:
    version: str
    arch: str  # GOARCH as podman reports it (amd64, arm64)
    os: str
    rootless: bool
    remote: bool  # talks to a podman service elsewhere (podman --remote, CONTAINER_HOST)


class PodmanProbes(Protocol):
    """What the podman engine's preflight asks of it (:class:`~polyarch.engines.podman.
    PodmanEngine` is one)."""

    def info(self) -> PodmanInfo: ...


def preflight(pm: PodmanProbes, platforms: Sequence[Platform]) -> Plan:
    plan = Plan()
    checks = plan.checks
    try:
        info = pm.info()
    except EnvironmentProblem as e:
        checks.append(Check("engine", False, e.message, e.hint or "", EnvironmentProblem))
        plan.stopped = True
        return plan
    mode = "rootless" if info.rootless else "rootful"
    detail = f"Podman {info.version} ({info.os}/{info.arch}, {mode}{', remote' if info.remote else ''})"
    major = int(info.version.split(".")[0]) if info.version[:1].isdigit() else 0
    if major < 4:
        checks.append(Check("engine", False, detail + ": multi-platform builds need podman 4+",
                            "install podman 4 or later (Debian 12, Ubuntu 23.04, Fedora 36"
                            " and later ship it), or use --engine docker", EnvironmentProblem))
        plan.stopped = True
        return plan
    checks.append(Check("engine", True, detail))
    handlers = binfmt_machines() if not info.remote else set()
    for p in platforms:
        name = f"platform {p}"
        if native(info.arch, p):
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
    return plan
