"""Issue 12, points 3-7: supply-chain referrers, signed-by, buildx attestations of a subset, foreign layers and
platform names, built in-process from an in-memory source registry holding fixtures in the producers' shapes
(helpers/producers.py) and installed into an in-memory site. The same against the real registry and skopeo:
tests/integration/test_real_shapes.py."""

import json

import pytest
from tests.helpers import producers as P
from tests.helpers.membundle import build_bundle, install_into
from tests.helpers.memregistry import MemRegistry, Sleeps, quick_policy

from installer.errors import ContentMismatch, InvalidInput, RegistryError, TrustError
from installer.format.model import fallback_tag
from installer.format.oci import platform_matches
from installer.install import DeployOptions
from installer.trust.verify import verify_file
from installer.trust.store import load_trust_paths

pytestmark = pytest.mark.usefixtures("no_credentials")
SITE = "site.test"


@pytest.fixture
def src():
    return MemRegistry("src.test")


def build(src, tmp_path, keydir, *images, name="demo"):
    archive = build_bundle(src, tmp_path / "b", keydir / "ed" / "bundle.key", images=list(images), name=name)
    return archive


def meta_of(archive, keydir):
    report = verify_file(str(archive), load_trust_paths([str(keydir / "ed" / "bundle.pub")]), show_progress=False)
    return report.head.meta


def install(archive, keydir, tmp_path, site, kit="kit"):
    deploy = DeployOptions(registry=SITE, insecure=(SITE,), transport=site, retry=quick_policy(Sleeps()))
    return install_into(archive, tmp_path / kit, keydir / "ed" / "bundle.pub", deploy)[0]


def write_pub(tmp_path, private):
    path = tmp_path / "b" / "src" / "cosign.pub"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(P.public_pem(private))
    return "cosign.pub"


# --- point 3: cosign tags and OCI 1.1 referrers travel with the image --------------------------------------

def test_cosign_signature_and_attestation_tags_are_carried_and_pushed_beside_the_image(src, tmp_path, keydir):
    ec, _ed = P.keys()
    img = P.image("linux/amd64", "cosigned")
    img.push(src, "acme/app", "1.0")
    sig = P.cosign_signature(img.digest, [ec])
    att = P.cosign_attestation(img.digest, ec)
    sig.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    att.push(src, "acme/app", P.cosign_tag(img.digest, "att"))
    archive = build(src, tmp_path, keydir, "src.test/acme/app:1.0")
    [image] = meta_of(archive, keydir).images
    got = {(r.kind, r.digest, r.subject, r.tag, r.found) for r in image.referrers}
    assert got == {("signature", sig.digest, img.digest, P.cosign_tag(img.digest, "sig"), "tag"),
                   ("attestation", att.digest, img.digest, P.cosign_tag(img.digest, "att"), "tag")}
    site = MemRegistry(SITE)
    result = install(archive, keydir, tmp_path, site)
    assert result.push.referrers_pushed == 2 and result.push.referrer_tags == 2
    tags = site.tags("src.test/acme/app")
    assert tags == {"1.0": img.digest, P.cosign_tag(img.digest, "sig"): sig.digest,
                    P.cosign_tag(img.digest, "att"): att.digest}
    for art in (img, sig, att):
        assert site.manifest("src.test/acme/app", art.digest)[0] == art.data  # byte-exact
    for digest, data in sig.all_blobs().items():
        assert site.blob(digest) == data
    again = install(archive, keydir, tmp_path, site, kit="kit2")
    assert again.push.manifests_pushed == 0 and again.push.referrer_tags == 0  # nothing written twice


