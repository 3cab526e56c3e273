"""The signed provenance statement of every build (issue 14 point 2): attestations/provenance.dsse.json, an in-toto
Statement v1 with a SLSA Provenance v1 predicate in a DSSE envelope signed with the bundle key, listed in SHA256SUMS.

- On the default bundle (images, charts, files, tenants): `verify` checks it and says what it holds; its subjects
  are exactly the files SHA256SUMS lists and the image manifests bundle.json lists; its build definition names the
  manifest's sha256, the lock file's status and the mirrors used; its times are the build time.
- An independent DSSE implementation (securesystemslib, test-only) verifies the envelope taken from the archive.
- docs/VERIFY.md step 6, run verbatim on the default bundle (printf, base64, jq, openssl), passes; the by-hand
  procedure on files-only bundles runs in test_verify_by_hand.py.
- A builder names itself with OFFLINE_BUNDLE_BUILDER_ID; two builds write the same envelope (Ed25519 and the
  bundler's RFC 6979 ECDSA are deterministic).
- A compromised builder holding the key still cannot make an inconsistent statement pass: a statement that misses
  or adds a subject is exit 5, one signed by another key or of another type exit 4, garbage exit 3, and an install
  of it changes nothing in the kit.
"""

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, write_manifest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from bundler.seal.keys import load_signer
from installer.trust import dsse
from installer.trust.signing import load_public_key
from tests.helpers.craft import edit_meta, get, read_entries, resign, write_archive

ENVELOPE = "attestations/provenance.dsse.json"


def _statement(data: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(data)["payload"]))


def _sums(data: bytes) -> dict:
    return {line[66:]: line[:64] for line in data.decode().splitlines()}


