"""build, seal and lock: the builder's commands, from a manifest to a signed archive (plan → pull → stage →
delta → sign → emit)."""

import hashlib
import json
import os
from typing import Any, Dict, Optional, Sequence

from installer.errors import ContentMismatch, TrustError, UsageError
from installer.format.model import BundleHead
from installer.trust.signing import verify as verify_sig
from installer.format.sums import META_NAME, SUMS_NAME
from installer.format.meta import parse_meta


from bundler.seal.keys import Signer, load_signer
from bundler.plan.manifest import load_manifest
from bundler.delta import load_delta_base, make_delta
from bundler.emit.archive import PAE_NAME, STAGED_PLAN, STEP_PROVENANCE, STEP_SUMS, emit, make_out_dir, write_staged
from bundler.stage.provenance import envelope_bytes, pae_bytes
from bundler.stage.stage import PlannedMember, SourceOptions, Staged, stage


def build(manifest_path: str, key_path: str, out_dir: str = ".", signer: Optional[Signer] = None,
          opts: Optional[SourceOptions] = None, split_size: int = 0, unsigned: bool = False,
          delta_from: Optional[str] = None) -> Dict[str, Any]:
    manifest = load_manifest(manifest_path)
    # The key is loaded (and its passphrase checked) before anything is pulled; --unsigned needs none.
    signing = None if unsigned else (signer or load_signer(key_path))
    base = load_delta_base(delta_from) if delta_from else None
    staged = stage(manifest, opts)
    make_out_dir(out_dir)
    if signing is None:
        return write_staged(staged, out_dir, split_size)
    # The provenance envelope is signed first: SHA256SUMS lists it, and bundle.json its size.
    fingerprint = signing.public.fingerprint
    staged.add_provenance(envelope_bytes(staged.statement, [(fingerprint, signing.sign(pae_bytes(staged.statement)))]))
    if base is not None:
        staged = make_delta(staged, *base)
    return emit(staged, signing.sign(staged.sums), out_dir, split_size, fingerprint)


def seal(staged_dir: str, sig_path: str, trust: Sequence[str] = ()) -> Dict[str, Any]:
    """Finish a staged build with a signature made elsewhere, in the two steps staged.json records:

    1. ``provenance``: the signature of provenance.pae (the provenance statement's DSSE pre-authentication
       encoding) makes the envelope; SHA256SUMS and bundle.json are written with it, to be signed next;
    2. ``sums``: the signature of SHA256SUMS makes the archive beside STAGED.

    With --trust the signature is checked before anything is written; without it, `install` judges it."""
    from installer.format.sums import MAX_SIG_BYTES
    from installer.trust.signing import canonical_signature
    from installer.trust.store import load_trust_paths

    for path in (staged_dir, sig_path):
        if not os.path.exists(path):
            raise UsageError("%s does not exist" % path)
    plan = _read_json(os.path.join(staged_dir, STAGED_PLAN))
    step = plan.get("step", STEP_SUMS)
    signed_path = os.path.join(staged_dir, PAE_NAME if step == STEP_PROVENANCE else SUMS_NAME)
    with open(signed_path, "rb") as fh:
        signed = fh.read()
    with open(sig_path, "rb") as fh:
        signature = fh.read(MAX_SIG_BYTES + 1)
    if len(signature) > MAX_SIG_BYTES:
        raise TrustError("%s is larger than a signature can be (1 KiB)" % sig_path)
    signer_fp = None
    if trust:
        keys = load_trust_paths(trust)
        good = [k for k in keys
                if canonical_signature(k.key.algorithm, signature) and verify_sig(k.key, signed, signature)]
        if not good:
            raise TrustError("%s is not a valid signature of %s by any of the given keys" % (sig_path, signed_path))
        signer_fp = good[0].fingerprint
    members = []
    for m in plan["members"]:
        if "inline" in m and step == STEP_PROVENANCE:  # generated members: kept as bytes, the folder is rewritten
            with open(os.path.join(staged_dir, "inline", m["inline"]), "rb") as fh:
                data = fh.read(m["size"] + 1)
            if hashlib.sha256(data).hexdigest() != m["sha256"]:
                raise ContentMismatch("the staged %s changed since the build; build --unsigned again" % m["path"])
            members.append(PlannedMember(m["path"], "", len(data), m["sha256"], m["executable"], data))
            continue
        source = os.path.join(staged_dir, "inline", m["inline"]) if "inline" in m else m["source"]
        members.append(PlannedMember(m["path"], source, m["size"], m["sha256"], m["executable"]))
    named = _Named(plan["name"], plan["version"])
    if step == STEP_PROVENANCE:
        staged = Staged(named, plan["epoch"], BundleHead.from_dict(plan["head"]), b"", b"", members)
        with open(os.path.join(staged_dir, "inline", plan["statement"]), "rb") as fh:
            staged.statement = fh.read()
        if hashlib.sha256(staged.statement).hexdigest() != plan["statement"] or pae_bytes(staged.statement) != signed:
            raise ContentMismatch("%s does not match the staged provenance statement; build --unsigned again"
                                  % signed_path)
        staged.add_provenance(envelope_bytes(staged.statement, [(signer_fp or "", signature)]))
        return write_staged(staged, os.path.dirname(os.path.abspath(staged_dir)), plan.get("split_size", 0))
    with open(os.path.join(staged_dir, META_NAME), "rb") as fh:
        meta_bytes = fh.read()
    # bundle.json through the installer's strict parser: what comes back from the signer is checked before use
    staged = Staged(named, plan["epoch"], parse_meta(meta_bytes), meta_bytes, signed, members)
    out_dir = os.path.dirname(os.path.abspath(staged_dir))
    return emit(staged, signature, out_dir, plan.get("split_size", 0), signer_fp)


def _read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(64 << 20))
    except (OSError, ValueError) as exc:
        raise UsageError("%s is not a staged plan (%s)" % (path, exc)) from exc
    if not isinstance(doc, dict):
        raise UsageError("%s is not a staged plan" % path)
    return doc


class _Named:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