@pytest.mark.parametrize("source_api", [True, False])
@pytest.mark.parametrize("site_api", [True, False])
def test_an_oci_referrer_is_found_by_the_api_or_the_fallback_tag_and_lands_where_the_site_can_find_it(
        tmp_path, keydir, source_api, site_api):
    src = MemRegistry("src.test", referrers_api=source_api)
    img = P.image("linux/amd64", "referred")
    img.push(src, "acme/app", "1.0")
    sbom = P.oci_referrer(img)
    sbom.push(src, "acme/app")
    if not source_api:  # what oras writes on a registry without the API
        P.fallback_index([sbom]).push(src, "acme/app", fallback_tag(img.digest))
    archive = build(src, tmp_path, keydir, "src.test/acme/app:1.0")
    [image] = meta_of(archive, keydir).images
    [r] = image.referrers
    assert (r.digest, r.subject, r.kind, r.tag, r.artifact_type) == (sbom.digest, img.digest, "sbom", None,
                                                                     "application/spdx+json")
    assert r.found == ("referrers-api" if source_api else "fallback-tag")
    site = MemRegistry(SITE, referrers_api=site_api)
    install(archive, keydir, tmp_path, site)
    assert site.manifest("src.test/acme/app", sbom.digest)[0] == sbom.data
    tags = site.tags("src.test/acme/app")
    if site_api:
        assert fallback_tag(img.digest) not in tags  # the API lists it from its subject
    else:
        index = json.loads(site.manifest("src.test/acme/app", tags[fallback_tag(img.digest)])[0])
        assert [(d["digest"], d["artifactType"]) for d in index["manifests"]] == [(sbom.digest,
                                                                                    "application/spdx+json")]


def referred(src, seed):
    """An image acme/app:1.0 with one OCI 1.1 referrer behind the fallback tag, as oras leaves them on a registry
    without the API; (image, referrer)."""
    img = P.image("linux/amd64", seed)
    img.push(src, "acme/app", "1.0")
    sbom = P.oci_referrer(img)
    sbom.push(src, "acme/app")
    P.fallback_index([sbom]).push(src, "acme/app", fallback_tag(img.digest))
    return img, sbom


def test_the_fallback_index_on_the_site_is_merged_not_replaced(src, tmp_path, keydir):
    img, ours = referred(src, "merged")
    archive = build(src, tmp_path, keydir, "src.test/acme/app:1.0")
    site = MemRegistry(SITE)
    theirs = P.oci_referrer(img, "application/vnd.example.scan+json", b'{"scan":1}', "scan.json")
    img.push(site, "src.test/acme/app")
    theirs.push(site, "src.test/acme/app")
    P.fallback_index([theirs]).push(site, "src.test/acme/app", fallback_tag(img.digest))
    install(archive, keydir, tmp_path, site)
    tag = site.tags("src.test/acme/app")[fallback_tag(img.digest)]
    listed = [d["digest"] for d in json.loads(site.manifest("src.test/acme/app", tag)[0])["manifests"]]
    assert listed == [theirs.digest, ours.digest]


def test_a_listed_manifest_that_does_not_name_the_subject_is_not_carried_and_the_build_says_so(src, tmp_path,
                                                                                            keydir):
    img = P.image("linux/amd64", "liar")
    other = P.image("linux/amd64", "other")
    img.push(src, "acme/app", "1.0")
    other.push(src, "acme/app", "other")
    stranger = P.oci_referrer(other)  # its subject is another image
    stranger.push(src, "acme/app")
    P.fallback_index([stranger]).push(src, "acme/app", fallback_tag(img.digest))
    from bundler.build import build as do_build
    from tests.helpers.membundle import manifest_yaml
    from bundler.stage.stage import SourceOptions

    m = manifest_yaml(tmp_path / "src", "demo", "1.0.0", ["src.test/acme/app:1.0"])
    result = do_build(str(m), str(keydir / "ed" / "bundle.key"), str(tmp_path / "out"),
                      opts=SourceOptions(cache_dir=str(tmp_path / "cache"), insecure=("src.test",),
                                         show_progress=False, transport=src))
    assert any(stranger.digest in w and "does not name" in w for w in result["warnings"])
    [image] = meta_of(result["archive"], keydir).images
    assert image.referrers == ()