def test_the_default_bundle_carries_a_verified_statement(ob, keydir, default_bundle):
    v = ob("verify", default_bundle, "--trust", keydir / "ed" / "bundle.pub", "--json")
    assert v.rc == 0, v
    prov = v.json["result"]["provenance"]
    entries = {e.path: e.data for e in read_entries(default_bundle)}
    meta = json.loads(entries["bundle.json"])
    sums = _sums(entries["SHA256SUMS"])
    assert ENVELOPE in sums and ENVELOPE in {m["path"] for m in meta["members"]}
    images = {(i["ref"], d) for i in meta["images"] for d in [i["digest"]] + [m["digest"] for m in i["manifests"]]}
    assert prov["verified"] is True and prov["signer"] == v.json["result"]["signer"]
    assert prov["subjects"] == len(sums) - 2 + len(images)  # all but bundle.json and the envelope, and every manifest
    assert prov["started"] == prov["finished"] == meta["created"]
    manifest = REPO / "manifests" / "telemetry-storage.yaml"
    assert prov["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert prov["builder_id"] == "urn:offline-bundle:builder:local"
    assert prov["mirrors"] and all(" -> " in m for m in prov["mirrors"])

    statement = _statement(entries[ENVELOPE])
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {(s["name"], s["digest"]["sha256"]) for s in statement["subject"]}
    files = {(p, h) for p, h in sums.items() if p not in ("bundle.json", ENVELOPE)}
    assert subjects == files | {(ref, d.split(":", 1)[1]) for ref, d in images}
    platforms = {s["annotations"]["platform"] for s in statement["subject"] if "annotations" in s}
    assert platforms >= {"linux/amd64"}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["manifest"] == {"name": manifest.name,
                                                             "sha256": prov["manifest_sha256"]}
    deps = definition["resolvedDependencies"]
    assert {d["uri"] for d in deps if d.get("uri", "").startswith("oci://")} == \
        {"oci://" + i["ref"] for i in meta["images"]}
    assert {d["name"] for d in deps if d.get("name", "").endswith(".tgz")} == \
        {"%s-%s.tgz" % (c["name"], c["version"]) for c in meta["charts"]}
    # the text output says it in one line
    text = ob("verify", default_bundle, "--trust", keydir / "ed" / "bundle.pub")
    assert "provenance: attestations/provenance.dsse.json verified (DSSE signature by SHA256:" in text.out


def test_securesystemslib_verifies_the_envelope_from_the_archive(keydir, default_bundle):
    data = get(read_entries(default_bundle), ENVELOPE).data
    public = serialization.load_pem_public_key((keydir / "ed" / "bundle.pub").read_bytes())
    fingerprint = load_public_key(str(keydir / "ed" / "bundle.pub")).fingerprint  # the keyid the envelope names
    key = SSlibKey.from_crypto(public, keyid=fingerprint, scheme="ed25519")
    env = SslibEnvelope.from_dict(json.loads(data))
    assert list(env.verify([key], 1)) == [fingerprint]
    assert env.payload_type == "application/vnd.in-toto+json"


def test_verify_md_step_6_by_hand_on_the_default_bundle(keydir, default_bundle, tmp_path):
    """The whole of docs/VERIFY.md (steps 0-6) on a bundle with images and charts; then one subject dropped."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("verify_md", REPO / "scripts" / "verify_md.py")
    verify_md = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify_md)
    script = verify_md.procedure("ed25519")
    assert "provenance.pae" in script and "image-subjects.txt" in script
    env = {"B": str(default_bundle), "PUB": str(keydir / "ed" / "bundle.pub"), "PATH": "/usr/bin:/bin"}
    work = tmp_path / "ok"
    work.mkdir()
    ok = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                        text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert ok.stdout.count("Signature Verified Successfully") == 2  # SHA256SUMS, then the statement
    assert '"builder": "urn:offline-bundle:builder:local"' in ok.stdout
    assert (work / "provenance.pae").read_bytes() == dsse.pae(dsse.IN_TOTO, (work / "statement.json").read_bytes())
    # A builder holding the key drops one subject and re-signs everything: only step 6's diff can catch it.
    key = keydir / "ed" / "bundle.key"
    first_file = next(line[66:] for line in get(read_entries(default_bundle), "SHA256SUMS").data.decode().splitlines()
                      if line[66:] not in ("bundle.json", ENVELOPE))
    entries = _reenvelope(read_entries(default_bundle), key, change=lambda st: st.update(
        subject=[x for x in st["subject"] if x["name"] != first_file]))
    bad = write_archive(resign(entries, key), tmp_path / "bad.bundle.tar.zst")
    work = tmp_path / "bad"
    work.mkdir()
    failed = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=dict(env, B=str(bad)),
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and ok.stdout.count("Signature Verified Successfully") == 2
    assert "< %s  %s" % (hashlib.sha256(get(entries, first_file).data).hexdigest(), first_file) in failed.stdout


@pytest.fixture
def small(ob, keydir, tmp_path):
    src = write_manifest(tmp_path / "src")
    r = ob("build", src, "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    return src, Path(r.json["result"]["archive"])


def test_builder_id_and_reproducible_bytes(ob, keydir, tmp_path, small):
    src, first = small
    again = ob("build", src, "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "again", "--json")
    assert get(read_entries(Path(again.json["result"]["archive"])), ENVELOPE).data == \
        get(read_entries(first), ENVELOPE).data
    ec = [ob("build", src, "--key", keydir / "ec" / "bundle.key", "--out", tmp_path / ("ec%d" % i), "--json")
          for i in (1, 2)]
    assert ec[0].json["result"]["bundle_id"] == ec[1].json["result"]["bundle_id"]  # RFC 6979: no random nonce
    named = ob("build", src, "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "ci", "--json",
               env={"OFFLINE_BUNDLE_BUILDER_ID": "https://ci.example/runners/7"})
    statement = _statement(get(read_entries(Path(named.json["result"]["archive"])), ENVELOPE).data)
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://ci.example/runners/7"


# --- a compromised builder: the key signs, but the statement must still describe the bundle -------------------
def _reenvelope(entries, key: Path, change=None, payload_type=dsse.IN_TOTO, raw=None):
    """Replace the envelope (its statement changed by ``change``, signed with ``key``), then make bundle.json and
    SHA256SUMS agree with it and sign them with the publisher's key, as a builder holding the key could."""
    e = get(entries, ENVELOPE)
    if raw is not None:
        e.data = raw
    else:
        statement = _statement(e.data)
        if change is not None:
            change(statement)
        payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
        signer = load_signer(str(key))
        e.data = dsse.envelope(payload_type, payload, [(signer.public.fingerprint,
                                                        signer.sign(dsse.pae(payload_type, payload)))])

    def sizes(doc):
        for m in doc["members"]:
            if m["path"] == ENVELOPE:
                doc["total_size"] += len(e.data) - m["size"]
                m["size"] = len(e.data)
    return edit_meta(entries, sizes)


def _drop_subject(statement):
    statement["subject"] = [s for s in statement["subject"] if s["name"] != "config/app.yaml"]


def _add_subject(statement):
    statement["subject"].append({"name": "config/extra.yaml", "digest": {"sha256": "0" * 64}})


def _wrong_digest(statement):
    for s in statement["subject"]:
        if s["name"] == "config/run.sh":
            s["digest"]["sha256"] = "f" * 64


CASES = {
    "a missing subject": (dict(change=_drop_subject), 5, "not a subject: config/app.yaml"),
    "an extra subject": (dict(change=_add_subject), 5, "a subject the bundle does not have: config/extra.yaml"),
    "a wrong digest": (dict(change=_wrong_digest), 5, "does not describe this bundle"),
    "signed by another key": (dict(other=True), 4, "carries no valid signature"),
    "another payload type": (dict(payload_type="application/json"), 4, "signs a application/json"),
    "not an envelope": (dict(raw=b'{"hello": "world"}\n'), 3, "is not a DSSE envelope"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_statement_that_does_not_describe_the_bundle_is_refused(ob, keydir, tmp_path, small, case):
    kwargs, rc, message = CASES[case]
    _src, archive = small
    publisher = keydir / "ed" / "bundle.key"
    signing = keydir / "other" / "bundle.key" if kwargs.pop("other", False) else publisher
    entries = _reenvelope(read_entries(archive), signing, **kwargs)
    bad = write_archive(resign(entries, publisher), tmp_path / "bad.bundle.tar.zst")
    v = ob("verify", bad, "--trust", keydir / "ed" / "bundle.pub")
    assert v.rc == rc and message in v.err, v
    assert "Traceback" not in v.err and ENVELOPE in v.err
    # an install of it changes nothing: the kit's active version stays
    kit = tmp_path / "kit"
    older = write_manifest(tmp_path / "older", version="0.9.0")
    built = ob("build", older, "--key", publisher, "--out", tmp_path / "older-out", "--json")
    assert ob("install", built.json["result"]["archive"], "--kit", kit, "--trust", keydir / "ed" / "bundle.pub").rc == 0
    before = (kit / "current" / "demo").resolve()
    i = ob("install", bad, "--kit", kit, "--trust", keydir / "ed" / "bundle.pub")
    assert i.rc == rc, i
    assert (kit / "current" / "demo").resolve() == before
