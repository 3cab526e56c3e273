"""installer/format/model.py against schemas/bundle.schema.json (issue 11 point 2).

- Round trip: a generated bundle head -> to_dict -> valid for the schema -> from_dict (and parse_meta of its
  canonical bytes) -> the same head, and the same bytes again.
- Mutations: one change to a generated document that the format forbids -> from_dict refuses it with
  InvalidInput (exit 3), naming the changed value by its JSON path; the schema refuses it too whenever a
  schema can say so (types, patterns, required keys), while the rest (sums, order, membership, uniqueness)
  is what only the installer's own checks catch.
- Informative and optional keys left out -> from_dict(doc).to_dict() gives back exactly doc.
- The schema's member-path pattern and installer/format/paths.py agree on every path.
- DELTA.json and receipts round-trip too; a damaged receipt is exit 9 naming the file and the value.
"""

import copy
import datetime
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.plan.schemas import validator
from installer.errors import InvalidInput, LocalEnvironmentError
from installer.format.meta import canonical_json, parse_meta
from installer.format.model import (FOUND_BY, REFERRER_KINDS, BundleFile, BundleHead, Chart, ChartImage, ChartOci,
                                    DeltaBase, DeltaDoc, Image, Member, Outcome, Phase, PhaseRecord, PlatformManifest,
                                    ReceiptRecord, Referrer, SiteOptions, SkippedLayer, Status, Tenant, Tool,
                                    UpstreamSignature, receipt_file, referrer_tag)
from installer.format.oci import NONDISTRIBUTABLE_TYPES
from installer.format.paths import (blob_path, c_sorted, chart_path, chart_values_path, is_reserved, path_problem,
                                    tenant_path)
from installer.format.reference import parse

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import label, odd_text, prop, typed

SCHEMA = validator("bundle.schema.json")
OTHER = "sha256:" + "e" * 64  # a digest no generated image keeps
OTHER_SIG = referrer_tag(OTHER, "sig")


def schema_errors(doc) -> list:
    return [e.message for e in SCHEMA.iter_errors(doc)]


# --- strategies: a valid head, built the way the builder builds one ----------------------------------------

hex64 = st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())
digest = hex64.map(lambda h: "sha256:" + h)
size = st.integers(0, 2 ** 40)
name = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
semver = st.builds(lambda a, b, c, pre, build: "%d.%d.%d%s%s" % (a, b, c, pre, build),
                   st.integers(0, 3000), st.integers(0, 99), st.integers(0, 99),
                   st.sampled_from(["", "-rc.1", "-alpha", "-0.3.7"]), st.sampled_from(["", "+b5", "+build.1-x"]))
