"""The SBOM of a bundle's own content: its files, tenant override files and Helm charts (issue 14 point 1).

The images have syft's SBOMs (bundler/stage/sbom.py); what the manifest adds beside them is listed here, by this
code alone (no syft: it is written by every build, with or without images, and with --no-sbom), as one SPDX 2.3
JSON and one CycloneDX 1.6 JSON document:

- every manifest file (files[] targets), every tenant override file and every chart's base values file: an SPDX
  File (``./<member path>``) and a CycloneDX ``file`` component, each with its sha256 and its sha1 (SPDX 2.3 makes
  a file's SHA1 mandatory; the bundle itself relies on sha256 only) and where it came from;
- every chart: an SPDX Package and a CycloneDX ``application`` component: name, version, its archive's sha256,
  where it came from (Helm repository URL, oci:// reference or manifest-relative path, as bundle.json's chart
  entry records it), the digest of its Helm OCI artifact in images/, and its values file (SPDX DATA_FILE_OF, a
  nested CycloneDX component).

Byte-reproducible, as the image SBOMs are: the time is the build time (SOURCE_DATE_EPOCH), the document id (SPDX
documentNamespace, CycloneDX serialNumber) is urn:uuid: + the UUIDv5, in this tool's namespace, of the bundle's
name and version and the sorted ``<sha256>  <path>`` lines of what is listed; JSON with sorted keys.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from installer import TOOL_NAME, __version__
from bundler.stage.sbom import CYCLONEDX, NAMESPACE, SPDX, document_time, dump_document

CONTENT_PATHS = {SPDX: "sbom/bundle-content.spdx.json", CYCLONEDX: "sbom/bundle-content.cdx.json"}
NOASSERTION = "NOASSERTION"
PROPERTY = TOOL_NAME + ":"          # CycloneDX property names: offline-bundle:role, offline-bundle:source, ...


@dataclass(frozen=True)
class ContentFile:
    """One listed file: its member path, hashes and size, and what it is to the bundle."""

    path: str
    sha256: str
    sha1: str
    size: int
    role: str                       # file | tenant | chart-values
    source: str = ""                # the manifest-relative file it was made from ("" for a chart's values)
    executable: bool = False
    component: str = ""             # a tenant file's component


@dataclass(frozen=True)
class ContentChart:
    """One chart as bundle.json's entry records it, with its values file when it has one."""

    name: str
    version: str
    path: str                       # charts/<name>-<version>.tgz
    sha256: str
    size: int
    source: str                     # repo | oci | path
    origin: str                     # the repository URL, oci:// reference or manifest-relative path
    oci_digest: str                 # its Helm OCI artifact's manifest, in images/
    values: Optional[ContentFile] = None


@dataclass(frozen=True)
class ContentSbom:
    """The two documents (syft-style format name -> bytes) and how many things they list."""

    documents: Dict[str, bytes]
    entries: int

    def members(self) -> List[Tuple[str, bytes]]:
        """(archive path, bytes): the SPDX document, then the CycloneDX one."""
        return [(path, self.documents[name]) for name, path in CONTENT_PATHS.items()]


