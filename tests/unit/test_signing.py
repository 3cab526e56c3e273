"""installer/trust/signing.py and bundler/seal/keys.py, checked against the openssl program reviewers use."""

import base64
import hashlib
import os
import sys
import shutil
import stat
import subprocess

import pytest

from bundler.seal.keys import keygen, load_signer
from installer.errors import TrustError, UsageError
from installer.trust.signing import (ECDSA_P256, ED25519, _verify_openssl, fingerprint, load_public_key,
                               openssl_verify_command, parse_public_key, verify)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl program is needed")

ALGORITHMS = [ED25519, ECDSA_P256]
VERIFIERS = {"cryptography": verify, "openssl": _verify_openssl}
DATA = b"0" * 64 + b"  bundle.json\n" + b"1" * 64 + b"  config/a.yaml\n"


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch):
    monkeypatch.delenv("BUNDLE_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("BUNDLE_KEY_PASSPHRASE_FILE", raising=False)


def openssl(*args, input=None, check=True):
    return subprocess.run(["openssl"] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=check)


def genpkey(path, *args):
    openssl("genpkey", *args, "-out", str(path))
    os.chmod(str(path), 0o600)
    return path


def pubout(key_path, pub_path):
    openssl("pkey", "-in", str(key_path), "-pubout", "-out", str(pub_path))
    return pub_path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{algorithm: (key path, pub path)} made by keygen."""
    out = {}
    for algorithm in ALGORITHMS:
        folder = tmp_path_factory.mktemp(algorithm)
        key, pub, _ = keygen(str(folder / "k"), algorithm)
        out[algorithm] = (key, pub)
    return out


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """Keys made by openssl alone: the kinds we accept and the kinds we must refuse."""
    d = tmp_path_factory.mktemp("foreign")
    specs = {
        "ed25519": ["-algorithm", "ed25519"],
        "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "secp256k1": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        "ed448": ["-algorithm", "ed448"],
        "x25519": ["-algorithm", "x25519"],
    }
    out = {}
    for name, args in specs.items():
        key = genpkey(d / (name + ".key"), *args)
        out[name] = (key, pubout(key, d / (name + ".pub")))
    return out


def openssl_fingerprint(pub_path):
    der = openssl("pkey", "-pubin", "-in", str(pub_path), "-outform", "DER").stdout
    out = subprocess.run(["sha256sum"], input=der, stdout=subprocess.PIPE, check=True).stdout
    return "SHA256:" + out.split()[0].decode()


# --- keygen ------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keygen_files_even_with_umask_000(tmp_path, algorithm):
    old = os.umask(0)
    try:
        key, pub, public = keygen(str(tmp_path / "out"), algorithm)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    key_text = open(key, "rb").read()
    assert key_text.startswith(b"-----BEGIN PRIVATE KEY-----\n")            # PKCS#8, unencrypted
    assert openssl("pkey", "-in", key, "-noout", check=False).returncode == 0
    pub_text = open(pub, "rb").read()
    assert pub_text.startswith(b"-----BEGIN PUBLIC KEY-----\n") and pub_text.endswith(b"-----END PUBLIC KEY-----\n")
    assert public.algorithm == algorithm
    assert load_public_key(pub).der == public.der
    # openssl derives the same public key from the private one.
    assert openssl("pkey", "-in", key, "-pubout").stdout == pub_text
    assert public.fingerprint == openssl_fingerprint(pub)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keygen_pem_matches_openssl_type(keys, algorithm):
    text = openssl("pkey", "-pubin", "-in", keys[algorithm][1], "-noout", "-text").stdout.decode()
    assert ("ED25519" in text) if algorithm == ED25519 else ("prime256v1" in text or "P-256" in text)


def test_keygen_public_key_usable_as_trust_under_umask_000(tmp_path):
    from installer.trust.store import load_trust_paths
    old = os.umask(0)
    try:
        _, pub, public = keygen(str(tmp_path / "out"), ED25519)
    finally:
        os.umask(old)
    assert not os.stat(pub).st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    [trusted] = load_trust_paths([pub])
    assert trusted.fingerprint == public.fingerprint


def test_keygen_refuses_existing_files(tmp_path):
    keygen(str(tmp_path), ED25519)
    before = open(str(tmp_path / "bundle.key"), "rb").read()
    with pytest.raises(UsageError):
        keygen(str(tmp_path), ED25519)
    assert open(str(tmp_path / "bundle.key"), "rb").read() == before


def test_keygen_refuses_unknown_algorithm(tmp_path):
    with pytest.raises(UsageError):
        keygen(str(tmp_path), "rsa")
    assert not os.listdir(str(tmp_path))


def test_keygen_keys_differ(tmp_path):
    _, _, a = keygen(str(tmp_path / "a"), ED25519)
    _, _, b = keygen(str(tmp_path / "b"), ED25519)
    assert a.fingerprint != b.fingerprint


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keygen_with_passphrase_encrypts(tmp_path, monkeypatch, algorithm):
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", "correct horse")
    key, _, public = keygen(str(tmp_path), algorithm)
    assert open(key, "rb").read().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert openssl("pkey", "-in", key, "-passin", "pass:wrong", "-noout", check=False).returncode != 0
    assert openssl("pkey", "-in", key, "-passin", "pass:correct horse", "-noout", check=False).returncode == 0
    assert load_signer(key).public.fingerprint == public.fingerprint


# --- fingerprints and public key parsing -------------------------------------------------------

@pytest.mark.parametrize("name, algorithm", [("ed25519", ED25519), ("p256", ECDSA_P256)])
def test_openssl_made_keys_parse(foreign, name, algorithm):
    pub = foreign[name][1]
    key = load_public_key(str(pub))
    assert key.algorithm == algorithm
    assert key.fingerprint == openssl_fingerprint(pub)
    assert key.fingerprint == fingerprint(key.der) == "SHA256:" + hashlib.sha256(key.der).hexdigest()


@pytest.mark.parametrize("name", ["ed25519", "p256"])
def test_pem_output_readable_by_openssl(tmp_path, foreign, name):
    key = load_public_key(str(foreign[name][1]))
    path = tmp_path / "re.pub"
    path.write_bytes(key.pem())
    assert openssl_fingerprint(path) == key.fingerprint
    assert key.pem() == foreign[name][1].read_bytes()      # openssl writes the same 64-column PEM


def test_pem_found_among_other_text(foreign):
    text = b"comment line\n" + foreign["ed25519"][1].read_bytes() + b"trailer\n"
    assert parse_public_key(text).algorithm == ED25519


@pytest.mark.parametrize("name", ["rsa", "p384", "secp256k1", "ed448", "x25519"])
def test_unsupported_key_types_refused(foreign, name):
    with pytest.raises(TrustError) as exc:
        load_public_key(str(foreign[name][1]))
    assert exc.value.exit_code == 4


@pytest.mark.parametrize("name", ["ed25519", "p256"])
def test_private_key_is_not_a_public_key(foreign, name):
    with pytest.raises(TrustError):
        parse_public_key(foreign[name][0].read_bytes(), "bundle.key")


def test_compressed_p256_point_refused(tmp_path, foreign):
    path = tmp_path / "c.pub"
    openssl("ec", "-in", str(foreign["p256"][0]), "-pubout", "-conv_form", "compressed", "-out", str(path))
    with pytest.raises(TrustError):
        load_public_key(str(path))


@pytest.mark.parametrize("data", [
    b"", b"garbage", b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
    b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(b"\x30\x03\x02\x01\x00") + b"\n-----END PUBLIC KEY-----\n",
    b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(os.urandom(44)) + b"\n-----END PUBLIC KEY-----\n",
])
def test_garbage_refused(data):
    with pytest.raises(TrustError) as exc:
        parse_public_key(data, "x.pub")
    assert "x.pub" in exc.value.message


def test_truncated_der_refused(foreign):
    der = load_public_key(str(foreign["p256"][1])).der
    for cut in (1, 10, len(der) - 1):
        pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der[:cut]) + b"\n-----END PUBLIC KEY-----\n"
        with pytest.raises(TrustError):
            parse_public_key(pem)


def test_oversized_key_file_refused(foreign):
    with pytest.raises(TrustError):
        parse_public_key(b"#" * 20000 + foreign["ed25519"][1].read_bytes())


def test_missing_key_file_is_trust_error(tmp_path):
    with pytest.raises(TrustError):
        load_public_key(str(tmp_path / "absent.pub"))


def _pem(der):
    return b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"


def test_invalid_p256_point_refused_or_never_verifies(foreign):
    der = bytearray(load_public_key(str(foreign["p256"][1])).der)
    der[-1] ^= 0x01                                   # y no longer matches x: not on the curve
    try:
        key = parse_public_key(_pem(bytes(der)))
    except TrustError:
        return
    assert verify(key, DATA, b"\x30\x06\x02\x01\x01\x02\x01\x01") is False


# --- verify: cryptography and the openssl fallback ---------------------------------------------

def openssl_sign(key_path, algorithm, data, tmp_path):
    src = tmp_path / "data"
    src.write_bytes(data)
    sig = tmp_path / "sig"
    if algorithm == ED25519:
        openssl("pkeyutl", "-sign", "-inkey", str(key_path), "-rawin", "-in", str(src), "-out", str(sig))
    else:
        openssl("dgst", "-sha256", "-sign", str(key_path), "-out", str(sig), str(src))
    return sig.read_bytes()


@pytest.mark.parametrize("how", sorted(VERIFIERS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_verify_true_and_false(keys, how, algorithm):
    check = VERIFIERS[how]
    key_path, pub_path = keys[algorithm]
    signer = load_signer(key_path)
    public = load_public_key(pub_path)
    sig = signer.sign(DATA)

    assert check(public, DATA, sig) is True
    assert check(public, DATA + b"x", sig) is False
    assert check(public, DATA.replace(b"0", b"2", 1), sig) is False
    flipped = bytearray(sig)
    flipped[len(sig) // 2] ^= 0x01
    assert check(public, DATA, bytes(flipped)) is False
    assert check(public, DATA, b"") is False
    assert check(public, DATA, b"\x00" * 64) is False
    if how == "cryptography":  # the openssl fallback: see test_openssl_fallback_refuses_trailing_bytes
        assert check(public, DATA, sig + b"\x00") is False


def test_openssl_fallback_refuses_trailing_bytes(keys, monkeypatch):
    signer = load_signer(keys[ECDSA_P256][0])
    public = load_public_key(keys[ECDSA_P256][1])
    # A message whose (deterministic) DER signature has its maximum length: r and s both 33 bytes.
    data, sig = next((d, signer.sign(d)) for d in (DATA + b"%d" % i for i in range(500)) if len(signer.sign(d)) == 72)
    assert verify(public, data, sig + b"\x00") is False          # cryptography
    # `openssl dgst -verify` alone would accept the extra byte ...
    assert _verify_openssl(public, data, sig + b"\x00") is True
    # ... so verify() refuses non-canonical signatures before either back end sees them.
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography -> ImportError
    assert verify(public, data, sig) is True
    assert verify(public, data, sig + b"\x00") is False


@pytest.mark.parametrize("how", sorted(VERIFIERS))
def test_signature_of_another_key_fails(keys, foreign, how):
    check = VERIFIERS[how]
    sig = load_signer(keys[ED25519][0]).sign(DATA)
    assert check(load_public_key(str(foreign["ed25519"][1])), DATA, sig) is False
    ec_sig = load_signer(keys[ECDSA_P256][0]).sign(DATA)
    assert check(load_public_key(str(foreign["p256"][1])), DATA, ec_sig) is False
    # an ECDSA signature offered to an Ed25519 key and the other way round
    assert check(load_public_key(keys[ED25519][1]), DATA, ec_sig) is False
    assert check(load_public_key(keys[ECDSA_P256][1]), DATA, sig) is False


@pytest.mark.parametrize("how", sorted(VERIFIERS))
@pytest.mark.parametrize("name, algorithm", [("ed25519", ED25519), ("p256", ECDSA_P256)])
def test_openssl_made_signatures_verify(tmp_path, foreign, how, name, algorithm):
    key_path, pub_path = foreign[name]
    sig = openssl_sign(key_path, algorithm, DATA, tmp_path)
    assert VERIFIERS[how](load_public_key(str(pub_path)), DATA, sig) is True
    assert VERIFIERS[how](load_public_key(str(pub_path)), DATA[:-1], sig) is False


# --- signatures checked by the reviewer's commands ---------------------------------------------

def test_reviewer_commands_are_the_documented_ones():
    assert openssl_verify_command(ED25519) == ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "bundle.pub",
                                              "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"]
    assert openssl_verify_command(ECDSA_P256) == ["openssl", "dgst", "-sha256", "-verify", "bundle.pub",
                                                 "-signature", "SHA256SUMS.sig", "SHA256SUMS"]


def _write_trio(tmp_path, pub_path, data, sig):
    shutil.copy(pub_path, str(tmp_path / "bundle.pub"))
    (tmp_path / "SHA256SUMS").write_bytes(data)
    (tmp_path / "SHA256SUMS.sig").write_bytes(sig)


def test_ecdsa_deterministic_and_openssl_dgst_verifies(tmp_path, keys):
    key_path, pub_path = keys[ECDSA_P256]
    sig = load_signer(key_path).sign(DATA)
    assert load_signer(key_path).sign(DATA) == sig                    # RFC 6979: same bytes every time
    assert sig[0] == 0x30                                              # DER SEQUENCE, not raw r||s
    _write_trio(tmp_path, pub_path, DATA, sig)
    cmd = ["openssl", "dgst", "-sha256", "-verify", "bundle.pub", "-signature", "SHA256SUMS.sig", "SHA256SUMS"]
    ok = subprocess.run(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert ok.returncode == 0 and b"Verified OK" in ok.stdout
    (tmp_path / "SHA256SUMS").write_bytes(DATA + b"\n")
    bad = subprocess.run(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert bad.returncode != 0


def test_ed25519_deterministic_and_openssl_pkeyutl_verifies(tmp_path, keys):
    key_path, pub_path = keys[ED25519]
    sig = load_signer(key_path).sign(DATA)
    assert load_signer(key_path).sign(DATA) == sig and len(sig) == 64
    _write_trio(tmp_path, pub_path, DATA, sig)
    cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "bundle.pub", "-rawin", "-in", "SHA256SUMS",
           "-sigfile", "SHA256SUMS.sig"]
    ok = subprocess.run(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout
    (tmp_path / "SHA256SUMS").write_bytes(DATA + b"\n")
    bad = subprocess.run(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert bad.returncode != 0


def test_ecdsa_signatures_differ_per_message(keys):
    signer = load_signer(keys[ECDSA_P256][0])
    assert signer.sign(DATA) != signer.sign(DATA + b"x")


# --- load_signer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004, 0o610])
def test_load_signer_refuses_group_or_other_access(tmp_path, keys, mode):
    path = tmp_path / "bundle.key"
    shutil.copy(keys[ED25519][0], str(path))
    os.chmod(str(path), mode)
    with pytest.raises(TrustError) as exc:
        load_signer(str(path))
    assert exc.value.exit_code == 4


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_signer_accepts_owner_only(tmp_path, keys, mode):
    path = tmp_path / "bundle.key"
    shutil.copy(keys[ED25519][0], str(path))
    os.chmod(str(path), mode)
    assert load_signer(str(path)).public.algorithm == ED25519


def test_load_signer_missing_file_is_usage_error(tmp_path):
    with pytest.raises(UsageError):
        load_signer(str(tmp_path / "nope.key"))


@pytest.mark.parametrize("name", ["p384", "rsa", "secp256k1", "ed448"])
def test_load_signer_refuses_other_key_types(foreign, name):
    with pytest.raises(TrustError):
        load_signer(str(foreign[name][0]))


def test_load_signer_refuses_non_key(tmp_path, foreign):
    path = tmp_path / "junk.key"
    path.write_bytes(foreign["ed25519"][1].read_bytes())   # a public key where a private one belongs
    os.chmod(str(path), 0o600)
    with pytest.raises(TrustError):
        load_signer(str(path))


@pytest.fixture
def encrypted(tmp_path):
    """An Ed25519 key encrypted by openssl (not by our keygen), its passphrase, and its public key."""
    key = genpkey(tmp_path / "enc.key", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:s3cret pass")
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pub = openssl("pkey", "-in", str(key), "-passin", "pass:s3cret pass", "-pubout").stdout
    return str(key), "s3cret pass", parse_public_key(pub)


def test_encrypted_key_without_passphrase(encrypted):
    with pytest.raises(TrustError, match="encrypted"):
        load_signer(encrypted[0])


def test_encrypted_key_wrong_passphrase_env(monkeypatch, encrypted):
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", "Zq9-not-the-one")
    with pytest.raises(TrustError) as exc:
        load_signer(encrypted[0])
    assert exc.value.exit_code == 4
    assert "Zq9" not in str(exc.value) and "Zq9" not in " ".join(exc.value.problems)  # no secret echoed


def test_encrypted_key_wrong_passphrase_file(tmp_path, monkeypatch, encrypted):
    f = tmp_path / "pass"
    f.write_bytes(b"also wrong\n")
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE_FILE", str(f))
    with pytest.raises(TrustError):
        load_signer(encrypted[0])


def test_encrypted_key_right_passphrase_env(monkeypatch, encrypted):
    key, passphrase, public = encrypted
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", passphrase)
    signer = load_signer(key)
    assert signer.public.fingerprint == public.fingerprint
    assert verify(public, DATA, signer.sign(DATA))


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_encrypted_key_right_passphrase_file(tmp_path, monkeypatch, encrypted, ending):
    key, passphrase, public = encrypted
    f = tmp_path / "pass"
    f.write_bytes(passphrase.encode() + ending)
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE_FILE", str(f))
    assert load_signer(key).public.fingerprint == public.fingerprint


def test_passphrase_file_wins_over_env(tmp_path, monkeypatch, encrypted):
    key, passphrase, _ = encrypted
    f = tmp_path / "pass"
    f.write_bytes(passphrase.encode())
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE_FILE", str(f))
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", "wrong")
    assert load_signer(key).public.algorithm == ED25519
    f.write_bytes(b"wrong")
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", passphrase)
    with pytest.raises(TrustError):
        load_signer(key)


def test_passphrase_given_for_unencrypted_key(monkeypatch, keys):
    monkeypatch.setenv("BUNDLE_KEY_PASSPHRASE", "unneeded")
    with pytest.raises(TrustError):
        load_signer(keys[ED25519][0])
