"""The ``cosign`` command lines polyarch runs, and running them.

polyarch never makes a signature itself: ``cosign sign`` and ``cosign attest`` write
their signature and attestation manifests next to the image (the ``sha256-HEX.sig`` and
``sha256-HEX.att`` tags of its repository), and ``cosign verify`` /
``cosign verify-attestation`` check them. Every call goes through :func:`proc.run` with
a deadline; what cosign needs to reach the registry comes from polyarch's own view of
it: credentials through ``DOCKER_CONFIG``, ``--allow-http-registry`` for a registry
spoken to over plain HTTP, ``--registry-cacert`` for a private CA of ``certs.d``.

A key's password is read by cosign itself from ``COSIGN_PASSWORD`` (polyarch never
puts it on a command line); it is registered with the redactor so that no output
shows it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch import redact
from polyarch.errors import EnvironmentProblem, FatalError, RegistryError
from polyarch.signing.attestation import PREDICATE_TYPE

if TYPE_CHECKING:  # (run() imports it: `inspect` reads signatures without running cosign)
    from polyarch import proc

#: Seconds one cosign call may take (it talks to the registry, and keyless to Fulcio
#: and the transparency log).
TIMEOUT = 120.0


@dataclass(frozen=True)
class Signer:
    """How to sign: with a cosign private key, or keyless (``key is None``)."""

    key: Path | None
    tlog: bool

    @property
    def keyless(self) -> bool:
        return self.key is None

    def describe(self) -> str:
        who = f"key {self.key}" if self.key is not None else "keyless (OIDC identity)"
        log = ("uploaded to the transparency log" if self.tlog else
               "transparency log: not uploaded (--tlog to upload)")
        return f"{who}; {log}"


def signer_from(sign_key: str | None, keyless: bool, tlog: bool | None) -> Signer | None:
    """The signer the options ask for (``None``: no signing). Keyless signing uploads to
    the transparency log unless ``--no-tlog`` (its short-lived certificate is checked
    against the log); a key's signature does not unless ``--tlog``."""
    if sign_key is None and not keyless:
        return None
    if sign_key is not None:
        return Signer(Path(sign_key), bool(tlog))
    return Signer(None, True if tlog is None else tlog)


@dataclass(frozen=True)
class Access:
    """How cosign reaches one registry."""

    plain_http: bool = False
    cacert: Path | None = None
    docker_config: Path | None = None

    def flags(self) -> list[str]:
        out: list[str] = []
        if self.plain_http:
            out.append("--allow-http-registry")
        if self.cacert is not None:
            out.append(f"--registry-cacert={self.cacert}")
        return out

    def env(self) -> dict[str, str]:
        env = {"COSIGN_YES": "true"}
        if self.docker_config is not None:
            env["DOCKER_CONFIG"] = str(self.docker_config)
        return env


def _tlog_flag(tlog: bool) -> str:
    return f"--tlog-upload={'true' if tlog else 'false'}"


def sign_argv(signer: Signer, ref: str, access: Access) -> list[str]:
    """``ref`` is ``REPO@sha256:...``: cosign signs a digest, never a tag."""
    argv = ["cosign", "sign", "--yes"]
    if signer.key is not None:
        argv.append(f"--key={signer.key}")
    argv.append(_tlog_flag(signer.tlog))
    return [*argv, *access.flags(), ref]


def attest_argv(signer: Signer, ref: str, predicate: Path, access: Access) -> list[str]:
    argv = ["cosign", "attest", "--yes", f"--type={PREDICATE_TYPE}",
            f"--predicate={predicate}"]
    if signer.key is not None:
        argv.append(f"--key={signer.key}")
    argv.append(_tlog_flag(signer.tlog))
    return [*argv, *access.flags(), ref]


@dataclass(frozen=True)
class Requirement:
    """What a consumer requires of a signature: a public key, or a keyless identity."""

    key: Path | None = None
    identity: str | None = None
    issuer: str | None = None
    tlog: bool = False

    def describe(self) -> str:
        if self.key is not None:
            return f"key {self.key}"
        return f"{self.identity} (issuer {self.issuer})"

    def flags(self) -> list[str]:
        if self.key is not None:
            out = [f"--key={self.key}"]
        else:
            out = [f"--certificate-identity={self.identity}",
                   f"--certificate-oidc-issuer={self.issuer}"]
        if not self.tlog:
            out.append("--insecure-ignore-tlog=true")
        return out


