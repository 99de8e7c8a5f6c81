"""Sign: between the push by digest and the tag moves, sign the index by digest in every
target repository (``cosign sign``) and attach the verification attestation (``cosign
attest``; unsigned, as an OCI referrer, with ``--attest-verification`` alone).

A failure here moves no tag: the index stays in the registry by digest only, as after a
failed push. Nothing is signed that was not verified: this step runs after
verification passed, and a failed verification never reaches it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch import interrupt
from polyarch.errors import UsageError
from polyarch.pipeline.push import repositories
from polyarch.pipeline.verify import Verified
from polyarch.refs import ImageRef
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.signing.cosign import Access, Signer


@dataclass(frozen=True)
class Signed:
    signer: str | None  # how it was signed, in words; None: not signed
    tlog: bool
    attestation: str | None  # "signed", "unsigned" or None
    repositories: tuple[str, ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        from polyarch.signing.attestation import PREDICATE_TYPE

        return {"signer": self.signer, "tlog": self.tlog, "attestation": self.attestation,
                "predicate_type": PREDICATE_TYPE if self.attestation else None,
                "repositories": list(self.repositories), "seconds": round(self.seconds, 3)}


def signer(s: Session) -> Signer | None:
    """The signer the options ask for, checked before anything is built: cosign on PATH
    (exit 3), a readable private key (exit 2). Not in a dry run, which only prints."""
    o = s.opts
    if not o.sign and o.sign_key is None:
        return None  # (cosign's module is not even loaded)
    from polyarch.signing import cosign

    if o.sign and o.sign_key is not None:
        raise UsageError("--sign (keyless) and --sign-key cannot be used together",
                         hint="keep --sign-key PATH to sign with a key, --sign alone for"
                              " keyless signing in CI")
    sg = cosign.signer_from(o.sign_key, o.sign, o.tlog)
    if sg is not None:
        cosign.register_secrets()
        cosign.check_key(sg)
        if not s.dry_run:
            cosign.check_available()
    return sg


def wanted(s: Session) -> bool:
    return signer(s) is not None or s.opts.attest_verification


def access(s: Session, registry: str) -> Access:
    """How cosign reaches ``registry``: as polyarch's own client does."""
    from polyarch.registry.trust import host_trust
    from polyarch.signing.cosign import Access

    plain = s.client.plain_http(registry)
    cas = () if plain else host_trust(registry).cas
    return Access(plain_http=plain, cacert=cas[0] if cas else None,
                  docker_config=s.docker_config)


def dry_run_commands(s: Session, sg: Signer | None,
                     targets: Sequence[ImageRef]) -> list[list[str]]:
    """The cosign commands a publish would run (the digest is not known yet)."""
    from polyarch.signing import cosign

    out: list[list[str]] = []
    for repo in repositories(targets):
        ref = f"{repo}@sha256:<index digest>"
        # Without asking the registry: plain HTTP where polyarch would try it (loopback,
        # --insecure-registry).
        acc = cosign.Access(plain_http=s.client.transport.may_use_http(repo.registry))
        if sg is not None:
            out.append(cosign.sign_argv(sg, ref, acc))
            if s.opts.verify:
                out.append(cosign.attest_argv(sg, ref, Path("<verification predicate>"), acc))
    return out


def sign(s: Session, sg: Signer | None, digest: str, media_type: str, size: int,
         targets: Sequence[ImageRef], verified: Verified) -> Signed:
    """Sign (and attest) the index ``digest`` in every target repository."""
    from polyarch.signing import attestation, cosign

    repos = repositories(targets)
    t0 = time.monotonic()
    interrupt.set_phase("signing by digest: no tag was moved")
    report = verified.report
    pred = attestation.predicate(report, s.opts.allow) if report is not None else None
    what = "sign" if sg is not None else "attest"
    with s.rep.group(f"{what} {digest[:19]} in {', '.join(r.name for r in repos)}"):
        if sg is not None:
            s.rep.info(f"signing with {sg.describe()}")
        if pred is None:
            s.rep.warn("no verification attestation: verification was skipped (--no-verify)")
        with tempfile.TemporaryDirectory(prefix="polyarch-sign-") as tmp:
            pred_file = Path(tmp) / "verification.json"
            if pred is not None:
                pred_file.write_text(json.dumps(pred, sort_keys=True))
            jobs: list[tuple[list[str], Access, str]] = []
            for repo in repos:
                ref = f"{repo}@{digest}"
                acc = access(s, repo.registry)
                if sg is not None:
                    jobs.append((cosign.sign_argv(sg, ref, acc), acc, f"signing {ref}"))
                    if pred is not None:
                        jobs.append((cosign.attest_argv(sg, ref, pred_file, acc), acc,
                                     f"attesting {ref}"))
                elif pred is not None:
                    art = attestation.artifact(attestation.statement(pred, repo.name),
                                               digest, media_type, size)
                    attestation.push_unsigned(s.client, repo, art)
                    s.rep.info(f"verification attestation {art.digest[:19]} (unsigned)")
            _run_all(jobs)
    kind = None if pred is None else ("signed" if sg is not None else "unsigned")
    return Signed(sg.describe() if sg is not None else None, bool(sg and sg.tlog), kind,
                  tuple(r.name for r in repos), time.monotonic() - t0)


def _run_all(jobs: Sequence[tuple[list[str], Access, str]]) -> None:
    """Run the cosign commands side by side: each decrypts the key first (scrypt, most
    of its time), and the signature and the attestation go to different tags. The first
    failure is raised once all have ended; no tag has moved either way."""
    from concurrent.futures import ThreadPoolExecutor

    from polyarch.signing import cosign

    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        futures = [pool.submit(cosign.run, argv, acc, doing=doing) for argv, acc, doing in jobs]
    for f in futures:
        f.result()