def test_referrers_false_carries_none(src, tmp_path, keydir):
    ec, _ = P.keys()
    img = P.image("linux/amd64", "optout")
    img.push(src, "acme/app", "1.0")
    P.cosign_signature(img.digest, [ec]).push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "referrers": False})
    [image] = meta_of(archive, keydir).images
    assert image.referrers == () and "referrers" not in image.to_dict()
    assert not src.requests("GET", r"/manifests/sha256-")  # not even looked for


# --- point 4: signed-by ------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519"])
def test_signed_by_verifies_the_cosign_signature_records_it_and_verify_checks_it_again(src, tmp_path, keydir,
                                                                                       algorithm):
    ec, ed = P.keys()
    private = ec if algorithm == "ecdsa-p256" else ed
    stranger, _ = P.keys()
    img = P.buildx_index("signed")
    img.push(src, "acme/app", "1.0")
    sig = P.cosign_signature(img.digest, [stranger, private])  # two signings: the second is ours
    sig.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    pub = write_pub(tmp_path, private)
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    [image] = meta_of(archive, keydir).images
    [g] = image.signatures
    assert (g.digest, g.signature, g.algorithm, g.key_file, g.identity) == (
        img.digest, sig.digest, algorithm, "cosign.pub", "registry.test/acme/app")
    payload = json.loads(sig.data)["layers"][1]["digest"]
    assert g.payload == payload and g.public_key.encode() == P.public_pem(private)
    from installer.cli.inspect import image_extras
    assert any("signed by %s" % g.key in line and sig.digest in line for line in image_extras(image))


def test_signed_by_refuses_an_image_without_a_valid_signature_by_that_key(src, tmp_path, keydir):
    ec, ed = P.keys()
    img = P.image("linux/amd64", "unsigned")
    img.push(src, "acme/app", "1.0")
    pub = write_pub(tmp_path, ed)
    with pytest.raises(TrustError, match=r"acme/app:1.0.*no valid signature.*cosign.pub.*no cosign signature found"):
        build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    P.cosign_signature(img.digest, [ec]).push(src, "acme/app", P.cosign_tag(img.digest, "sig"))  # another key
    with pytest.raises(TrustError, match=r"1 signature looked at") as err:
        build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    assert err.value.exit_code == 4
    # a signature by the key over a payload that names another digest is no signature of this image
    other = P.image("linux/amd64", "other")
    P.cosign_signature(img.digest, [ed], payload_digest=other.digest).push(src, "acme/app",
                                                                         P.cosign_tag(img.digest, "sig"))
    with pytest.raises(TrustError, match="no valid signature"):
        build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})


def test_a_recorded_signature_that_does_not_verify_fails_verify_and_install(src, tmp_path, keydir, monkeypatch):
    """A publisher's bundle.json claims an upstream signature the carried bytes do not prove: exit 5."""
    ec, ed = P.keys()
    img = P.image("linux/amd64", "claimed")
    img.push(src, "acme/app", "1.0")
    P.cosign_signature(img.digest, [ec]).push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    pub = write_pub(tmp_path, ed)  # not the key that signed
    import bundler.pull.signedby as signedby
    from installer.trust.cosign import CosignCheck, signature_layers

    def lying_check(key, manifest, media_type, digest, read_blob, where):
        return CosignCheck(signature_layers(manifest, media_type, where)[0], None)
    monkeypatch.setattr(signedby, "check_signature_manifest", lying_check)
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    with pytest.raises(ContentMismatch, match="upstream signature recorded in bundle.json does not hold") as err:
        meta_of(archive, keydir)
    assert err.value.exit_code == 5 and "does not verify" in err.value.problems[0]
    with pytest.raises(ContentMismatch):
        install_into(archive, tmp_path / "kit", keydir / "ed" / "bundle.pub")
    assert not (tmp_path / "kit" / "bundles").exists() or not any((tmp_path / "kit" / "bundles").iterdir())


