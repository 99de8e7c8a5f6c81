"""What in an image runs: files reached from the config's ENTRYPOINT, CMD and PATH.

A platform word in a binary's path exempts it only when nothing reaches it another way
(docs/verify.md). A file is *reached* when:

- it is the ENTRYPOINT's or CMD's program: the first word (resolved through the
  config's ``PATH`` when it has no ``/``, against ``WorkingDir`` when relative), any
  other word naming a file by a path, and in the shell form (``sh -c "..."``) every
  command word of the string and every word naming a file by a path;
- it sits in a directory of the config's ``PATH`` (the runtime's default PATH when the
  config has none);
- a symbolic link from such a place leads to it (absolute and relative targets, links
  in any directory of the way, chains up to
  :data:`~polyarch.checks.filesystem.MAX_LINKS` as the kernel allows);
- it is the interpreter in the ``#!`` line of a reached script (``#!/usr/bin/env NAME``
  looks NAME up in PATH), to :data:`MAX_INTERPRETERS` levels as the kernel does.

Paths are resolved as the kernel's path walk does, over the image's final filesystem
(:class:`~polyarch.checks.filesystem.Filesystem`); nothing here runs anything.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from polyarch.checks.filesystem import Filesystem, resolve

#: containerd's and runc's PATH for a config without one.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Nested ``#!`` interpreters the kernel follows (BINPRM_MAX_RECURSION is 4).
MAX_INTERPRETERS = 5
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "busybox"})
_SHELL_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "{", "}", "then",
                               "do", "else", "!", "exec", "command", "nohup", "time"})
#: Programs that run their arguments as a command (``tini -- app``, ``env X=1 app``).
_WRAPPERS = frozenset({"env", "tini", "tini-static", "dumb-init", "gosu", "su-exec",
                       "setpriv", "chpst", "s6-setuidgid", "catatonit", "nice", "nohup",
                       "exec", "timeout", "stdbuf"})


@dataclass(frozen=True)
class Launch:
    """What the image config says about running it."""

    path: tuple[str, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    workdir: str = "/"

    @classmethod
    def of(cls, config: dict[str, Any] | None) -> Launch:
        c = (config or {}).get("config") or {}
        if not isinstance(c, dict):
            c = {}
        path = DEFAULT_PATH
        env = c.get("Env")
        for e in env if isinstance(env, list) else []:
            if isinstance(e, str) and e.startswith("PATH="):
                path = e[5:]

        def words(v: object) -> tuple[str, ...]:
            return tuple(str(w) for w in v) if isinstance(v, list) else ()

        wd = c.get("WorkingDir")
        return cls(tuple(d for d in path.split(":") if d.startswith("/")),
                   words(c.get("Entrypoint")), words(c.get("Cmd")),
                   wd if isinstance(wd, str) and wd.startswith("/") else "/")


class Reach:
    """The files of ``fs`` that ``launch`` reaches, each with why."""

    def __init__(self, fs: Filesystem, launch: Launch) -> None:
        self.fs = fs
        self.launch = launch
        self._by_dir: dict[str, list[str]] = {}
        for p in fs.files:  # normalised paths: the part before the last / is the parent
            self._by_dir.setdefault(p[:p.rfind("/")] or "/", []).append(p)
        #: Real path -> why it is reached.
        self.reached: dict[str, str] = {}
        self._path_dirs = [(d, self.resolve(d)) for d in launch.path]
        #: PATH's directories as resolved: no link on the way to them.
        self._real_dirs = {real for _d, real in self._path_dirs if real is not None}
        self._walk()

    def why(self, path: str) -> str | None:
        return self.reached.get(path)

    # -- the kernel's path walk --------------------------------------------------------
    def resolve(self, path: str) -> str | None:
        """``path`` with every symbolic link on the way followed (``None``: a loop or
        more than :data:`~polyarch.checks.filesystem.MAX_LINKS` links)."""
        return resolve(self.fs.files, path)

    def _resolve_file(self, p: str) -> str | None:
        """:meth:`resolve`, at once for a file that is no link in a resolved PATH
        directory (most of what the walk starts from)."""
        if (p[:p.rfind("/")] or "/") in self._real_dirs:
            f = self.fs.files.get(p)
            if f is None or f.link is None:
                return p
        return self.resolve(p)

    def lookup(self, name: str) -> str | None:
        """Where ``name`` (no ``/``) is found through PATH, resolved."""
        for _d, real in self._path_dirs:
            if real is None:
                continue
            p = self.resolve(real.rstrip("/") + "/" + name)
            if p is not None and p in self.fs.files:
                return p
        return None

    # -- what reaches what ---------------------------------------------------------------
    def _walk(self) -> None:
        todo: list[tuple[str, str]] = []
        for d, real in self._path_dirs:
            if real is None:
                continue
            for p in self._by_dir.get(real, []) + (self._by_dir.get(d, []) if d != real else []):
                todo.append((p, f"in {d}, a directory of the config's PATH"))
        ep, cmd = self.launch.entrypoint, self.launch.cmd
        # What the runtime runs (ENTRYPOINT followed by CMD), and CMD on its own too: an
        # entrypoint script usually ends in exec "$@".
        runs = [("ENTRYPOINT", ep, ep + cmd)] if ep else []
        runs += [("CMD", cmd, cmd)] if cmd else []
        for what, shown, argv in runs:
            label = f"the {what} ({shlex.join(shown)[:120]})"
            for word, is_command in _command_words(argv):
                if "/" in word:
                    todo.append((word, label))
                elif is_command:
                    found = self.lookup(word)
                    if found is not None:
                        todo.append((found, label))
        depth: dict[str, int] = {}
        while todo:
            p, why = todo.pop()
            if not p.startswith("/"):
                p = posixpath.join(self.launch.workdir, p)
            real = self._resolve_file(p)
            if real is None or real in self.reached:
                continue
            if real != p:
                why = f"{why}, through {p}"
            f = self.fs.files.get(real)
            if f is None:
                continue
            self.reached[real] = why
            if f.script is not None and depth.get(real, 0) < MAX_INTERPRETERS:
                for interp in self._interpreters(f.script):
                    depth[interp] = depth.get(real, 0) + 1
                    todo.append((interp, f"the #! interpreter of {real}"))

    def _interpreters(self, line: str) -> Iterable[str]:
        words = line.split()
        if not words:
            return []
        out = [words[0]]
        if posixpath.basename(words[0]) == "env":
            rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
            if rest:
                name = rest[0]
                found = name if "/" in name else self.lookup(name)
                if found:
                    out.append(found)
        return out


def _command_words(argv: tuple[str, ...]) -> list[tuple[str, bool]]:
    """The words of ``argv`` that may name a program: (word, is a command position)."""
    if not argv:
        return []
    out: list[tuple[str, bool]] = []
    words = list(argv)
    shell = posixpath.basename(words[0]) in _SHELLS and "-c" in words[1:3]
    out.append((words[0], True))
    if shell:
        script = words[words.index("-c", 1) + 1] if words.index("-c", 1) + 1 < len(words) else ""
        try:
            inner = shlex.split(script, comments=True)
        except ValueError:
            inner = script.split()
        first = True
        for w in inner:
            if w in _SHELL_SEPARATORS or w.endswith(";"):
                first = True
                w = w.rstrip(";")
                if not w or w in _SHELL_SEPARATORS:
                    continue
            if "=" in w and first and "/" not in w.split("=", 1)[0]:
                continue  # VAR=value before a command
            out.append((w, first))
            first = posixpath.basename(w) in _WRAPPERS
        return out
    command = posixpath.basename(words[0]) in _WRAPPERS
    for w in words[1:]:
        if w.startswith("-") and command:
            continue
        out.append((w, command))
        command = command and ("=" in w or posixpath.basename(w) in _WRAPPERS)
    return out
