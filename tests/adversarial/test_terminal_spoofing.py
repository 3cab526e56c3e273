"""Terminal spoofing: strings from archives and registries must not drive the operator's terminal.

The attacker writes ANSI sequences, carriage returns and bidi overrides into every free-text field
they control (bundle.json fields no pattern checks, member names, a registry's error messages). On a
terminal, `ESC[1A ESC[2K` erases the UNVERIFIED line above and `\\r` overwrites the current one, so
a forged "signature verified" would be all the operator sees. Text output and errors must show such
characters escaped; --json stays exact (its strings hold the original characters, escaped by JSON).
"""

import json

from tests.helpers.craft import Entry, edit_meta, get, read_entries, sums_of, write_archive
from tests.helpers.faults import FaultProxy, status
from conftest import write_manifest

FORGED = "signature verified: signed by SHA256:%s" % ("ab" * 32)
ERASE = "\x1b[1A\x1b[2K\r"  # cursor up one line, erase it, back to column 0
EVIL = ERASE + FORGED
RLO = "\u202e"  # right-to-left override: shows text reversed
NASTY = (EVIL, "\x1b]0;title\x07", "\r" + FORGED, "a\tb", RLO + "evil", "x\x9by", "\x7f", "\u2028")


def assert_clean(text: str) -> None:
    """No byte a terminal would act on: C0/C1 controls (but the newline between lines), DEL, bidi controls."""
    bad = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0 or c in "\u202e\u2028"]
    assert not bad, (bad[:5], text[-1500:])


def _spoofed(built, tmp_path):
    """The built bundle with attacker text in every unchecked bundle.json field; SHA256SUMS recomputed,
    the signature left as it was (so it no longer verifies: the archive is UNVERIFIED)."""
    archive, _ = built
    entries = read_entries(archive)

    def change(doc):
        doc["tool"]["name"] = EVIL
        doc["tool"]["version"] = "\x1b[31m1.0"
        doc["images"].append({"ref": "docker.io/library/a:1", "digest": "sha256:" + "0" * 64,
                              "media_type": "\x1b[2Kapplication/x" + RLO, "size": 1, "derived": False,
                              "source": "registry", "manifests": [], "platforms": ["linux/\x1b[8m"],
                              "fetched_from": "\r" + FORGED})
        for t in doc["tenants"].values():
            t["source"] = "\x1b]0;owned\x07" + "\u2028" + FORGED
    edit_meta(entries, change)
    get(entries, "SHA256SUMS").data = sums_of(entries)
    return write_archive(entries, tmp_path / "spoof.bundle.tar.zst")


def test_inspect_shows_attacker_fields_escaped_and_the_unverified_line_survives(ob, built, tmp_path):
    archive = _spoofed(built, tmp_path)
    r = ob("inspect", archive)
    assert r.rc == 0, r
    assert_clean(r.out)
    assert_clean(r.err)
    assert r.out.splitlines()[0].startswith("UNVERIFIED:")
    assert "\\x1b[1A\\x1b[2K\\x0d" + FORGED in r.out  # visible, and harmless
    assert "\\u202e" in r.out and "\\u2028" in r.out and "\\x07" in r.out


def test_inspect_json_keeps_the_original_characters_exactly(ob, built, tmp_path):
    archive = _spoofed(built, tmp_path)
    r = ob("inspect", archive, "--json")
    assert r.rc == 0, r
    assert_clean(r.out)  # JSON escapes them: \u001b, never a raw ESC
    result = json.loads(r.out)["result"]
    assert result["tool"]["name"] == EVIL and result["status"] == "UNVERIFIED"
    assert result["images"][-1]["fetched_from"] == "\r" + FORGED
    assert result["images"][-1]["media_type"] == "\x1b[2Kapplication/x" + RLO


def _renamed_first_member(built, tmp_path, name: str):
    archive, _ = built
    entries = read_entries(archive)
    entries[0] = Entry(name, entries[0].data)
    return write_archive(entries, tmp_path / "renamed.bundle.tar.zst")


def test_member_names_in_errors_are_escaped_for_verify_and_install(ob, pub, built, tmp_path):
    for index, name in enumerate(NASTY):
        archive = _renamed_first_member(built, tmp_path, name)
        for argv in (["verify", archive, "--trust", pub], ["install", archive, "--kit", tmp_path / "kit",
                                                           "--trust", pub]):
            r = ob(*argv)
            assert r.rc == 3 and "out of order" in r.err, (argv, r)
            assert_clean(r.err)
            assert_clean(r.out)
        j = ob("verify", archive, "--trust", pub, "--json")
        assert j.rc == 3 and name in json.loads(j.out)["error"]["message"], (index, j)
        assert_clean(j.out)
    assert not (tmp_path / "kit" / "current" / "demo").exists()


def test_a_signature_member_name_is_escaped(ob, pub, built, tmp_path):
    archive, _ = built
    entries = read_entries(archive)
    entries[1] = Entry(EVIL, entries[1].data)
    bad = write_archive(entries, tmp_path / "sig.bundle.tar.zst")
    r = ob("verify", bad, "--trust", pub)
    assert r.rc == 4 and "not signed" in r.err, r
    assert_clean(r.err)


def test_a_registry_error_message_is_escaped(ob, key, tmp_path):
    """A hostile registry answers the manifest request with an error whose message forges a success."""
    body = json.dumps({"errors": [{"code": "DENIED", "message": ERASE + "built demo 1.0.0, signed"}]}).encode()
    manifest = write_manifest(tmp_path / "m", tenants=False, extra="  images:\n    - ref: docker.io/team/app:1.0\n")
    with FaultProxy(None, static={"/v2/": b"{}"}) as fake:
        fake.add(status(400, body=body, headers={"Content-Type": "application/json"}), method="GET",
                 path=r"/manifests/")
        r = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--cache", tmp_path / "c",
               "--mirror", "docker.io=%s" % fake.host, "--insecure-registry", fake.host)
        j = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--cache", tmp_path / "c", "--json",
               "--mirror", "docker.io=%s" % fake.host, "--insecure-registry", fake.host)
    assert r.rc == 7 and "HTTP 400: DENIED: " in r.err, r
    assert_clean(r.err)
    assert "\\x1b[1A\\x1b[2K\\x0dbuilt demo 1.0.0, signed" in r.err
    # escaped where the message is made (installer/site/errorbody.py): the JSON and the receipts never carry a
    # server's control characters either
    assert j.rc == 7 and "DENIED: \\x1b[1A\\x1b[2K\\x0dbuilt demo 1.0.0, signed" in j.json["error"]["message"], j
    assert ERASE not in j.json["error"]["message"]
    assert_clean(j.out)


def test_usage_errors_from_the_command_line_are_escaped(ob, obi):
    """Even the operator's own arguments (pasted from an attacker's README) are echoed escaped."""
    for call in (ob, obi):
        r = call("inspect", "no-such\x1b[2K\rOK.bundle.tar.zst")
        assert r.rc == 2 and "does not exist" in r.err, r
        assert_clean(r.err)
