"""Offline signing: build --unsigned; sign the provenance statement's PAE with openssl (an HSM or KMS would do the
same) and seal; sign SHA256SUMS and seal again."""

import json
import subprocess
from pathlib import Path

import pytest
from conftest import write_manifest

from tests.helpers.offline import openssl_sign, seal_provenance


@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_unsigned_build_signed_with_openssl_and_sealed(ob, keydir, tmp_path, kind):
    src = write_manifest(tmp_path / "src")
    staged = ob("build", src, "--out", tmp_path / "out", "--unsigned", "--json")
    assert staged.rc == 0, staged
    folder = Path(staged.json["result"]["staged"])
    assert staged.json["result"]["step"] == "provenance" and staged.json["result"]["bundle_id"] is None
    assert (folder / "provenance.pae").read_bytes().startswith(b"DSSEv1 28 application/vnd.in-toto+json ")
    assert not (folder / "SHA256SUMS").exists() and not list((tmp_path / "out").glob("*.zst"))
    key = keydir / kind / "bundle.key"
    step1 = seal_provenance(ob, folder, key, kind, "--trust", keydir / kind / "bundle.pub")
    assert "step 2 of 2: sign SHA256SUMS" in step1.out and step1.out.strip().splitlines()[-1] == str(folder)
    assert not list((tmp_path / "out").glob("*.zst"))
    sig = openssl_sign(key, folder / "SHA256SUMS", tmp_path / "SHA256SUMS.sig", kind)
    r = ob("seal", folder, "--sig", sig, "--trust", keydir / kind / "bundle.pub")
    assert r.rc == 0, r
    archive = Path(r.out.strip().splitlines()[-1])
    assert archive.name == "demo-1.0.0.bundle.tar.zst"
    v = ob("verify", archive, "--trust", keydir / kind / "bundle.pub", "--json")
    assert v.rc == 0 and v.json["result"]["provenance"]["verified"], v
    assert v.json["result"]["provenance"]["signer"] == v.json["result"]["signer"]
    # The same content signed by the usual path: the same statement; with Ed25519 (deterministic, in openssl
    # too) the same envelope and so the same bundle_id. openssl's ECDSA picks a random nonce (the bundler's own
    # is RFC 6979), so there only the statement is the same.
    normal = ob("build", src, "--key", key, "--out", tmp_path / "normal", "--json")
    assert normal.rc == 0, normal
    mine, theirs = (_envelope(Path(p)) for p in (archive, normal.json["result"]["archive"]))
    assert mine["payload"] == theirs["payload"]
    same_id = normal.json["result"]["bundle_id"] == v.json["result"]["bundle_id"]
    assert same_id == (kind == "ed") and (mine == theirs) == (kind == "ed")


def _envelope(archive: Path) -> dict:
    from tests.helpers.craft import read_entries

    return json.loads(next(e.data for e in read_entries(archive) if e.path == "attestations/provenance.dsse.json"))


def test_seal_refuses_a_signature_the_key_did_not_make(ob, keydir, tmp_path):
    src = write_manifest(tmp_path / "src")
    folder = Path(ob("build", src, "--out", tmp_path / "out", "--unsigned", "--json").json["result"]["staged"])
    other = keydir / "other" / "bundle.key"
    # step 1 with the wrong key: refused with --trust, before anything changes
    r = ob("seal", folder, "--sig", openssl_sign(other, folder / "provenance.pae", tmp_path / "p.sig"),
           "--trust", keydir / "ed" / "bundle.pub")
    assert r.rc == 4 and (folder / "provenance.pae").is_file() and not (folder / "SHA256SUMS").exists()
    seal_provenance(ob, folder, other)
    sig = tmp_path / "sig"
    subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(keydir / "other" / "bundle.key"), "-rawin", "-in",
                    str(folder / "SHA256SUMS"), "-out", str(sig)], check=True)
    r = ob("seal", folder, "--sig", sig, "--trust", keydir / "ed" / "bundle.pub")
    assert r.rc == 4
    assert not list((tmp_path / "out").glob("*.zst"))
    # without --trust the archive is written; install is where the signature is judged
    r = ob("seal", folder, "--sig", sig)
    assert r.rc == 0
    installed = ob("install", r.out.strip().splitlines()[-1], "--kit", tmp_path / "kit",
                   "--trust", keydir / "ed" / "bundle.pub")
    assert installed.rc == 4


def test_unsigned_and_key_are_exclusive(ob, key, tmp_path):
    src = write_manifest(tmp_path / "src")
    assert ob("build", src, "--key", key, "--unsigned", "--out", tmp_path / "o").rc == 2
    assert ob("build", src, "--out", tmp_path / "o").rc == 2


def test_a_staged_statement_changed_on_the_way_is_not_sealed(ob, keydir, tmp_path):
    """provenance.pae travels to the signing host and back: signing other bytes than the staged statement's
    gives no envelope (exit 5), and nothing is written."""
    src = write_manifest(tmp_path / "src")
    folder = Path(ob("build", src, "--out", tmp_path / "out", "--unsigned", "--json").json["result"]["staged"])
    pae = folder / "provenance.pae"
    pae.write_bytes(pae.read_bytes().replace(b"demo", b"evil", 1))
    r = ob("seal", folder, "--sig", openssl_sign(keydir / "ed" / "bundle.key", pae, tmp_path / "p.sig"))
    assert r.rc == 5 and "does not match the staged provenance statement" in r.err, r
    assert not (folder / "SHA256SUMS").exists()


def test_unsigned_delta_is_refused_before_anything_is_fetched(ob, key, tmp_path):
    src = write_manifest(tmp_path / "src")
    base = ob("build", src, "--key", key, "--out", tmp_path / "base", "--json")
    r = ob("build", src, "--unsigned", "--delta-from", base.json["result"]["archive"], "--out", tmp_path / "o")
    assert r.rc == 2 and "--delta-from needs --key" in r.err, r
    assert not (tmp_path / "o").exists()