def test_signed_by_on_a_subset_checks_the_index_signature_which_cannot_be_carried(src, tmp_path, keydir):
    ec, _ = P.keys()
    idx = P.buildx_index("subset-signed", ("linux/amd64", "linux/arm64", "linux/s390x"))
    idx.push(src, "acme/app", "1.0")
    P.cosign_signature(idx.digest, [ec]).push(src, "acme/app", P.cosign_tag(idx.digest, "sig"))
    pub = write_pub(tmp_path, ec)
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub,
                                            "platforms": ["linux/amd64", "linux/arm64"]})
    [image] = meta_of(archive, keydir).images
    [g] = image.signatures
    assert g.digest == idx.digest and g.signature is None and g.payload is None
    assert all(r.subject != idx.digest for r in image.referrers)


# --- point 5: buildx attestations of a subset --------------------------------------------------------------

def test_a_subset_keeps_its_platforms_attestations_in_the_derived_index(src, tmp_path, keydir):
    idx = P.buildx_index("subset", ("linux/amd64", "linux/arm64", "linux/s390x"))
    idx.push(src, "acme/app", "1.0")
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0",
                                            "platforms": ["linux/amd64", "linux/s390x"]})
    [image] = meta_of(archive, keydir).images
    kept = [(m.digest, m.platform) for m in image.manifests]
    chosen = {idx.child("linux/amd64").digest, idx.child("linux/s390x").digest}
    want = [(c.digest, c.platform) for c in idx.children if c.digest in chosen or _attests(idx, c) in chosen]
    assert image.derived and kept == want and len(kept) == 4
    site = MemRegistry(SITE)
    install(archive, keydir, tmp_path, site)
    for digest, _p in kept:
        assert site.manifest("src.test/acme/app", digest)[0] == next(c.data for c in idx.children
                                                                   if c.digest == digest)


def _attests(idx, child):
    doc = json.loads(idx.data)
    for d in doc["manifests"]:
        if d["digest"] == child.digest:
            return d.get("annotations", {}).get("vnd.docker.reference.digest")
    return None


def test_a_single_platform_of_a_buildx_index_keeps_its_attestation_as_a_referrer(src, tmp_path, keydir):
    idx = P.buildx_index("single")
    idx.push(src, "acme/app", "1.0")
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "platforms": ["linux/arm64"]})
    [image] = meta_of(archive, keydir).images
    arm = idx.child("linux/arm64")
    att = next(c for c in idx.children if c.note == "attestation" and _attests(idx, c) == arm.digest)
    assert image.digest == arm.digest and not image.derived
    [r] = image.referrers
    assert (r.digest, r.subject, r.kind, r.found, r.tag) == (att.digest, arm.digest, "attestation", "index", None)
    site = MemRegistry(SITE, referrers_api=True)  # even with the API: the attestation names no subject
    install(archive, keydir, tmp_path, site)
    tag = site.tags("src.test/acme/app")[fallback_tag(arm.digest)]
    assert [d["digest"] for d in json.loads(site.manifest("src.test/acme/app", tag)[0])["manifests"]] == [
        att.digest]


# --- point 6: foreign layers -------------------------------------------------------------------------------