created = st.datetimes(min_value=datetime.datetime(1970, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
text = st.one_of(odd_text, st.sampled_from(["", "offline-bundle", "0.1.0", "registry-1.docker.io/prom/prometheus"]))
media_type = st.sampled_from(["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                              "application/vnd.docker.distribution.manifest.v2+json"])
platform = st.sampled_from(["linux/amd64", "linux/arm64", "linux/arm/v7", "unknown/unknown"])
plain_path = st.from_regex(r"(config|compose|bin|etc)(/[a-z0-9_][a-z0-9._-]{0,12}){1,3}", fullmatch=True)


@st.composite
def image_ref(draw) -> str:
    host = draw(st.sampled_from(["docker.io", "ghcr.io", "registry.example:5000", "index.docker.io", ""]))
    path = "/".join(draw(st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=3)))
    text = (host + "/" if host else "") + path
    if draw(st.booleans()):
        text += ":" + draw(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True))
    if draw(st.booleans()):
        text += "@" + draw(digest)
    return str(parse(text))  # normalised, as the builder records it


@st.composite
def image(draw) -> Image:
    ref = parse(draw(image_ref()))
    manifests = tuple(PlatformManifest(draw(digest), draw(media_type), draw(platform))
                      for _ in range(draw(st.integers(0, 3))))
    top = draw(digest)
    kept = [top] + [m.digest for m in manifests]
    referrers = []
    for _ in range(draw(st.integers(0, 3))):
        subject = draw(st.sampled_from(kept))
        kind = draw(st.sampled_from(REFERRER_KINDS))
        tag = draw(st.sampled_from([None, referrer_tag(subject, "sig"), referrer_tag(subject, "att")]))
        referrers.append(Referrer(draw(digest), draw(media_type), draw(size), subject, kind, tag,
                                  draw(st.sampled_from(["application/vnd.dev.cosign.artifact.sig.v1+json", None])),
                                  draw(st.sampled_from(list(FOUND_BY))),
                                  absent=frozenset(["tag"] if tag is None else [])))
    referrers = list({r.digest: r for r in referrers}.values())
    signatures = []
    if draw(st.booleans()):
        carried = [r.digest for r in referrers if r.kind == "signature"]
        sig = draw(st.sampled_from(carried + [None]))
        signatures.append(UpstreamSignature("SHA256:" + draw(hex64), draw(st.sampled_from(["ed25519", "ecdsa-p256"])),
                                            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
                                            top, sig, draw(text), None, draw(digest) if sig else None))
    skipped = tuple(SkippedLayer(draw(digest), draw(size), NONDISTRIBUTABLE_TYPES[0], [draw(text)])
                    for _ in range(draw(st.integers(0, 2))))
    lists = {"referrers": referrers, "signatures": signatures, "skipped_layers": skipped}
    return Image(str(ref), top, draw(media_type), draw(size), manifests, draw(st.booleans()),
                 draw(st.sampled_from(["registry", "docker-daemon"])), repository=ref.repository, tag=ref.tag,
                 index_digest=draw(st.one_of(st.none(), digest)),
                 platforms=draw(st.one_of(st.just("all"), st.lists(platform, min_size=1, max_size=3, unique=True))),
                 fetched_from=draw(text), referrers=tuple(referrers), signatures=tuple(signatures),
                 skipped_layers=skipped, absent=frozenset(k for k, v in lists.items() if not v))


@st.composite
def chart(draw, chart_name: str) -> Chart:
    version = draw(semver).split("+")[0]  # a member path has no '+'; nor, then, a chart version
    images = []
    for _ in range(draw(st.integers(0, 3))):
        style = draw(st.sampled_from([None, "repository-tag", "registry-repository-tag", "image"]))
        values = draw(st.from_regex(r"[A-Za-z0-9_-]{1,6}(\.[A-Za-z0-9_-]{1,6}){0,2}", fullmatch=True))
        images.append(ChartImage(values, draw(image_ref()), style or "repository-tag",
                                 frozenset({"style"}) if style is None else frozenset()))
    return Chart(chart_name, version, chart_path(chart_name, version), draw(hex64),
                 ChartOci(draw(digest), draw(media_type), draw(size)), tuple(images),
                 draw(st.sampled_from([None, chart_values_path(chart_name, version)])),
                 source=draw(st.sampled_from(["repo", "oci", "path"])), origin=draw(text), fetched_from=draw(text),
                 size=draw(size), index_digest=draw(st.one_of(st.none(), hex64)))


@st.composite
def head(draw) -> BundleHead:
    """Files, tenants, images and charts first; then the members they need, plus others, in C order."""
    executable = {}
    for path in draw(st.lists(plain_path, max_size=4, unique=True)):
        executable[path] = draw(st.booleans())
    files = [BundleFile(p, draw(hex64), draw(size), executable[p], source=draw(text)) for p in c_sorted(executable)]
    tenants = [Tenant(c, tenant_path(c), source=draw(text), sha256=draw(hex64), size=draw(size))
               for c in sorted(draw(st.lists(st.sampled_from(["loki", "tempo", "x-1"]), unique=True)))]
    images = draw(st.lists(image(), max_size=3, unique_by=lambda i: i.ref))
    charts = [draw(chart(n)) for n in sorted(draw(st.lists(name, max_size=2, unique=True)))]
    paths = {t.path: False for t in tenants}
    paths.update(executable)
    for c in charts:
        paths[c.path] = False
        paths.update({c.values: False} if c.values else {})
    for i in images:
        paths[blob_path(i.digest)] = False
    for extra in draw(st.lists(plain_path, max_size=3)):
        paths.setdefault(extra, draw(st.booleans()))
    members = tuple(Member(p, draw(size), paths[p]) for p in c_sorted(paths))
    mirrors = [{"source": draw(text), "mirror": draw(text), "refs": draw(st.lists(text, max_size=2))}
               for _ in range(draw(st.integers(0, 2)))]
    lock = draw(st.one_of(st.sampled_from([{"status": "none"}, {"status": "ignored"}]),
                          st.builds(lambda s, h: {"status": s, "sha256": h},
                                    st.sampled_from(["used", "stale"]), hex64)))
    return BundleHead(draw(name), draw(semver), draw(created), Tool("offline-bundle", draw(text)), members,
                      sum(m.size for m in members), tuple(files), tuple(tenants),
                      tuple(sorted(images, key=lambda i: i.ref)), tuple(charts), mirrors, lock)


# --- round trip -------------------------------------------------------------------------------------------

@prop(150)
@given(head())
def test_model_to_dict_is_schema_valid_and_reads_back_equal(model):
    doc = model.to_dict()
    assert schema_errors(doc) == []
    assert BundleHead.from_dict(doc) == model
    data = canonical_json(doc)
    again = parse_meta(data)
    assert again == model and canonical_json(again.to_dict()) == data
    assert again.sizes == {m.path: m.size for m in model.members}


def test_the_golden_bundle_json_is_schema_valid_and_reads_back_byte_identical():
    from conftest import REPO

    data = (REPO / "tests" / "golden" / "representative.bundle.json").read_bytes()
    assert schema_errors(json.loads(data)) == []
    assert canonical_json(parse_meta(data).to_dict()) == data


# --- mutations the format forbids ---------------------------------------------------------------------------

def _at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


def _text(path) -> str:
    out = ""
    for step in path:
        out += "[%d]" % step if isinstance(step, int) else ("." if out else "") + step
    return out


def _mutations(doc):
    """(description, change(doc), JSON path the message names, the schema sees it too) for this document."""
    out = []
    objects = [(("tool",), ("name", "version")), ((), ("name", "version", "created", "members", "total_size",
                                                        "files", "tenants", "images", "charts"))]
    objects += [(("members", i), ("path", "size")) for i in range(len(doc["members"]))]
    objects += [(("files", i), ("target", "sha256", "size")) for i in range(len(doc["files"]))]
    objects += [(("images", i), ("ref", "digest", "media_type", "size", "derived", "source", "manifests"))
                for i in range(len(doc["images"]))]
    objects += [(("charts", i), ("name", "version", "path", "sha256", "oci", "images"))
                for i in range(len(doc["charts"]))]
    objects += [(("tenants", c), ("path",)) for c in doc["tenants"]]
    for parent, keys in objects:
        for key in keys:
            out.append(("missing " + _text(parent + (key,)), lambda d, p=parent, k=key: _at(d, p).pop(k),
                        _text(parent + (key,)) + " is missing", True))
    wrong = {"name": "Not-A-Name", "version": "1.0", "created": "2026-11-26", "total_size": "1"}
    for key, value in wrong.items():
        out.append(("bad " + key, lambda d, k=key, v=value: d.update({k: v}), key, True))
    for i in range(len(doc["members"])):
        out.append(("bad path", lambda d, i=i: _at(d, ("members", i)).update(path="a//b"),
                    "members[%d].path" % i, True))
        out.append(("negative size", lambda d, i=i: _at(d, ("members", i)).update(size=-1),
                    "members[%d].size" % i, True))
        out.append(("executable 1", lambda d, i=i: _at(d, ("members", i)).update(executable=1),
                    "members[%d].executable" % i, True))
    if doc["members"]:
        out.append(("total_size + 1", lambda d: d.update(total_size=d["total_size"] + 1), "total_size", False))
    if len(doc["members"]) > 1:
        out.append(("members unsorted", lambda d: d["members"].reverse(), "members", False))
    for i in range(len(doc["files"])):
        out.append(("file not a member", lambda d, i=i: _at(d, ("files", i)).update(target="zz/not-listed"),
                    "files[%d].target" % i, False))
        out.append(("file sha256", lambda d, i=i: _at(d, ("files", i)).update(sha256="A" * 64), "files[%d].sha256" % i,
                    True))
    other = "tenants/zz.yaml"
    for c in doc["tenants"]:
        out.append(("tenant elsewhere", lambda d, c=c: _at(d, ("tenants", c)).update(path=other), "tenants.%s.path" % c,
                    False))
    for i, image in enumerate(doc["images"]):
        out.append(("image digest", lambda d, i=i: _at(d, ("images", i)).update(digest="sha256:xyz"),
                    "images[%d].digest" % i, True))
        out.append(("image source", lambda d, i=i: _at(d, ("images", i)).update(source="ftp"), "images[%d].source" % i,
                    True))
        out.append(("image twice", lambda d, i=i: d["images"].append(copy.deepcopy(d["images"][i])), "images", False))
        out.append(("image ref", lambda d, i=i: _at(d, ("images", i)).update(ref="Not A Ref"), "images[%d].ref" % i,
                    False))
        for j in range(len(image.get("referrers", []))):
            out.append(("referrer of a manifest not kept",
                        lambda d, i=i, j=j: _at(d, ("images", i, "referrers", j)).update(subject=OTHER, tag=None),
                        "images[%d].referrers[%d].subject" % (i, j), False))
            out.append(("referrer kind", lambda d, i=i, j=j: _at(d, ("images", i, "referrers", j)).update(kind="x"),
                        "images[%d].referrers[%d].kind" % (i, j), True))
            out.append(("referrer tag of another subject",
                        lambda d, i=i, j=j: _at(d, ("images", i, "referrers", j)).update(tag=OTHER_SIG),
                        "images[%d].referrers[%d].tag" % (i, j), False))
        for j in range(len(image.get("signatures", []))):
            out.append(("signature not carried",
                        lambda d, i=i, j=j: _at(d, ("images", i, "signatures", j)).update(signature=OTHER,
                                                                                          payload=OTHER),
                        "images[%d].signatures[%d].signature" % (i, j), False))
            out.append(("signature key", lambda d, i=i, j=j: _at(d, ("images", i, "signatures", j)).update(key="k"),
                        "images[%d].signatures[%d].key" % (i, j), True))
        for j in range(len(image.get("skipped_layers", []))):
            out.append(("skipped layer not foreign",
                        lambda d, i=i, j=j: _at(d, ("images", i, "skipped_layers", j)).update(
                            media_type="application/vnd.oci.image.layer.v1.tar+gzip"),
                        "images[%d].skipped_layers[%d].media_type" % (i, j), False))
        for j in range(len(image["manifests"])):
            out.append(("manifest digest", lambda d, i=i, j=j: _at(d, ("images", i, "manifests", j)).update(digest=7),
                        "images[%d].manifests[%d].digest" % (i, j), True))
    for i, c in enumerate(doc["charts"]):
        out.append(("chart oci digest", lambda d, i=i: _at(d, ("charts", i, "oci")).update(digest="md5:1"),
                    "charts[%d].oci.digest" % i, True))
        out.append(("chart path", lambda d, i=i: _at(d, ("charts", i)).update(path="charts/other-1.0.0.tgz"),
                    "charts[%d].path" % i, False))
        out.append(("chart values", lambda d, i=i: _at(d, ("charts", i)).update(values="charts/x.values.json"),
                    "charts[%d].values" % i, False))
        for j in range(len(c["images"])):
            out.append(("chart image style", lambda d, i=i, j=j: _at(d, ("charts", i, "images", j)).update(style="x"),
                        "charts[%d].images[%d].style" % (i, j), True))
    return out


@prop(300)
@given(head(), st.data())
def test_a_forbidden_change_is_refused_naming_its_json_path(model, data):
    doc = model.to_dict()
    what, change, path, schema_sees_it = data.draw(st.sampled_from(_mutations(doc)), label="mutation")
    bad = copy.deepcopy(doc)
    change(bad)
    out = typed(BundleHead.from_dict, bad)
    label(out, what.split(" ")[0])
    assert isinstance(out.error, InvalidInput) and out.error.exit_code == 3, (what, out.value)
    assert out.error.message.startswith("bundle.json: ") and path in out.error.message, (what, out.error.message)
    if schema_sees_it:
        assert schema_errors(bad), what


@pytest.mark.parametrize("fmt", [2, "1", None, True])
def test_another_format_is_refused_before_anything_else(fmt):
    doc = {"format": fmt, "name": "NOT A NAME"}
    with pytest.raises(InvalidInput) as exc:
        BundleHead.from_dict(doc)
    assert "reads format 1 only" in exc.value.message and repr(fmt) in exc.value.message
    assert schema_errors(doc)


# --- absent optional keys ------------------------------------------------------------------------------------

OPTIONAL = {(): ("mirrors", "lock"), ("files",): ("source", "executable"), ("tenants",): ("source", "sha256", "size"),
            ("images",): Image.INFORMATIVE, ("charts",): ("values",) + Chart.INFORMATIVE,
            ("charts", "images"): ("style",)}


@prop(150)
@given(head(), st.data())
def test_a_document_without_its_optional_keys_reads_back_exactly(model, data):
    doc = model.to_dict()
    drop = data.draw(st.sets(st.sampled_from(sorted({k for keys in OPTIONAL.values() for k in keys}))), label="drop")
    for key in drop & set(OPTIONAL[()]):
        del doc[key]
    for f in doc["files"]:
        for key in drop & {"source"} | (drop & {"executable"} if not f["executable"] else set()):
            del f[key]
    for t in doc["tenants"].values():
        for key in drop & set(OPTIONAL[("tenants",)]):
            del t[key]
    for i in doc["images"]:
        for key in drop & set(Image.INFORMATIVE):
            del i[key]
    for c in doc["charts"]:
        for key in drop & set(OPTIONAL[("charts",)]):
            del c[key]
        for ci in c["images"]:
            if "style" in drop:
                ci.pop("style", None)
    for m in doc["members"]:
        if not m["executable"] and data.draw(st.booleans(), label="drop executable"):
            del m["executable"]
    read = BundleHead.from_dict(doc)
    assert read.to_dict() == doc
    assert read.sizes == {m["path"]: m["size"] for m in doc["members"]}


# --- path rules: the schema and installer/format/paths.py agree ----------------------------------------------

path_text = st.one_of(plain_path, st.text(alphabet="ab.-_/A9 \u00e9", max_size=12),
                      st.sampled_from(["a/../b", "./a", "a/.", "..", ".", "a//b", "/a", "a/", "x" * 256, "y" * 255,
                                       "/".join(["z" * 200] * 6), ".hidden", "a..b", "-"]))


@prop(300)
@given(path_text)
def test_the_schema_and_the_installer_agree_on_member_paths(path):
    member = {"$ref": "#/$defs/memberPath", "$defs": SCHEMA.schema["$defs"]}
    schema_ok = not list(type(SCHEMA)(member).iter_errors(path))
    assert schema_ok == (path_problem(path) == ""), path


def test_reserved_names_are_not_file_targets_in_the_model():
    members = (Member("tenants/loki.yaml", 1),)
    doc = BundleHead("a", "1.0.0", "2026-11-26T00:00:00Z", Tool("t", "1"), members, 1,
                     (BundleFile("tenants/loki.yaml", "a" * 64, 1),), (), (), ()).to_dict()
    assert is_reserved("tenants/loki.yaml")
    with pytest.raises(InvalidInput) as exc:
        BundleHead.from_dict(doc)
    assert "files[0].target tenants/loki.yaml falls under a reserved name" in exc.value.message


# --- DELTA.json and receipts ---------------------------------------------------------------------------------

@prop(100)
@given(st.lists(st.builds(DeltaBase, name, semver, hex64), max_size=3), st.dictionaries(plain_path, size, max_size=4))
def test_a_delta_document_reads_back_equal(base, omitted):
    delta = DeltaDoc.of(base, omitted)
    assert list(delta.omitted) == c_sorted(omitted) and delta.omitted_bytes == sum(omitted.values())
    assert DeltaDoc.from_dict(json.loads(canonical_json(delta.to_dict()))) == delta


@st.composite
def receipt(draw) -> ReceiptRecord:
    phases = tuple(PhaseRecord.new(p, draw(st.sampled_from([Status.DONE, Status.SKIPPED, Status.FAILED])), draw(text),
                                   "2026-11-26T00:00:00Z")
                   for p in draw(st.lists(st.sampled_from(list(Phase)), max_size=6)))
    options = {draw(text): SiteOptions(tuple(draw(st.lists(text, max_size=2))),
                                       draw(st.sampled_from([None, "/ca.pem"])), draw(st.booleans()))
               for _ in range(draw(st.integers(0, 2)))}
    return ReceiptRecord(draw(text), "2026-11-26T00:00:00Z", draw(st.one_of(st.none(), text)),
                         draw(st.one_of(st.none(), name)), draw(st.one_of(st.none(), semver)),
                         draw(st.one_of(st.none(), hex64)), draw(st.one_of(st.none(), text)),
                         draw(st.one_of(st.none(), semver)), draw(st.one_of(st.none(), text)), phases,
                         draw(st.sampled_from([Outcome.RUNNING, Outcome.INSTALLED, Outcome.FAILED,
                                               Outcome.ROLLED_BACK])),
                         draw(st.one_of(st.none(), st.just({"class": "trust", "message": "m", "problems": []}))),
                         draw(st.sampled_from([None, "rollback"])),
                         draw(st.one_of(st.none(), st.just({"s": {"n": 1}}))),
                         options, None, draw(st.one_of(st.none(), st.just({"folder": "deploy/x"}))))


@prop(100)
@given(receipt())
def test_a_receipt_reads_back_equal(record):
    where = receipt_file("/kit/.state/receipts/r.json", "/kit/.state/receipts")
    again = ReceiptRecord.from_dict(json.loads(canonical_json(record.to_dict())), where)
    assert again == record
    assert again.done(Phase.PROMOTE) == any(p.phase == 2 and p.status == "done" for p in record.phases)


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(receipt=2), "is not a receipt"),
    (lambda d: d.update(name="Bad Name"), "is damaged: name is not a bundle name"),
    (lambda d: d.update(version="1.0"), "is damaged: version is not SemVer"),
    (lambda d: d.update(phases={}), "is damaged: phases is not a list"),
    (lambda d: d["phases"].append({"phase": "2", "status": "done"}),
     "is damaged: phases[1].phase is not a whole number"),
    (lambda d: d["phases"].append({"phase": 2, "status": None}), "is damaged: phases[1].status is not a string"),
    (lambda d: d.update(site_options={"127.0.0.1:5000/corp": {"insecure": "all"}}),
     "is damaged: site_options['127.0.0.1:5000/corp'] holds unreadable options"),
    (lambda d: d.update(site_options=["x"]), "is damaged: site_options is not an object"),
])
def test_a_damaged_receipt_is_exit_9_naming_the_file_and_the_value(change, words):
    record = ReceiptRecord("a.bundle.tar.zst", "2026-11-26T00:00:00Z", name="demo", version="1.0.0",
                           phases=(PhaseRecord.new(Phase.VERIFY_AND_STAGE, Status.DONE, "", "t"),))
    doc = record.to_dict()
    change(doc)
    with pytest.raises(LocalEnvironmentError) as exc:
        ReceiptRecord.from_dict(doc, receipt_file("/kit/.state/receipts/r.json", "/kit/.state/receipts"))
    assert exc.value.exit_code == 9
    assert exc.value.message.startswith("the receipt /kit/.state/receipts/r.json ") and words in exc.value.message


def test_phases_keep_their_numbers_and_names():
    assert [(int(p), p.label) for p in Phase] == [
        (1, "verify-and-stage"), (2, "promote"), (3, "push-and-load"), (4, "render"), (5, "switch-current"),
        (6, "tags-and-apply")]
