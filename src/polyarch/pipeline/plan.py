"""Preflight: can this machine build and publish every requested platform?

The build inputs, the tags and the registry are checked here; the engine answers for
itself (:meth:`polyarch.engines.Engine.preflight`). ``polyarch doctor`` prints the checks
as a table; ``publish`` runs them and stops before building at the first blocking
problem, except the registry's, which it makes while the engine builds
(:func:`polyarch.pipeline.local.registry_alongside`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch.config import Options
from polyarch.engines import Check, Engine, Plan, choose_engine, select_engine
from polyarch.errors import UsageError

if TYPE_CHECKING:
    from polyarch.registry import RegistryClient


__all__ = ["Check", "Plan", "registry_push_check", "run_preflight"]


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    """``test(path)``, false where the path cannot even be looked at (a name too long)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def run_preflight(
    opts: Options,
    *,
    build_engine: Engine | None = None,
    need_push: bool = True,
    registry_check: Callable[[Options], Check | None] | None = None,
    allow_create: bool = True,
    check_inputs: bool = True,
) -> Plan:
    """Run every check. Stops early only where later checks cannot run."""
    eng = build_engine or select_engine(opts)
    checks: list[Check] = []

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

    # The engine's own checks and the registry's: independent, asked side by side.
    ask = registry_check if need_push and opts.tags else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        f_registry = pool.submit(ask, opts) if ask is not None else None
        engine_plan = eng.preflight(opts.platforms, builder=opts.builder, nodes=opts.nodes,
                                    allow_create=allow_create)
        registry = f_registry.result() if f_registry is not None else None
    checks.extend(engine_plan.checks)
    if registry is not None and not engine_plan.stopped:
        checks.append(registry)
    return replace(engine_plan, checks=checks)


def _input_files(opts: Options) -> list[Check]:
    """The files ``--secret`` and ``--ssh`` name exist (the engine would fail the build
    on them, after the time spent getting there)."""
    from polyarch.config.build_kinds import secret_file, ssh_paths

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