def test_foreign_layers_are_skipped_listed_and_the_site_refusal_names_the_registry_setting(src, tmp_path, keydir):
    listing, base = P.windows_list()
    listing.push(src, "acme/win", "ltsc2019")  # the registry holds no foreign blob, as Docker Hub does not
    archive = build(src, tmp_path, keydir, "src.test/acme/win:ltsc2019")
    meta = meta_of(archive, keydir)
    [image] = meta.images
    [skipped] = image.skipped_layers
    assert skipped.digest == P.sha(base) and skipped.urls[0].startswith("https://mcr.microsoft.com/")
    assert "images/blobs/sha256/" + P.sha(base)[7:] not in meta.sizes
    assert image.digest == listing.digest  # the manifests and their digests are unchanged
    refusing = MemRegistry(SITE)
    with pytest.raises(RegistryError, match=r"validation\.manifests\.urls\.allow"):
        install(archive, keydir, tmp_path, refusing)
    allowing = MemRegistry(SITE, urls_allow=r"^https://mcr\.microsoft\.com/")
    result = install(archive, keydir, tmp_path, allowing, kit="kit2")
    assert result.push.foreign_skipped == [P.sha(base)]
    from installer.cli.install import text_install
    assert any("1 foreign layer not carried" in line and "acme/win" in line for line in text_install(result))
    assert allowing.manifest("src.test/acme/win", listing.children[0].digest)[0] == listing.children[0].data


# --- point 7: platform names as containerd reads them ------------------------------------------------------

@pytest.mark.parametrize("wanted, platform, match", [
    ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}, True),
    ("linux/arm64/v8", {"os": "linux", "architecture": "arm64"}, True),
    ("linux/amd64/v1", {"os": "linux", "architecture": "amd64"}, True),
    ("linux/arm/v7", {"os": "linux", "architecture": "arm"}, True),
    ("linux/arm", {"os": "linux", "architecture": "arm", "variant": "v6"}, True),
    ("linux/arm/v6", {"os": "linux", "architecture": "arm"}, False),
    ("linux/arm64/v8", {"os": "linux", "architecture": "amd64"}, False),
    ("linux/amd64", {"os": "linux", "architecture": "arm64"}, False),
])
def test_platform_names_are_normalised_as_containerd_does(wanted, platform, match):
    assert platform_matches(wanted, platform) is match


def test_a_docker_list_with_arm64_v8_is_chosen_by_linux_arm64_v8_and_by_linux_arm64(src, tmp_path, keydir):
    lst = P.docker_list("variants", ("linux/amd64", "linux/arm64/v8"))
    lst.push(src, "acme/app", "1.0")
    for wanted in (["linux/arm64/v8"], ["linux/arm64"]):
        archive = build(src, tmp_path / wanted[0].replace("/", "_"), keydir,
                        {"ref": "src.test/acme/app:1.0", "platforms": wanted})
        [image] = meta_of(archive, keydir).images
        assert image.digest == lst.child("linux/arm64/v8").digest


def test_a_platform_missing_from_an_index_of_artifacts_says_what_the_index_holds(src, tmp_path, keydir):
    art = P.oci_referrer(P.image("linux/amd64", "x"))
    doc = {"schemaVersion": 2, "mediaType": P.OCI_INDEX, "manifests": [dict(art.descriptor(),
                                                                            artifactType="application/spdx+json")]}
    index = P.Artifact(P.go_json(doc), P.OCI_INDEX, children=[art])
    for child in index.children:
        for data in child.blobs.values():
            src.put_blob("acme/art", data)
        src.put_manifest("acme/art", child.data, child.media_type)
    src.put_manifest("acme/art", index.data, index.media_type, "1.0")
    with pytest.raises(InvalidInput, match=r"is an index of 1 manifest with no platform to choose from "
                                           r"\(application/spdx\+json\), not linux/amd64"):
        build(src, tmp_path, keydir, {"ref": "src.test/acme/art:1.0", "platforms": ["linux/amd64"]})


# --- the lock file pins the referrers --------------------------------------------------------------------------

