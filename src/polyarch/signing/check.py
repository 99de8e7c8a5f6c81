"""The consumer side: is the index a reference names signed, and does the verification
attestation attached to it name that very index?

``cosign verify`` / ``cosign verify-attestation`` check a signature against a public
key or a keyless identity; polyarch asks them about the index by digest (the digest the
tag names now, so a tag moved by hand to another index fails), and reads the statement
they print to check its subject and predicate. Without a required signature, an
unsigned attestation (an OCI referrer of the index) is looked up with polyarch's own
registry client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyarch.errors import VerificationError
from polyarch.signing import attestation

if TYPE_CHECKING:
    from polyarch.refs import ImageRef
    from polyarch.registry import RegistryClient
    from polyarch.signing.cosign import Access, Requirement


@dataclass(frozen=True)
class Checked:
    signature: str | None  # who signed, in words; None: not asked
    attestation: dict[str, Any] | None  # the predicate found; None: not asked

    def to_json(self) -> dict[str, Any]:
        return {"signed_by": self.signature,
                "attestation": self.attestation}


def _subject_names(stmt: dict[str, Any], digest: str) -> bool:
    want = digest.removeprefix("sha256:")
    return any(isinstance(s, dict) and (s.get("digest") or {}).get("sha256") == want
               for s in stmt.get("subject") or [])


def check(client: RegistryClient, repo: ImageRef, digest: str, access: Access,
          req: Requirement | None, need_attestation: bool) -> Checked:
    """Exit 5 (:class:`VerificationError`) when a required signature or attestation is
    missing or is not about ``digest``."""
    from polyarch.signing import cosign

    ref = f"{repo.untagged()}@{digest}"
    signed_by = None
    if req is not None:
        res = cosign.run(cosign.verify_argv(req, ref, access), access,
                         doing=f"checking the signature of {ref}",
                         failure=VerificationError)
        if digest not in res.stdout:
            raise VerificationError(f"{ref}: cosign verified no signature of this index")
        signed_by = req.describe()
    pred = None
    if need_attestation:
        if req is not None:
            res = cosign.run(cosign.verify_attestation_argv(req, ref, access), access,
                             doing=f"checking the verification attestation of {ref}",
                             failure=VerificationError)
            stmts = attestation.from_cosign_output(res.stdout)
        else:  # read, not checked: without a key or identity there is nothing to check
            stmts = _read_statements(client, repo, digest)
        stmts = [s for s in stmts if _subject_names(s, digest)
                 and (s.get("predicate") or {}).get("index", {}).get("digest") == digest]
        if not stmts:
            raise VerificationError(
                f"{ref}: no verification attestation ({attestation.PREDICATE_TYPE}) names this"
                " index", hint="publish it with --sign-key/--sign or --attest-verification")
        pred = stmts[-1]["predicate"]
        if pred.get("result") != "pass":
            raise VerificationError(f"{ref}: its verification attestation says it failed")
    return Checked(signed_by, pred)


def _read_statements(client: RegistryClient, repo: ImageRef,
                     digest: str) -> list[dict[str, Any]]:
    from polyarch.errors import RegistryError

    try:
        signed = cosign_statements(client, repo, digest)
    except (ValueError, KeyError, TypeError, AttributeError):
        signed = []
    except RegistryError:
        raise
    return signed + attestation.find_unsigned(client, repo.untagged(), digest)


def describe(pred: dict[str, Any]) -> str:
    """``verified by polyarch 0.1.0 on 2026-12-06T16:00:00Z (linux/amd64, linux/arm64)``."""
    v = pred.get("verifier") or {}
    plats = ", ".join(str(p.get("platform")) for p in pred.get("platforms") or [])
    return (f"verified by {v.get('name', '?')} {v.get('version', '?')} on"
            f" {pred.get('verifiedAt', '?')} ({plats})")


#: cosign's annotation holding a keyless signer's certificate.
_CERT = "dev.sigstore.cosign/certificate"
_MAX = 4 << 20


def cosign_statements(client: RegistryClient, repo: ImageRef,
                      digest: str) -> list[dict[str, Any]]:
    """The verification statements in cosign's attestation tag of ``digest``
    (``sha256-HEX.att``), read without checking their signatures."""
    import base64
    import json

    repo = repo.untagged()
    tag = repo.with_tag(digest.replace(":", "-") + ".att")
    stmts: list[dict[str, Any]] = []
    if client.head_manifest(tag) is None:
        return stmts
    m = json.loads(client.get_manifest(tag).data)
    for d in (m.get("layers") or [])[-20:]:  # bounded: the newest twenty
        if int(d.get("size", 0)) > _MAX:
            continue
        env = json.loads(client.get_blob(repo, str(d["digest"])))
        stmt = json.loads(base64.b64decode(env["payload"]))
        if isinstance(stmt, dict) and stmt.get("predicateType") == attestation.PREDICATE_TYPE:
            stmts.append(stmt)
    return stmts


def discover(client: RegistryClient, repo: ImageRef, digest: str) -> dict[str, Any]:
    """What ``inspect`` shows, read without checking any signature: whether cosign's
    signature tag exists for ``digest`` (a key or a keyless certificate) and the newest
    verification predicate attached (by ``cosign attest``, or unsigned)."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from polyarch.errors import RegistryError

    repo = repo.untagged()
    out: dict[str, Any] = {"signed": None, "verification": None}
    base = digest.replace(":", "-")

    def signed() -> str | None:
        if client.head_manifest(repo.with_tag(base + ".sig")) is None:
            return None
        m = json.loads(client.get_manifest(repo.with_tag(base + ".sig")).data)
        layers = m.get("layers") or []
        keyless = any(_CERT in (d.get("annotations") or {}) for d in layers)
        return (f"cosign ({'keyless certificate' if keyless else 'key'},"
                f" {len(layers)} signature{'s' if len(layers) != 1 else ''})")

    try:
        # Three tags looked up side by side: each look-up is a round trip.
        with ThreadPoolExecutor(max_workers=3) as pool:
            sig = pool.submit(signed)
            att = pool.submit(cosign_statements, client, repo, digest)
            unsigned = pool.submit(attestation.find_unsigned, client, repo, digest)
            out["signed"] = sig.result()
            stmts = att.result() + unsigned.result()
        stmts = [s for s in stmts if _subject_names(s, digest)]
        if stmts:
            out["verification"] = stmts[-1]["predicate"]
    except RegistryError as e:
        out["error"] = e.message  # shown instead of "not signed"
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        out["error"] = f"malformed signature or attestation: {type(e).__name__}"
    return out
