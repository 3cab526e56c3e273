"""``signed-by: KEY.pub`` on an image: its upstream cosign signature is checked before anything is bundled.

What ``cosign verify --key KEY.pub REF`` checks for a key-based signature, done here offline from what the
referrer finder fetched: a signature manifest that refers to the digest REF resolved to, one of whose
simple-signing payloads names that digest and verifies with the key (installer/trust/cosign.py). No valid
signature: the build stops (exit 4, naming the image and the key). The check is recorded in bundle.json
(``signatures``: the key's fingerprint and PEM, the digest, the signature manifest carried), so ``verify`` can
check it again from the archive alone.
"""

import os
from typing import Callable, List, Sequence, Tuple

from installer.errors import TrustError
from installer.format.model import UpstreamSignature
from installer.trust.cosign import CosignCheck, check_signature_manifest
from installer.trust.signing import load_public_key

from bundler.pull.referrers import Found


def check_signed_by(key_path: str, found: Sequence[Found], digest: str, kept: Sequence[str], where: str,
                    read_blob: Callable[[str, int], bytes], keep_all: bool) -> Tuple[List[UpstreamSignature],
                                                                                    List[Found]]:
    """(the signatures that verified, the referrers to carry). ``digest`` is what the reference resolved to
    upstream; ``kept`` the manifests the bundle keeps (a referrer of anything else cannot be carried);
    ``keep_all`` False (``referrers: false``) carries only the signature that verified."""
    key = load_public_key(key_path)
    checked = 0
    good: List[Tuple[Found, CosignCheck]] = []
    for item in found:
        r = item.referrer
        if r.kind != "signature" or r.subject != digest:
            continue
        checked += 1
        # check_signature_manifest reads no payload above MAX_PAYLOAD_BYTES (its descriptor says so first)
        check = check_signature_manifest(key, item.data, r.media_type, digest, read_blob,
                                         "%s: the signature %s" % (where, r.digest))
        if check is not None:
            good.append((item, check))
    if not good:
        looked = ("%d signature%s looked at" % (checked, "" if checked == 1 else "s")) if checked else \
            "no cosign signature found (tag sha256-%s.sig, referrers)" % digest[len("sha256:"):][:12]
        raise TrustError("%s: no valid signature of %s by the key %s (%s, %s); refused"
                         % (where, digest, os.path.basename(key_path), key.fingerprint, looked))
    signatures = []
    for item, check in good:
        carried = item.referrer.subject in kept
        signatures.append(UpstreamSignature(key.fingerprint, key.algorithm, key.pem().decode("ascii"), digest,
                                            item.referrer.digest if carried else None,
                                            os.path.basename(key_path), check.identity,
                                            check.layer if carried else None))
    subjects = set(kept)
    verified = {item.referrer.digest for item, _ in good}
    carry = [f for f in found if f.referrer.subject in subjects and (keep_all or f.referrer.digest in verified)]
    return signatures, carry