def test_the_lock_pins_referrers_so_a_locked_build_carries_exactly_those(src, tmp_path, keydir):
    from bundler.build import build as do_build
    from bundler.stage.stage import SourceOptions, lock
    from tests.helpers.membundle import manifest_yaml

    ec, ed = P.keys()
    img = P.image("linux/amd64", "locked")
    img.push(src, "acme/app", "1.0")
    first = P.cosign_signature(img.digest, [ec])
    first.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    m = manifest_yaml(tmp_path / "src", "demo", "1.0.0", ["src.test/acme/app:1.0"])

    def opts(mode="default", cache="cache"):
        return SourceOptions(cache_dir=str(tmp_path / cache), insecure=("src.test",), show_progress=False,
                             transport=src, lock_mode=mode)
    lock(str(m), opts())
    locked = json.loads((tmp_path / "src" / "bundle.lock.json").read_text())
    assert [r["digest"] for r in locked["images"]["src.test/acme/app:1.0"]["referrers"]] == [first.digest]
    # upstream, cosign appends a second signing: the tag now names another manifest
    second = P.cosign_signature(img.digest, [ec, ed])
    second.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    before = len(src.requests("GET", r"/manifests/sha256-"))
    out = do_build(str(m), str(keydir / "ed" / "bundle.key"), str(tmp_path / "out"), opts=opts("locked"))
    [image] = meta_of(out["archive"], keydir).images
    assert [r.digest for r in image.referrers] == [first.digest]  # what the lock says, fetched by digest
    assert len(src.requests("GET", r"/manifests/sha256-")) == before  # no looking by tag
    # the pinned manifest gone upstream (and not in a fresh cache): --locked is exit 5 naming it; without
    # --locked, a warning and the build goes on without it
    src._manifests["acme/app"].pop(first.digest)
    with pytest.raises(ContentMismatch) as err:
        do_build(str(m), str(keydir / "ed" / "bundle.key"), str(tmp_path / "out2"), opts=opts("locked", "c2"))
    assert err.value.exit_code == 5 and first.digest in " ".join(err.value.problems)
    out = do_build(str(m), str(keydir / "ed" / "bundle.key"), str(tmp_path / "out3"), opts=opts(cache="c3"))
    assert any(first.digest in w for w in out["warnings"])


# --- hostile answers -----------------------------------------------------------------------------------------

def test_a_runaway_referrers_list_is_capped_and_the_build_says_so(src, tmp_path, keydir, monkeypatch):
    import bundler.pull.referrers as referrers

    monkeypatch.setattr(referrers, "MAX_REFERRERS", 2)
    img = P.image("linux/amd64", "many")
    img.push(src, "acme/app", "1.0")
    many = [P.oci_referrer(img, content=b'{"n":%d}' % n) for n in range(5)]
    for r in many:
        r.push(src, "acme/app")
    P.fallback_index(many).push(src, "acme/app", fallback_tag(img.digest))
    from bundler.build import build as do_build
    from bundler.stage.stage import SourceOptions
    from tests.helpers.membundle import manifest_yaml

    m = manifest_yaml(tmp_path / "src", "demo", "1.0.0", ["src.test/acme/app:1.0"])
    out = do_build(str(m), str(keydir / "ed" / "bundle.key"), str(tmp_path / "out"),
                   opts=SourceOptions(cache_dir=str(tmp_path / "cache"), insecure=("src.test",), show_progress=False,
                                      transport=src))
    [image] = meta_of(out["archive"], keydir).images
    assert len(image.referrers) == 2
    assert sum("more than 2 referrers" in w for w in out["warnings"]) == 3


def test_a_site_tag_in_the_fallback_place_that_is_not_an_index_is_refused_not_overwritten(src, tmp_path, keydir):
    img, _sbom = referred(src, "squatted")
    archive = build(src, tmp_path, keydir, "src.test/acme/app:1.0")
    site = MemRegistry(SITE)
    squatter = P.image("linux/amd64", "squatter")
    squatter.push(site, "src.test/acme/app", fallback_tag(img.digest))
    with pytest.raises(RegistryError, match="not the OCI index of the referrers"):
        install(archive, keydir, tmp_path, site)
    assert site.tags("src.test/acme/app")[fallback_tag(img.digest)] == squatter.digest


