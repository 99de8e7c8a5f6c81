"""Builder nodes from the configuration: send each platform to a machine of its own.

A node is an endpoint buildx understands (a docker context name, ``ssh://user@host``,
``tcp://host:port``, ``unix:///path``), a driver (``docker-container``, ``remote``,
``kubernetes``) with its options, and the platforms it builds natively::

    [[tool.polyarch.pipeline.nodes]]
    platforms = ["linux/amd64"]
    endpoint = "default"

    [[tool.polyarch.pipeline.nodes]]
    name = "graviton"                 # node polyarch-graviton (default: polyarch-<n>)
    platforms = ["linux/arm64"]
    endpoint = "ssh://ci@arm64-runner.example.com"

or as a table of tables, whose keys name the nodes (``[tool.polyarch.pipeline.nodes.graviton]``).
polyarch creates or updates the ``polyarch`` builder with one ``docker buildx create
--append`` per node and builds with ``--builder polyarch``; buildx then sends each
platform to the node that lists it, and a platform no node lists to the first node
(which emulates it).

:class:`NodeSpec` and the config's parser for ``nodes`` live in :mod:`polyarch.nodespec`,
below the config; this module is the buildx engine's part of its preflight.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from polyarch.engines.base import Check, Plan
from polyarch.errors import EnvironmentProblem
from polyarch.nodespec import BUILDER, NodeSpec
from polyarch.platforms import Platform

if TYPE_CHECKING:
    from polyarch.engines.buildx_info import BuilderInfo, BuildxProbes

#: Seconds to wait for a TCP or unix socket to answer in the reachability check.
CONNECT_TIMEOUT = 3.0


# -- the buildx commands -----------------------------------------------------------------

def create_argv(bx: BuildxProbes, node: NodeSpec, *, append: bool) -> list[str]:
    """``docker buildx create --name polyarch --node polyarch-<n> --platform ... --driver
    ... [--driver-opt ...] [--append] ENDPOINT``."""
    a = bx.buildx("create", "--name", BUILDER, "--node", node.name,
                  "--platform", ",".join(str(p) for p in node.platforms),
                  "--driver", node.driver)
    for k, v in node.driver_opts:
        a += ["--driver-opt", f"{k}={v}"]
    if node.buildkitd_flags:
        a += ["--buildkitd-flags", node.buildkitd_flags]
    if append:
        a.append("--append")
    if node.endpoint:
        a.append(node.endpoint)
    return a


def setup_commands(bx: BuildxProbes, nodes: Sequence[NodeSpec],
                   existing: BuilderInfo | None) -> list[list[str]]:
    """The commands that make the ``polyarch`` builder exactly the configured nodes.

    A builder of another driver is removed first (buildx cannot change a builder's
    driver); nodes no longer configured leave it. Every configured node is then created
    or updated (``--append`` on an existing node name updates it in place); the first
    command has no ``--append`` only when there is no builder yet.
    """
    cmds: list[list[str]] = []
    exists = existing is not None
    if existing is not None and existing.driver != nodes[0].driver:
        cmds.append(bx.buildx("rm", BUILDER))
        exists = False
    elif existing is not None:
        wanted = {n.name for n in nodes}
        for old in existing.nodes:
            if old.name not in wanted:
                cmds.append(bx.buildx("create", "--name", BUILDER, "--node", old.name,
                                      "--leave"))
    for i, n in enumerate(nodes):
        cmds.append(create_argv(bx, n, append=exists or i > 0))
    return cmds


# -- reachability ----------------------------------------------------------------------

def _connect(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as e:
        return f"cannot connect to {host}:{port}: {e.strerror or e}"


def _connect_unix(path: str) -> str | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect(path)
        return None
    except OSError as e:
        return f"cannot connect to {path}: {e.strerror or e}"
    finally:
        s.close()


def _context_host(bx: BuildxProbes, name: str) -> tuple[str | None, str | None]:
    """(the docker endpoint of context ``name``, or why there is none)."""
    from polyarch import proc

    # Not checked: a non-zero exit is the answer "no such context".
    r = proc.run(["docker", "context", "inspect", name, "--format",
                  "{{.Endpoints.docker.Host}}"], check=False, echo=False, timeout=30)
    if not r.ok or not r.stdout.strip():
        return None, f"no docker context named {name!r}"
    return r.stdout.strip(), None


def endpoint_problem(bx: BuildxProbes, node: NodeSpec) -> str | None:
    """None when the node's endpoint answers (a TCP or unix socket connect); else why not.

    Kubernetes endpoints (a kube context) are not checked here.
    """
    ep = node.endpoint
    if ep is None or node.driver == "kubernetes":
        return None
    if "://" not in ep:
        host, why = _context_host(bx, ep)
        if host is None:
            return why
        ep = host
    u = urlsplit(ep)
    if u.scheme == "unix":
        return _connect_unix(u.path)
    if u.scheme in ("tcp", "ssh", "docker-container", "kube-pod"):
        if u.scheme in ("docker-container", "kube-pod"):
            return None  # a buildkitd inside a container or pod: buildx reaches it
        try:
            port = u.port or (22 if u.scheme == "ssh" else 2375)
        except ValueError:
            return f"bad port in {ep}"
        if not u.hostname:
            return f"no host in {ep}"
        return _connect(u.hostname, port)
    return f"unsupported endpoint scheme {u.scheme!r}"


# -- preflight -------------------------------------------------------------------------

def node_for(nodes: Sequence[NodeSpec], p: Platform) -> NodeSpec | None:
    return next((n for n in nodes if p in n.platforms), None)


def plan_nodes(plan: Plan, bx: BuildxProbes, nodes: Sequence[NodeSpec],
               platforms: Sequence[Platform], allow_create: bool) -> None:
    """Preflight for a config with nodes: reachability, the builder, platform placement.

    Fills ``plan.setup_commands`` (run here when ``allow_create``; printed by dry runs),
    ``plan.builder_arg`` and ``plan.platform_modes``.
    """
    from polyarch import proc

    existing = bx.inspect_builder(BUILDER)
    plan.setup_commands = setup_commands(bx, nodes, existing)
    plan.builder_arg = BUILDER
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        problems = list(pool.map(lambda n: endpoint_problem(bx, n), nodes))
    unreachable = False
    for n, why in zip(nodes, problems, strict=True):
        plats = ", ".join(str(p) for p in n.platforms)
        if why is None:
            note = " (not checked)" if n.driver == "kubernetes" else ""
            plan.checks.append(Check(n.describe(), True, f"{n.driver}, {plats}{note}"))
        else:
            unreachable = True
            plan.checks.append(Check(
                n.describe(), False, f"endpoint {n.endpoint} unreachable: {why}",
                "start the machine or fix 'endpoint' in the nodes config (a docker context"
                " name, ssh://user@host, tcp://host:port)", EnvironmentProblem))
    for p in platforms:
        home = node_for(nodes, p)
        if home is not None:
            plan.platform_modes[str(p)] = "native"
            plan.checks.append(Check(f"platform {p}", True,
                                     f"native on {home.name} ({home.endpoint or home.driver})"))
        else:
            first = nodes[0]
            plan.platform_modes[str(p)] = "emulated"
            plan.checks.append(Check(
                f"platform {p}", True,
                f"emulated on {first.name} ({first.endpoint or first.driver}): no node lists it",
                f"add a node for {p}, or make sure {first.name} has QEMU for it"))
    action = "update" if existing is not None else "create"
    if unreachable or not allow_create:
        plan.checks.append(Check("builder", True, f"will {action} builder {BUILDER!r} with"
                                 f" {len(nodes)} node{'s' if len(nodes) != 1 else ''}"))
        return
    for argv in plan.setup_commands:
        # Not checked: a failed command is a failed check of the plan, shown with the others.
        r = proc.run(argv, check=False, timeout=300)
        if not r.ok:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            plan.checks.append(Check("builder", False, f"{proc_text(argv)} failed: {last}",
                                     "see the buildx output above", EnvironmentProblem))
            return
    plan.checks.append(Check("builder", True, f"{action}d {BUILDER} ({nodes[0].driver} driver,"
                             f" {len(nodes)} node{'s' if len(nodes) != 1 else ''})"))


def proc_text(argv: Sequence[str]) -> str:
    import shlex

    return shlex.join(argv[:6]) + (" ..." if len(argv) > 6 else "")
