"""Typed errors. Each class carries the process exit code the CLI maps it to.

Only :mod:`polyarch.cli` turns an error into an exit code; everything else raises.
"""

from __future__ import annotations


class FatalError(Exception):
    """An error that ends the command with a one-line message and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: Longer text (for example a build's own error output) shown below the line.
        self.detail = detail

    def line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BuildError(FatalError):
    """The build itself failed (a RUN step, a COPY of a missing file, ...)."""

    exit_code = 1


class UsageError(FatalError):
    """Bad arguments, bad references, bad platforms, bad configuration."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or environment variable is wrong."""


class EnvironmentProblem(FatalError):
    """The machine cannot do the job: no engine, no buildx, no emulator."""

    exit_code = 3


class RegistryError(FatalError):
    """The registry is unreachable, refuses credentials, or misbehaves."""

    exit_code = 4
    #: The HTTP status of the last answer, when the registry kept answering with a
    #: server error (5xx) until the retries ran out; else None.
    server_error: int | None = None


class TagsSplit(RegistryError):
    """Every tag was written, but a concurrent publish left them on different images."""

    exit_code = 7


class VerificationError(FatalError):
    """A published or staged image failed verification."""

    exit_code = 5


class ResultNotWritten(FatalError):
    """The run did its work (tags moved, an image pushed) but could not hand over its
    result: a file it writes at the end (--output-file, CI outputs) or the --json
    document on a closed stdout. The message says what was done and what failed."""

    exit_code = 6


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "build failed",
    2: "usage or configuration error",
    3: "environment problem (engine, buildx, emulation missing; a command past its deadline)",
    4: "registry problem (unreachable, authentication, refused)",
    5: "verification failed",
    6: "published (the tags moved), but a result could not be written: --output-file,"
       " the CI outputs or the --json document (the line names which)",
    7: "tags moved, but a concurrent publish left them on different images",
    70: "internal error (a bug; POLYARCH_DEBUG=1 shows the traceback)",
    129: "hung up (SIGHUP: the terminal or ssh session closed)",
    130: "interrupted (Ctrl-C)",
    143: "terminated (SIGTERM)",
}
"""The documented exit codes (``polyarch --help`` lists them). Bad input ends in 0, 2, 4
or 5 (property-tested); 70 is left for bugs."""
