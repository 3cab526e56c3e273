"""Issue 14: the SBOMs an image brings with it are listed in bundle.json's sboms.images as origin "upstream",
beside syft's (origin "syft"), so a reviewer sees both.

They come in the shapes the producers write (helpers/producers.py): ``cosign attest --type spdxjson`` or
``--type cyclonedx`` (a DSSE envelope layer annotated predicateType, under the .att tag), ``oras attach
--artifact-type application/spdx+json`` (an OCI 1.1 referrer) and BuildKit's attestation manifests (in-toto
layers annotated in-toto.io/predicate-type: SLSA provenance and an SPDX SBOM). Each entry names the carried
manifest (``referrer``) and the blobs under images/ that hold the documents: nothing is fetched for it and nothing
is copied. A provenance attestation or a signature is no SBOM and is not listed. Built in-process from an
in-memory registry (helpers/membundle.py); syft runs on the fabricated images as in any build.
"""

import json

import pytest
from tests.helpers import producers as P
from tests.helpers.craft import read_entries
from tests.helpers.membundle import build_bundle
from tests.helpers.memregistry import MemRegistry

from installer.format.paths import blob_path
from installer.trust.store import load_trust_paths
from installer.trust.verify import verify_file

pytestmark = pytest.mark.usefixtures("no_credentials")
SPDX_PREDICATE = "https://spdx.dev/Document"
CDX_PREDICATE = "https://cyclonedx.org/bom"


def built(src, tmp_path, keydir, *images, sbom=True):
    """(bundle.json's sboms as verify reads it, the archive's members)."""
    archive = build_bundle(src, tmp_path / "b", keydir / "ed" / "bundle.key", images=list(images), sbom=sbom)
    report = verify_file(str(archive), load_trust_paths([str(keydir / "ed" / "bundle.pub")]), show_progress=False)
    return report.head.meta.to_dict()["sboms"], {e.path: e.data for e in read_entries(archive)}


def layer(artifact, i=0):
    return json.loads(artifact.data)["layers"][i]


def test_cosign_sbom_attestations_and_an_oci_referrer_are_listed_as_upstream(tmp_path, keydir):
    src = MemRegistry("src.test", referrers_api=True)
    ec, _ed = P.keys()
    a = P.image("linux/amd64", "spdx-attested")
    a.push(src, "acme/a", "1.0")
    att_spdx = P.cosign_attestation(a.digest, ec, SPDX_PREDICATE)
    att_spdx.push(src, "acme/a", P.cosign_tag(a.digest, "att"))
    oras_spdx = P.oci_referrer(a)
    oras_spdx.push(src, "acme/a")
    b = P.image("linux/amd64", "cdx-attested")
    b.push(src, "acme/b", "1.0")
    att_cdx = P.cosign_attestation(b.digest, ec, CDX_PREDICATE)
    att_cdx.push(src, "acme/b", P.cosign_tag(b.digest, "att"))
    c = P.image("linux/amd64", "provenance-only")
    c.push(src, "acme/c", "1.0")
    P.cosign_attestation(c.digest, ec).push(src, "acme/c", P.cosign_tag(c.digest, "att"))  # SLSA: no SBOM
    P.cosign_signature(c.digest, [ec]).push(src, "acme/c", P.cosign_tag(c.digest, "sig"))
    sboms, files = built(src, tmp_path, keydir, "src.test/acme/a:1.0", "src.test/acme/b:1.0", "src.test/acme/c:1.0")

    by_ref = {}
    for entry in sboms["images"]:
        by_ref.setdefault(entry["ref"], []).append(entry)
    # syft's SBOM of every image first, then what came with it
    assert [[e["origin"] for e in by_ref[ref]] for ref in sorted(by_ref)] == [
        ["syft", "upstream", "upstream"], ["syft", "upstream"], ["syft"]]
    dsse = layer(att_spdx)
    oras = layer(oras_spdx)
    want_a = sorted([
        {"ref": "src.test/acme/a:1.0", "digest": a.digest, "platform": "linux/amd64", "origin": "upstream",
         "kind": "attestation", "referrer": att_spdx.digest,
         "documents": [{"path": blob_path(dsse["digest"]), "media_type": "application/vnd.dsse.envelope.v1+json",
                        "format": "spdx", "size": dsse["size"], "predicate_type": SPDX_PREDICATE}]},
        {"ref": "src.test/acme/a:1.0", "digest": a.digest, "platform": "linux/amd64", "origin": "upstream",
         "kind": "sbom", "referrer": oras_spdx.digest,
         "documents": [{"path": blob_path(oras["digest"]), "media_type": "application/spdx+json",
                        "format": "spdx", "size": oras["size"]}]},
    ], key=lambda e: e["referrer"])
    assert by_ref["src.test/acme/a:1.0"][1:] == want_a
    [cdx] = by_ref["src.test/acme/b:1.0"][1:]
    assert (cdx["referrer"], cdx["kind"], cdx["digest"]) == (att_cdx.digest, "attestation", b.digest)
    assert [(d["format"], d["predicate_type"]) for d in cdx["documents"]] == [("cyclonedx", CDX_PREDICATE)]
    # the documents are the carried blobs themselves, in images/ (no copy under sbom/)
    for entry in want_a + [cdx]:
        for document in entry["documents"]:
            assert len(files[document["path"]]) == document["size"]
    assert files[blob_path(dsse["digest"])] == att_spdx.all_blobs()[dsse["digest"]]
    assert sorted(p for p in files if p.startswith("sbom/")) == sorted(
        [p for e in sboms["images"] if e["origin"] == "syft" for p in e["files"]] + sboms["content"]["files"])