def test_cosign_tags_are_found_through_paged_tag_lists_or_one_by_one_when_listing_is_refused(tmp_path, keydir):
    from tests.helpers.memregistry import status

    ec, _ = P.keys()
    for case in ("paged", "refused"):
        src = MemRegistry("src.test", tags_page=2)
        img = P.image("linux/amd64", case)
        img.push(src, "acme/app", "1.0")
        for n in range(4):
            P.image("linux/amd64", "%s-%d" % (case, n)).push(src, "acme/app", "z%d" % n)  # tags after cosign's
        sig = P.cosign_signature(img.digest, [ec])
        sig.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
        if case == "refused":
            src.fail(status(403), path=r"/tags/list")
        archive = build(src, tmp_path / case, keydir, "src.test/acme/app:1.0")
        [image] = meta_of(archive, keydir).images
        assert [r.digest for r in image.referrers] == [sig.digest], case
        asked = [s.path for s in src.requests("GET", r"/manifests/sha256-")]
        if case == "paged":
            assert len(src.requests("GET", r"/tags/list")) == 3  # 6 tags, 2 a page
            assert asked == ["/v2/acme/app/manifests/" + P.cosign_tag(img.digest, "sig")]  # only what exists
        else:
            assert len(asked) == 4  # .sig, .att, .sbom and the fallback tag, one by one


def test_a_hostile_signature_payload_nested_past_the_parser_is_no_signature_not_a_traceback(src, tmp_path, keydir):
    """A registry serves a .sig whose payload is 60 000 nested arrays (under the 64 KiB payload cap): json raises
    RecursionError, not ValueError. It is not a signature of the image: exit 4, one sentence."""
    ec, _ = P.keys()
    img = P.image("linux/amd64", "nested")
    img.push(src, "acme/app", "1.0")
    payload = b"[" * 30000 + b"]" * 30000
    sig = P._cosign_manifest([(P.SIMPLE_SIGNING, payload,
                               {P.COSIGN_SIG_ANNOTATION: "MEUCIQDx" + "A" * 60 + "=="})])
    sig.push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    pub = write_pub(tmp_path, ec)
    with pytest.raises(TrustError, match="no valid signature") as err:
        build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    assert err.value.exit_code == 4


def test_a_runaway_tags_list_is_not_held_the_caller_asks_tag_by_tag():
    from installer.site.registry import Registry

    src = MemRegistry("src.test", tags_page=2)
    img = P.image("linux/amd64", "runaway")
    for n in range(7):
        img.push(src, "acme/app", "t%d" % n)
    client = Registry("src.test", insecure=True, transport=src, policy=quick_policy(Sleeps()))
    assert client.tags("acme/app") == ["t%d" % n for n in range(7)]
    assert client.tags("acme/app", max_tags=3) is None      # more tags than it will hold
    assert client.tags("acme/app", max_pages=2) is None     # more pages than it will follow


def test_a_recorded_public_key_that_is_not_ascii_fails_verify_with_exit_5(src, tmp_path, keydir, monkeypatch):
    import dataclasses

    import bundler.pull.signedby as signedby

    ec, _ = P.keys()
    img = P.image("linux/amd64", "oddkey")
    img.push(src, "acme/app", "1.0")
    P.cosign_signature(img.digest, [ec]).push(src, "acme/app", P.cosign_tag(img.digest, "sig"))
    pub = write_pub(tmp_path, ec)
    real = signedby.UpstreamSignature

    def odd(*args, **kw):
        return dataclasses.replace(real(*args, **kw),
                                   public_key="-----BEGIN PUBLIC KEY-----\nM\u00ffC\n-----END PUBLIC KEY-----\n")
    monkeypatch.setattr(signedby, "UpstreamSignature", odd)
    archive = build(src, tmp_path, keydir, {"ref": "src.test/acme/app:1.0", "signed-by": pub})
    with pytest.raises(ContentMismatch, match="upstream signature recorded in bundle.json does not hold") as err:
        meta_of(archive, keydir)
    assert "is not a usable public key" in err.value.problems[0]
