"""What the linter works on and what it reports: parsed Dockerfile pieces and findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from polyarch.platforms import Platform
from polyarch.refs import ImageRef

Severity = Literal["error", "warning", "info", "note"]

#: Higher is worse; ``--fail-on`` compares against this.
SEVERITY_RANK: dict[str, int] = {"note": 0, "info": 1, "warning": 2, "error": 3}

PlatformLookup = Callable[[ImageRef], list[Platform] | None]


class LookupFailed(Exception):
    """Raised by a platform lookup that could not ask the registry; the message says why."""


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    summary: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("PA000", "parse-error", "The Dockerfile cannot be parsed the way BuildKit parses it."),
        Rule("PA001", "hardcoded-arch", "Architecture hard-coded in a download, path, image tag "
             "or setting of a stage built for other architectures."),
        Rule("PA002", "fixed-from-platform", "FROM --platform pins a stage to one platform that "
             "other targets build too."),
        Rule("PA003", "emulated-build", "Compile or install work that runs under emulation and "
             "could run natively."),
        Rule("PA004", "undeclared-platform-arg", "Platform ARG used in a stage without being "
             "declared in that stage or a stage it is built FROM."),
        Rule("PA005", "base-missing-platform", "Base image does not provide every target "
             "platform."),
        Rule("PA006", "base-not-checked", "Base image platforms could not be looked up."),
        Rule("PA007", "build-platform-detection", "Architecture detected at build time in a "
             "$BUILDPLATFORM stage reports the build machine."),
        Rule("PA008", "build-machine-output", "A stage that runs on the build machine builds "
             "for the build machine, and its output ships in every target's image."),
        Rule("PA009", "platform-arg-default", "A default on an automatic platform ARG overrides "
             "the value the builder sets."),
        Rule("PA010", "unused-stage-output", "A stage the target never builds produces files "
             "that a built stage copies from the build context instead."),
    )
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    line: int
    message: str
    hint: str
    path: str = "Dockerfile"
    stage: str | None = None

    @property
    def name(self) -> str:
        return RULES[self.rule].name

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "stage": self.stage,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Text:
    """A piece of Dockerfile text that may span several physical lines.

    ``marks`` maps offsets in ``value`` to 1-based line numbers: each entry is the
    offset where a physical line's contribution starts.
    """

    value: str
    marks: tuple[tuple[int, int], ...]

    def line_at(self, pos: int) -> int:
        line = self.marks[0][1]
        for off, ln in self.marks:
            if off > pos:
                break
            line = ln
        return line

    def tail(self, start: int) -> Text:
        """The text from ``start`` on, line marks kept."""
        marks = [(max(off - start, 0), ln) for off, ln in self.marks if off >= start]
        if not marks or marks[0][0] != 0:
            marks.insert(0, (0, self.line_at(start)))
        return Text(self.value[start:], tuple(marks))


@dataclass(frozen=True)
class Heredoc:
    name: str
    body: Text
    #: ``<<"EOF"`` / ``<<'EOF'``: the builder does not expand variables in the body.
    quoted: bool
    #: ``<<-EOF``: leading tabs are stripped from body lines.
    strip_tabs: bool


@dataclass
class Instruction:
    keyword: str
    line: int
    end_line: int
    #: The instruction's arguments after flags, continuation lines joined.
    args: Text
    #: Flags by lower-case name (the last one wins); ``raw_flags`` keeps them all, in order.
    flags: dict[str, str | None]
    raw_flags: list[str] = field(default_factory=list)
    #: The parsed list for JSON (exec) form, else ``None``.
    json_args: list[str] | None = None
    heredocs: list[Heredoc] = field(default_factory=list)

    def texts(self) -> list[Text]:
        """The arguments and every heredoc body: everything a rule may search."""
        return [self.args, *(h.body for h in self.heredocs)]

    def full_text(self) -> str:
        return "\n".join(t.value for t in self.texts())

    def flag_values(self, name: str) -> list[str]:
        """Every value given to ``--name=`` (``--mount`` may be repeated)."""
        out = []
        for raw in self.raw_flags:
            k, eq, v = raw[2:].partition("=")
            if k.lower() == name and eq:
                out.append(v)
        return out


@dataclass
class ArgDecl:
    name: str
    #: The default as written (quotes kept; expanded with the shell lexer when used).
    default: str | None
    line: int


@dataclass
class Stage:
    index: int
    name: str | None
    image: str
    platform: str | None
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.index}"


@dataclass
class Dockerfile:
    directives: dict[str, str]
    escape: str
    global_args: list[ArgDecl]
    stages: list[Stage]
    #: Structural problems found while parsing: (line, message).
    problems: list[tuple[int, str]]
    #: Every instruction in file order (global ARGs included).
    instructions: list[Instruction] = field(default_factory=list)
    #: Lines of the file (for suppression comments).
    lines: list[str] = field(default_factory=list)

    def stage_named(self, ref: str, before: int | None = None) -> Stage | None:
        """The stage a ``FROM``/``--from`` value names (name or index), if any."""
        limit = len(self.stages) if before is None else before
        if ref.isascii() and ref.isdigit():
            i = int(ref)
            return self.stages[i] if i < limit else None
        low = ref.lower()
        for st in self.stages[:limit]:
            if st.name == low:
                return st
        return None