def test_buildx_sbom_attestations_in_the_index_and_as_a_referrer_are_listed_as_upstream(tmp_path, keydir):
    src = MemRegistry("src.test")
    whole = P.buildx_index("whole")
    whole.push(src, "acme/whole", "1.0")
    single = P.buildx_index("single")
    single.push(src, "acme/single", "1.0")
    sboms, files = built(src, tmp_path, keydir, "src.test/acme/whole:1.0",
                         {"ref": "src.test/acme/single:1.0", "platforms": ["linux/arm64"]})
    upstream = [e for e in sboms["images"] if e["origin"] == "upstream"]
    atts = {c.digest: c for idx in (whole, single) for c in idx.children if c.note == "attestation"}
    seen = set()
    for entry in upstream:
        att = atts[entry["referrer"]]
        subject = json.loads(att.blobs[layer(att, 1)["digest"]])["subject"][0]["digest"]["sha256"]
        assert entry["digest"] == "sha256:" + subject and entry["kind"] == "attestation"
        # the SPDX statement only, not the SLSA provenance beside it
        sbom_layer = layer(att, 1)
        assert entry["documents"] == [{"path": blob_path(sbom_layer["digest"]),
                                       "media_type": "application/vnd.in-toto+json", "format": "spdx",
                                       "size": sbom_layer["size"], "predicate_type": SPDX_PREDICATE}]
        assert files[entry["documents"][0]["path"]] == att.blobs[sbom_layer["digest"]]
        seen.add((entry["ref"], entry["platform"]))
    assert seen == {("src.test/acme/whole:1.0", "linux/amd64"), ("src.test/acme/whole:1.0", "linux/arm64"),
                    ("src.test/acme/single:1.0", "linux/arm64")}
    # syft scanned the images, not the attestation manifests
    assert sorted((e["ref"], e["platform"]) for e in sboms["images"] if e["origin"] == "syft") == sorted(seen)


def test_with_no_sbom_the_upstream_sboms_are_still_listed(tmp_path, keydir):
    src = MemRegistry("src.test")
    ec, _ed = P.keys()
    a = P.image("linux/amd64", "no-syft")
    a.push(src, "acme/a", "1.0")
    att = P.cosign_attestation(a.digest, ec, SPDX_PREDICATE)
    att.push(src, "acme/a", P.cosign_tag(a.digest, "att"))
    sboms, files = built(src, tmp_path, keydir, "src.test/acme/a:1.0", sbom=False)
    assert sboms["made"] is False and sboms["reason"] == "--no-sbom"
    [entry] = sboms["images"]
    assert (entry["origin"], entry["referrer"]) == ("upstream", att.digest)
    assert sorted(p for p in files if p.startswith("sbom/")) == sorted(sboms["content"]["files"])  # no syft


def test_an_image_without_sboms_of_its_own_has_syft_s_only(tmp_path, keydir):
    src = MemRegistry("src.test")
    a = P.image("linux/amd64", "plain")
    a.push(src, "acme/a", "1.0")
    sboms, _files = built(src, tmp_path, keydir, "src.test/acme/a:1.0")
    assert [(e["origin"], e["made"]) for e in sboms["images"]] == [("syft", True)]
