"""build, seal and lock: the builder's commands, from a manifest to a signed archive (plan → pull → stage →
delta → sign → emit)."""

import json
import os
from typing import Any, Dict, Optional, Sequence

from installer.errors import TrustError, UsageError
from installer.trust.signing import verify as verify_sig
from installer.format.sums import META_NAME, SUMS_NAME
from installer.format.meta import parse_meta


from bundler.seal.keys import Signer, load_signer
from bundler.plan.manifest import load_manifest
from bundler.delta import load_delta_base, make_delta
from bundler.emit.archive import STAGED_PLAN, emit, make_out_dir, write_staged
from bundler.stage.stage import PlannedMember, SourceOptions, Staged, stage


def build(manifest_path: str, key_path: str, out_dir: str = ".", signer: Optional[Signer] = None,
          opts: Optional[SourceOptions] = None, split_size: int = 0, unsigned: bool = False,
          delta_from: Optional[str] = None) -> Dict[str, Any]:
    manifest = load_manifest(manifest_path)
    # The key is loaded (and its passphrase checked) before anything is pulled; --unsigned needs none.
    signing = None if unsigned else (signer or load_signer(key_path))
    base = load_delta_base(delta_from) if delta_from else None
    staged = stage(manifest, opts)
    if base is not None:
        staged = make_delta(staged, *base)
    make_out_dir(out_dir)
    if signing is None:
        return write_staged(staged, out_dir, split_size)
    return emit(staged, signing.sign(staged.sums), out_dir, split_size, signing.public.fingerprint)


def seal(staged_dir: str, sig_path: str, trust: Sequence[str] = ()) -> Dict[str, Any]:
    """Write the archive beside STAGED from a signature made elsewhere; check it with --trust when given."""
    from installer.format.sums import MAX_SIG_BYTES
    from installer.trust.signing import canonical_signature
    from installer.trust.store import load_trust_paths

    for path in (staged_dir, sig_path):
        if not os.path.exists(path):
            raise UsageError("%s does not exist" % path)
    with open(os.path.join(staged_dir, STAGED_PLAN), "rb") as fh:
        plan = json.loads(fh.read())
    with open(os.path.join(staged_dir, SUMS_NAME), "rb") as fh:
        sums = fh.read()
    with open(os.path.join(staged_dir, META_NAME), "rb") as fh:
        meta_bytes = fh.read()
    with open(sig_path, "rb") as fh:
        signature = fh.read(MAX_SIG_BYTES + 1)
    if len(signature) > MAX_SIG_BYTES:
        raise TrustError("%s is larger than a signature can be (1 KiB)" % sig_path)
    signer_fp = None
    if trust:
        keys = load_trust_paths(trust)
        good = [k for k in keys
                if canonical_signature(k.key.algorithm, signature) and verify_sig(k.key, sums, signature)]
        if not good:
            raise TrustError("%s is not a valid signature of %s by any of the given keys"
                             % (sig_path, os.path.join(staged_dir, SUMS_NAME)))
        signer_fp = good[0].fingerprint
    members = []
    for m in plan["members"]:
        source = os.path.join(staged_dir, "inline", m["inline"]) if "inline" in m else m["source"]
        members.append(PlannedMember(m["path"], source, m["size"], m["sha256"], m["executable"]))
    # bundle.json through the installer's strict parser: what comes back from the signer is checked before use
    staged = Staged(_Named(plan["name"], plan["version"]), plan["epoch"], parse_meta(meta_bytes), meta_bytes, sums,
                    members)
    out_dir = os.path.dirname(os.path.abspath(staged_dir))
    return emit(staged, signature, out_dir, plan.get("split_size", 0), signer_fp)


class _Named:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
