"""The provenance statement a build writes (issue 14 point 2): an in-toto Statement v1 with a SLSA Provenance v1
predicate, in a DSSE envelope signed with the bundle key. installer/trust/provenance.py says what it holds and
checks it; this module only writes it.

The statement is canonical JSON (sorted keys, no spaces) and depends on nothing but the build's inputs and
output: no clock (times are the build time, SOURCE_DATE_EPOCH), no host name, no absolute path (the manifest is
named by its file name and sha256). Ed25519 and the bundler's ECDSA (RFC 6979) are deterministic, so two builds
of the same inputs write the same envelope bytes.
"""

import os
from typing import Any, Dict, List, Sequence, Tuple

from installer import TOOL_NAME, __version__
from installer.format.meta import canonical_json
from installer.format.model import BundleHead
from installer.trust import dsse
from installer.trust.provenance import (BUILD_TYPE, BUILDER_ID, PROVENANCE_PATH, SLSA_PROVENANCE, STATEMENT_TYPE,
                                        expected_subjects)

BUILDER_ENV = "OFFLINE_BUNDLE_BUILDER_ID"


def builder_id() -> str:
    """The builder's id: OFFLINE_BUNDLE_BUILDER_ID (a CI system names itself there), else BUILDER_ID."""
    named = os.environ.get(BUILDER_ENV, "").strip()
    return named or BUILDER_ID


def _subjects(sums_entries: Dict[str, str], head: BundleHead) -> List[Dict[str, Any]]:
    """Members by path, then image manifests by reference (media type and platform said)."""
    kinds: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for image in head.images:
        kinds[(image.ref, image.digest.split(":", 1)[1])] = {"mediaType": image.media_type}
        for m in image.manifests:
            kinds[(image.ref, m.digest.split(":", 1)[1])] = {"mediaType": m.media_type,
                                                              "annotations": {"platform": m.platform}}
    out = []
    for name, digest in sorted(expected_subjects(sums_entries, head)):
        subject: Dict[str, Any] = {"name": name, "digest": {"sha256": digest}}
        subject.update(kinds.get((name, digest), {}))
        out.append(subject)
    return out


def _dependencies(head: BundleHead) -> List[Dict[str, Any]]:
    """What the build resolved, by digest: images (the index or manifest it fetched), charts, manifest files."""
    deps: List[Dict[str, Any]] = []
    for image in head.images:
        index = image.index_digest if isinstance(image.index_digest, str) and ":" in image.index_digest \
            else image.digest
        dep: Dict[str, Any] = {"uri": "oci://" + image.ref, "digest": {"sha256": index.split(":", 1)[1]},
                               "annotations": {"source": image.source}}
        if isinstance(image.fetched_from, str):
            dep["annotations"]["fetched_from"] = image.fetched_from
        deps.append(dep)
    for chart in head.charts:
        dep = {"name": "%s-%s.tgz" % (chart.name, chart.version), "digest": {"sha256": chart.sha256}}
        if isinstance(chart.origin, str):
            dep["uri"] = chart.origin
        deps.append(dep)
    for f in head.files:
        dep = {"name": f.target, "digest": {"sha256": f.sha256}}
        if isinstance(f.source, str):
            dep["uri"] = "file:" + f.source
        deps.append(dep)
    for t in head.tenants:
        if isinstance(t.sha256, str):
            deps.append({"name": t.path, "digest": {"sha256": t.sha256},
                         **({"uri": "file:" + t.source} if isinstance(t.source, str) else {})})
    return deps


def statement(sums_entries: Dict[str, str], head: BundleHead, manifest_name: str, manifest_sha256: str,
              options: Dict[str, Any]) -> bytes:
    """The statement's canonical JSON bytes. ``sums_entries`` is every member but the envelope (bundle.json is
    left out of the subjects in any case); ``head`` is bundle.json's model, images and charts resolved."""
    lock = head.lock if isinstance(head.lock, dict) else {"status": "none"}
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": _subjects(sums_entries, head),
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "bundle": {"name": head.name, "version": head.version},
                    "manifest": {"name": manifest_name, "sha256": manifest_sha256},
                    "lock": {k: lock[k] for k in ("status", "sha256") if k in lock},
                    "mirrors": [{"source": m.get("source"), "mirror": m.get("mirror")}
                                for m in head.mirrors if isinstance(m, dict)],
                    "options": options,
                },
                "internalParameters": {"tool": {"name": TOOL_NAME, "version": __version__}},
                "resolvedDependencies": _dependencies(head),
            },
            "runDetails": {
                "builder": {"id": builder_id(), "version": {TOOL_NAME: __version__}},
                "metadata": {"invocationId": "%s-%s" % (head.name, head.version),
                             "startedOn": head.created, "finishedOn": head.created},
            },
        },
    }
    return canonical_json(doc)


def pae_bytes(payload: bytes) -> bytes:
    """The bytes the bundle key signs for the envelope (what `build --unsigned` hands the signer)."""
    return dsse.pae(dsse.IN_TOTO, payload)


def envelope_bytes(payload: bytes, signatures: Sequence[Tuple[str, bytes]]) -> bytes:
    return dsse.envelope(dsse.IN_TOTO, payload, signatures)


__all__ = ["PROVENANCE_PATH", "builder_id", "envelope_bytes", "pae_bytes", "statement"]
