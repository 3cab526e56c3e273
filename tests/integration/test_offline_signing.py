"""Offline signing: build --unsigned, sign SHA256SUMS with openssl (an HSM or KMS would do the same), seal."""

import subprocess
from pathlib import Path

import pytest
from conftest import write_manifest


@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_unsigned_build_signed_with_openssl_and_sealed(ob, keydir, tmp_path, kind):
    src = write_manifest(tmp_path / "src")
    staged = ob("build", src, "--out", tmp_path / "out", "--unsigned", "--json")
    assert staged.rc == 0, staged
    folder = Path(staged.json["result"]["staged"])
    assert (folder / "SHA256SUMS").is_file() and not list((tmp_path / "out").glob("*.zst"))
    key = keydir / kind / "bundle.key"
    sig = tmp_path / "SHA256SUMS.sig"
    if kind == "ed":
        cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", folder / "SHA256SUMS", "-out", sig]
    else:
        cmd = ["openssl", "dgst", "-sha256", "-sign", key, "-out", sig, folder / "SHA256SUMS"]
    subprocess.run([str(c) for c in cmd], check=True)
    r = ob("seal", folder, "--sig", sig, "--trust", keydir / kind / "bundle.pub")
    assert r.rc == 0, r
    archive = Path(r.out.strip().splitlines()[-1])
    assert archive.name == "demo-1.0.0.bundle.tar.zst"
    v = ob("verify", archive, "--trust", keydir / kind / "bundle.pub", "--json")
    assert v.rc == 0 and v.json["result"]["bundle_id"] == staged.json["result"]["bundle_id"]
    # the same content signed by the usual path gives the same bundle_id
    normal = ob("build", src, "--key", key, "--out", tmp_path / "normal", "--json")
    assert normal.json["result"]["bundle_id"] == staged.json["result"]["bundle_id"]


def test_seal_refuses_a_signature_the_key_did_not_make(ob, keydir, tmp_path):
    src = write_manifest(tmp_path / "src")
    folder = Path(ob("build", src, "--out", tmp_path / "out", "--unsigned", "--json").json["result"]["staged"])
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