def requirement_from(require: str | None, identity: str | None, issuer: str | None,
                     tlog: bool | None) -> Requirement | None:
    """``--require-signature KEY|keyless`` and its keyless identity; bad combinations are
    usage errors (exit 2)."""
    from polyarch.errors import UsageError

    if require is None:
        if identity or issuer:
            raise UsageError("--certificate-identity/--certificate-oidc-issuer need"
                             " --require-signature keyless")
        return None
    if require == "keyless":
        if not identity or not issuer:
            raise UsageError("--require-signature keyless needs --certificate-identity and"
                             " --certificate-oidc-issuer",
                             hint="name the workflow that signs and its OIDC issuer")
        return Requirement(None, identity, issuer, True if tlog is None else tlog)
    if identity or issuer:
        raise UsageError("--certificate-identity/--certificate-oidc-issuer are for"
                         " --require-signature keyless, not a key")
    key = Path(require)
    if not key.is_file():
        raise UsageError(f"--require-signature {require}: no such file",
                         hint="give the cosign public key (cosign.pub) or 'keyless'")
    return Requirement(key, tlog=bool(tlog))


def verify_argv(req: Requirement, ref: str, access: Access) -> list[str]:
    return ["cosign", "verify", *req.flags(), *access.flags(), "--output=json", ref]


def verify_attestation_argv(req: Requirement, ref: str, access: Access) -> list[str]:
    return ["cosign", "verify-attestation", f"--type={PREDICATE_TYPE}", *req.flags(),
            *access.flags(), "--output=json", ref]


def check_available() -> None:
    """Exit 3 before anything is built when cosign is not installed."""
    if shutil.which("cosign") is None:
        raise EnvironmentProblem(
            "signing needs cosign, which is not on PATH",
            hint="install it (Debian 13: apt-get install cosign; or"
                 " https://docs.sigstore.dev/cosign/system_config/installation/)")


def check_key(signer: Signer) -> None:
    """A key file that cannot be read is a usage error (exit 2), before the build."""
    from polyarch.errors import UsageError

    if signer.key is None:
        return
    try:
        head = signer.key.read_bytes()[:4096]
    except OSError as e:
        raise UsageError(f"--sign-key {signer.key}: cannot read it ({e.strerror})",
                         hint="give the private key cosign generate-key-pair wrote") from None
    if b"PRIVATE KEY" not in head:
        raise UsageError(f"--sign-key {signer.key} is not a private key",
                         hint="give cosign.key (not cosign.pub)")


def register_secrets(env: Mapping[str, str] | None = None) -> None:
    """The key's password never appears in what polyarch prints."""
    env = os.environ if env is None else env
    pw = env.get("COSIGN_PASSWORD")
    if pw:
        redact.REDACTOR.add(pw)


#: Words of cosign's error that say the signer, not the registry, is at fault.
_SIGNER_TROUBLE = ("decrypt", "password", "private key", "reading key", "load key",
                   "oidc", "identity token", "fulcio", "getting signer", "rekor", "tlog")


def run(argv: Sequence[str], access: Access, *, doing: str,
        failure: type[FatalError] | None = None) -> proc.Result:
    """Run one cosign command. A failure is ``failure`` when given; otherwise exit 3
    (environment: the key, its password, the OIDC identity, the transparency log) or 4
    (registry), with cosign's own last error line. A deadline passed is exit 3."""
    from polyarch import proc

    return proc.run(argv, env=access.env(), timeout=TIMEOUT,
                    error=lambda res: _failed(res, doing, failure))


def _failed(res: proc.Result, doing: str, failure: type[FatalError] | None) -> FatalError:
    tail = _last_error(res.stderr or res.stdout)
    if failure is None:
        low = tail.lower()
        failure = (EnvironmentProblem if any(w in low for w in _SIGNER_TROUBLE)
                   else RegistryError)
    hint = None
    if "decrypt" in tail.lower():
        hint = ("set COSIGN_PASSWORD to the key's password" if "COSIGN_PASSWORD" not in
                os.environ else "COSIGN_PASSWORD is not this key's password")
    return failure(f"{doing} failed: cosign: {tail}", hint=hint)


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in redact.text(text).splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.lower().startswith("error")]
    line = (errs or lines or ["no output"])[-1]
    return line[:500]

