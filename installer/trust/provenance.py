"""The bundle's provenance statement (issue 14 point 2): what it must say, and its check when a bundle is verified.

Every build writes ``attestations/provenance.dsse.json``: a DSSE envelope (installer/trust/dsse.py), signed with
the bundle key, whose payload is an in-toto Statement v1 with a SLSA Provenance v1 predicate:

- ``subject``: every member SHA256SUMS lists (by path, with its sha256), except bundle.json, DELTA.json and the
  envelope itself (bundle.json records the envelope's size, so it cannot be a subject of it), and every image
  manifest the bundle keeps (by canonical reference, with the manifest's sha256, its media type and, for a
  per-platform manifest, the platform as an annotation);
- ``predicate.buildDefinition``: the build type (BUILD_TYPE), the manifest's and lock file's sha256 and the
  options that change the output (externalParameters), the tool's version (internalParameters), and every
  image, chart and file the build resolved, by digest (resolvedDependencies);
- ``predicate.runDetails``: the builder's id (OFFLINE_BUNDLE_BUILDER_ID, else BUILDER_ID) and the build's times,
  both the build time from SOURCE_DATE_EPOCH, so that two builds write the same bytes.

The envelope is an ordinary member: listed in SHA256SUMS and bundle.json, hashed and written as every other. The
check below runs once the payload has been read (or, for a delta that omits it, found in the kit): the envelope
must carry a valid signature by the key that signed SHA256SUMS, and its subjects must be exactly what SHA256SUMS
and bundle.json list. A bundle built before provenance existed has no such member and reports none; a bundle
that lists it cannot drop it, since SHA256SUMS is signed. Standard library only.
"""

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Set, Tuple

from installer.errors import ContentMismatch, InvalidInput
from installer.format.model import BundleHead
from installer.format.sums import DELTA_NAME, META_NAME
from installer.textsafe import printable
from installer.trust import dsse
from installer.trust.signing import PublicKey

PROVENANCE_PATH = "attestations/provenance.dsse.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:offline-bundle:build-type:bundle:v1"   # what externalParameters mean: docs/FORMAT.md "Provenance"
BUILDER_ID = "urn:offline-bundle:builder:local"          # a build host that names no builder of its own
MAX_SHOWN = 512   # characters of any one text value kept from a statement for display


@dataclass(frozen=True)
class ProvenanceSummary:
    """What a verified provenance statement says, for verify's and report's output (display values escaped)."""

    path: str
    signer: str                 # the fingerprint of the key whose DSSE signature verified
    statement_sha256: str       # of the payload: the statement's own bytes
    subjects: int
    builder_id: str
    build_type: str
    started: str
    finished: str
    manifest_sha256: str
    lock_sha256: str
    lock_status: str
    tool: str
    mirrors: Tuple[str, ...]
    dependencies: int

    def to_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "verified": True, "signer": self.signer,
                "statement_sha256": self.statement_sha256, "subjects": self.subjects,
                "builder_id": self.builder_id, "build_type": self.build_type, "started": self.started,
                "finished": self.finished, "manifest_sha256": self.manifest_sha256,
                "lock_sha256": self.lock_sha256, "lock_status": self.lock_status, "tool": self.tool,
                "mirrors": list(self.mirrors), "dependencies": self.dependencies}


def expected_subjects(sums_entries: Mapping[str, str], meta: BundleHead) -> Set[Tuple[str, str]]:
    """(name, sha256 hex) of every subject the statement must have, and no other."""
    skip = {META_NAME, DELTA_NAME, PROVENANCE_PATH}
    wanted = {(path, digest) for path, digest in sums_entries.items() if path not in skip}
    for image in meta.images:
        wanted.add((image.ref, image.digest.split(":", 1)[1]))
        for manifest in image.manifests:
            wanted.add((image.ref, manifest.digest.split(":", 1)[1]))
    return wanted


def _text(value: Any) -> str:
    return printable(value[:MAX_SHOWN]) if isinstance(value, str) else ""


def _obj(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _subjects(doc: Dict[str, Any], where: str) -> List[Tuple[str, str]]:
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InvalidInput("%s: the statement has no subjects" % where)
    found = []
    for i, subject in enumerate(subjects):
        digest = _obj(_obj(subject).get("digest")).get("sha256")
        name = _obj(subject).get("name")
        if not isinstance(name, str) or not isinstance(digest, str) or len(digest) != 64 or \
                digest.strip("0123456789abcdef"):
            raise InvalidInput("%s: subject[%d] is not {name, digest: {sha256: <64 hex>}}" % (where, i))
        found.append((name, digest))
    return found


def check_provenance(data: bytes, key: PublicKey, sums_entries: Mapping[str, str], meta: BundleHead,
                     where: str = PROVENANCE_PATH) -> ProvenanceSummary:
    """The envelope's bytes, checked: signed by ``key`` (the key that signed SHA256SUMS; TrustError, exit 4),
    an in-toto Statement v1 with a SLSA Provenance v1 predicate (InvalidInput, exit 3), whose subjects are
    exactly those SHA256SUMS and bundle.json list (ContentMismatch, exit 5, naming the differences)."""
    env = dsse.parse(data, where)
    dsse.verify_envelope(env, [key], where)
    doc = dsse.statement(env, where)
    if doc.get("predicateType") != SLSA_PROVENANCE:
        raise InvalidInput("%s: the statement's predicateType is not %s" % (where, SLSA_PROVENANCE))
    found = _subjects(doc, where)
    wanted = expected_subjects(sums_entries, meta)
    have = set(found)
    problems = ["not a subject: %s sha256:%s" % (printable(n), d) for n, d in sorted(wanted - have)]
    problems += ["a subject the bundle does not have: %s sha256:%s" % (printable(n[:200]), d)
                 for n, d in sorted(have - wanted)]
    if len(found) != len(have):
        problems.append("the statement repeats a subject")
    if problems:
        raise ContentMismatch("%s does not describe this bundle's files and images" % where, problems[:50])
    predicate = _obj(doc.get("predicate"))
    definition = _obj(predicate.get("buildDefinition"))
    external = _obj(definition.get("externalParameters"))
    run = _obj(predicate.get("runDetails"))
    metadata = _obj(run.get("metadata"))
    tool = _obj(_obj(definition.get("internalParameters")).get("tool"))
    mirrors = external.get("mirrors")
    deps = definition.get("resolvedDependencies")
    return ProvenanceSummary(
        path=where, signer=key.fingerprint, statement_sha256=hashlib.sha256(env.payload).hexdigest(),
        subjects=len(found), builder_id=_text(_obj(run.get("builder")).get("id")),
        build_type=_text(definition.get("buildType")), started=_text(metadata.get("startedOn")),
        finished=_text(metadata.get("finishedOn")),
        manifest_sha256=_text(_obj(external.get("manifest")).get("sha256")),
        lock_sha256=_text(_obj(external.get("lock")).get("sha256")),
        lock_status=_text(_obj(external.get("lock")).get("status")),
        tool="%s %s" % (_text(tool.get("name")), _text(tool.get("version"))),
        mirrors=tuple(_text(_obj(m).get("source")) + " -> " + _text(_obj(m).get("mirror"))
                      for m in (mirrors if isinstance(mirrors, list) else [])[:100]),
        dependencies=len(deps) if isinstance(deps, list) else 0)


def provenance_listed(sums_entries: Mapping[str, str]) -> bool:
    """Whether this bundle carries a provenance statement (every bundle built since issue 14 does)."""
    return PROVENANCE_PATH in sums_entries

