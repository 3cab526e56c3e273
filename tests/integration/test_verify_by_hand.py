"""docs/VERIFY.md, run verbatim: every `sh` block in order, with bash -euo pipefail, as `nobody`.

A fresh bundle passes for both key types; each tampered one fails.
"""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, write_manifest
from tests.helpers.craft import Entry, get, read_entries, resign, write_archive

_spec = importlib.util.spec_from_file_location("verify_md", REPO / "scripts" / "verify_md.py")
verify_md = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_md)
procedure = verify_md.procedure


def run_by_hand(archive: Path, pub: Path, algorithm: str, workdir: Path, trace: bool = False):
    """Copy inputs where `nobody` can read them and run the procedure in an empty folder."""
    media = workdir / "media"
    media.mkdir(parents=True)
    shutil.copy(archive, media / archive.name)
    sidecar = archive.parent / (archive.name + ".sha256")
    if sidecar.exists():
        shutil.copy(sidecar, media / sidecar.name)
    shutil.copy(pub, media / "bundle.pub")
    check = workdir / "check"
    check.mkdir()
    subprocess.run(["chown", "-R", "nobody", str(check)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(workdir)], check=True)
    script = procedure(algorithm)
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "env", "B=%s" % (media / archive.name), "PUB=%s" % (media / "bundle.pub"),
         "bash", "-euo", "pipefail"] + (["-x"] if trace else []) + ["-c", script],
        cwd=check, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["ed25519", "ecdsa-p256"])
def signed(request, ob, keydir, world_tmp):
    sub = "ed" if request.param == "ed25519" else "ec"
    src = write_manifest(world_tmp / "src")
    r = ob("build", src, "--key", keydir / sub / "bundle.key", "--out", world_tmp / "out", "--json")
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"]), keydir / sub / "bundle.pub", request.param, keydir / sub / "bundle.key"


def test_fresh_bundle_passes_every_step(signed, world_tmp):
    archive, pub, alg, _ = signed
    r = run_by_hand(archive, pub, alg, world_tmp / "w")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ": OK" in r.stdout  # the sidecar line
    assert ("Signature Verified Successfully" if alg == "ed25519" else "Verified OK") in r.stdout


def _changed_byte(es, key):
    e = get(es, "config/app.yaml")
    e.data = e.data[:-2] + b"X\n"
    return es


def _changed_list(es, key):
    sums = get(es, "SHA256SUMS")
    sums.data = sums.data.replace(b"config/app.yaml", b"config/app.yamX")
    return es


def _extra_member(es, key):
    return es[:3] + sorted(es[3:] + [Entry("config/extra.yaml", b"x: 1\n")], key=lambda e: e.path.encode())


def _symlink_signed(es, key):
    es = es[:3] + sorted(es[3:] + [Entry("config/link", typeflag=b"2", linkname="/etc/shadow")],
                         key=lambda e: e.path.encode())
    return resign(es, key, sums=get(es, "SHA256SUMS").data)


def _missing_file(es, key):
    return [e for e in es if e.path != "config/app.yaml"]


@pytest.mark.parametrize("tamper,evidence", [
    (_changed_byte, "config/app.yaml: FAILED"),          # step 4, sha256sum -c
    (_changed_list, "erif"),                             # step 2, openssl: "Verification failure"/"Verify failure"
    (_extra_member, "> config/extra.yaml"),              # step 3, diff
    (_symlink_signed, "listing.txt"),                    # step 3, the regular-files test (bash -x trace)
    (_missing_file, "< config/app.yaml"),                # step 3, diff
], ids=["changed byte", "changed list", "extra member", "symlink (signed)", "missing file"])
def test_tampered_bundle_fails(signed, world_tmp, tamper, evidence):
    archive, pub, alg, key = signed
    bad = world_tmp / "bad" / archive.name
    bad.parent.mkdir()
    write_archive(tamper(read_entries(archive), key), bad)
    r = run_by_hand(bad, pub, alg, world_tmp / "w", trace=True)
    assert r.returncode != 0, r.stdout + r.stderr
    # the last command bash ran is the check that caught it
    last_lines = r.stdout + r.stderr.strip().splitlines()[-1] + "".join(r.stderr.splitlines()[-3:])
    assert evidence in last_lines, r.stderr[-2000:]


def test_wrong_key_fails(signed, keydir, world_tmp):
    archive, _, alg, _ = signed
    other = keydir / ("other" if alg == "ed25519" else "ed") / "bundle.pub"
    r = run_by_hand(archive, other, alg, world_tmp / "w")
    assert r.returncode != 0


def test_damaged_sidecar_fails_the_transport_step(signed, world_tmp):
    archive, pub, alg, _ = signed
    sidecar = archive.parent / (archive.name + ".sha256")
    sidecar.write_text("0" * 64 + "  " + archive.name + "\n")
    r = run_by_hand(archive, pub, alg, world_tmp / "w")
    assert r.returncode != 0 and "FAILED" in r.stdout + r.stderr