def _spdx_id(kind: str, text: str) -> str:
    """An SPDXID (letters, digits, '.' and '-' only) readable from ``text``, unique through a hash of it."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:80]
    return "SPDXRef-%s-%s-%s" % (kind, readable, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])


def document_uuid(name: str, version: str, listed: Sequence[Tuple[str, str]]) -> uuid.UUID:
    """The content SBOM's id: the bundle's name and version and the sorted (sha256, path) of what it lists."""
    text = "bundle-content\n%s %s\n" % (name, version) + "".join("%s  %s\n" % pair for pair in sorted(listed))
    return uuid.uuid5(NAMESPACE, text)


def _file_comment(f: ContentFile) -> str:
    if f.role == "tenant":
        return "the tenant override file of %s, from %s" % (f.component, f.source)
    if f.role == "chart-values":
        return "a chart's base values, as canonical JSON"
    return "a file of the bundle (files[]), from %s%s" % (f.source, ", executable" if f.executable else "")


def _chart_source(c: ContentChart) -> str:
    where = {"repo": "the Helm repository %s", "oci": "the OCI registry reference %s",
             "path": "the chart folder %s beside the manifest"}.get(c.source, "%s")
    return ("from " + where % c.origin) if c.origin else "origin not recorded"


def spdx_document(name: str, version: str, epoch: int, files: Sequence[ContentFile],
                  charts: Sequence[ContentChart], uid: uuid.UUID) -> Dict[str, Any]:
    spdx_files: List[Dict[str, Any]] = []
    packages: List[Dict[str, Any]] = []
    relationships: List[Dict[str, str]] = []

    def describe(spdx_id: str) -> None:
        relationships.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                              "relatedSpdxElement": spdx_id})

    def add_file(f: ContentFile) -> str:
        spdx_id = _spdx_id("File", f.path)
        spdx_files.append({"SPDXID": spdx_id, "fileName": "./" + f.path,
                           "checksums": [{"algorithm": "SHA1", "checksumValue": f.sha1},
                                         {"algorithm": "SHA256", "checksumValue": f.sha256}],
                           "licenseConcluded": NOASSERTION, "copyrightText": NOASSERTION,
                           "comment": _file_comment(f)})
        describe(spdx_id)
        return spdx_id

    for f in files:
        add_file(f)
    for c in charts:
        spdx_id = _spdx_id("Chart", "%s-%s" % (c.name, c.version))
        packages.append({"SPDXID": spdx_id, "name": c.name, "versionInfo": c.version, "packageFileName": c.path,
                         "downloadLocation": NOASSERTION, "filesAnalyzed": False,
                         "checksums": [{"algorithm": "SHA256", "checksumValue": c.sha256}],
                         "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
                         "copyrightText": NOASSERTION, "primaryPackagePurpose": "APPLICATION",
                         "sourceInfo": "a Helm chart %s" % _chart_source(c),
                         "comment": "its Helm OCI artifact in images/ is %s" % c.oci_digest})
        describe(spdx_id)
        if c.values is not None:
            relationships.append({"spdxElementId": add_file(c.values), "relationshipType": "DATA_FILE_OF",
                                  "relatedSpdxElement": spdx_id})
    relationships.sort(key=lambda r: (r["relationshipType"], r["spdxElementId"], r["relatedSpdxElement"]))
    doc: Dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": "%s %s: files, tenant files and charts" % (name, version),
        "documentNamespace": "urn:uuid:%s" % uid,
        "creationInfo": {"created": document_time(epoch), "creators": ["Tool: %s-%s" % (TOOL_NAME, __version__)]},
        "files": sorted(spdx_files, key=lambda f: f["fileName"]),
        "packages": sorted(packages, key=lambda p: (p["name"], p["versionInfo"])),
        "relationships": relationships,
    }
    return doc


def _properties(pairs: Sequence[Tuple[str, str]]) -> List[Dict[str, str]]:
    return [{"name": PROPERTY + key, "value": value} for key, value in pairs if value]


def _cdx_file(f: ContentFile) -> Dict[str, Any]:
    return {"type": "file", "bom-ref": "file:" + f.path, "name": f.path,
            "hashes": [{"alg": "SHA-1", "content": f.sha1}, {"alg": "SHA-256", "content": f.sha256}],
            "description": _file_comment(f),
            "properties": _properties([("role", f.role), ("source", f.source), ("size", str(f.size)),
                                       ("executable", "true" if f.executable else ""),
                                       ("component", f.component)])}


def cyclonedx_document(name: str, version: str, epoch: int, files: Sequence[ContentFile],
                       charts: Sequence[ContentChart], uid: uuid.UUID) -> Dict[str, Any]:
    components = [_cdx_file(f) for f in files]
    for c in charts:
        comp: Dict[str, Any] = {
            "type": "application", "bom-ref": "chart:%s@%s" % (c.name, c.version), "name": c.name,
            "version": c.version, "hashes": [{"alg": "SHA-256", "content": c.sha256}],
            "description": "a Helm chart %s" % _chart_source(c),
            "properties": _properties([("role", "chart"), ("path", c.path), ("size", str(c.size)),
                                       ("source", c.source), ("origin", c.origin), ("oci-digest", c.oci_digest)])}
        if c.source == "repo" and re.match(r"https?://", c.origin):
            comp["externalReferences"] = [{"type": "distribution", "url": c.origin}]
        if c.values is not None:
            comp["components"] = [_cdx_file(c.values)]
        components.append(comp)
    components.sort(key=lambda comp: comp["bom-ref"])
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:%s" % uid, "version": 1,
        "metadata": {
            "timestamp": document_time(epoch),
            "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": __version__}]},
            "component": {"type": "application", "bom-ref": "bundle", "name": name, "version": version,
                          "description": "the files, tenant files and charts of the bundle %s %s (its images "
                                         "have SBOMs of their own)" % (name, version)},
        },
        "components": components,
    }


def content_sbom(name: str, version: str, epoch: int, files: Sequence[ContentFile],
                 charts: Sequence[ContentChart]) -> Optional[ContentSbom]:
    """Both documents; None when there is nothing to list (a bundle of images only)."""
    values = [c.values for c in charts if c.values is not None]
    listed = [(f.sha256, f.path) for f in list(files) + values] + [(c.sha256, c.path) for c in charts]
    if not listed:
        return None
    uid = document_uuid(name, version, listed)
    docs = {SPDX: dump_document(spdx_document(name, version, epoch, files, charts, uid)),
            CYCLONEDX: dump_document(cyclonedx_document(name, version, epoch, files, charts, uid))}
    return ContentSbom(docs, len(listed))
