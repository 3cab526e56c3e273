"""Memory from tiny unsigned inputs: a few KB on the medium must not become gigabytes in the installer.

An attacker needs no key to hand over an archive. Its SHA256SUMS and bundle.json are compressible to
nothing, so their declared size costs the attacker nothing; parsing them is what costs the victim.
`verify` checks the signature over the raw bytes before parsing anything; an unsigned `inspect`
does not read a head member above its cap at all and says so.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

from conftest import _cli_base
from tests.helpers.craft import Entry, write_archive

CEILING_KB = 150 * 1024  # max RSS of the child; a 64 MiB member parsed costs several times this
BIG = 64 * 1024 * 1024


class Measured:
    def __init__(self, rc: int, out: str, err: str, max_rss_kb: int) -> None:
        self.rc, self.out, self.err, self.max_rss_kb = rc, out, err, max_rss_kb

    def __repr__(self) -> str:
        return "Measured(rc=%d, max_rss_kb=%d, out=%r, err=%r)" % (self.rc, self.max_rss_kb, self.out[-1500:],
                                                                    self.err[-1500:])


# A small Python in between: a child's peak RSS counts the pages of the process it was forked from, so
# the CLI must not be forked from pytest (which holds the 64 MiB test data). This one runs the CLI, reads
# that one child's peak RSS from wait4 and writes it to the file named first.
_MEASURE = """
import os, subprocess, sys, threading
child = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL)
timer = threading.Timer(float(sys.argv[2]), child.kill)
timer.start()
_, status, usage = os.wait4(child.pid, 0)
timer.cancel()
child.returncode = 0
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(*args, timeout: float = 120, argv=None) -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        peak = os.path.join(tmp, "peak")
        argv = argv or _cli_base() + [str(a) for a in args]
        proc = subprocess.run([sys.executable, "-c", _MEASURE, peak, str(timeout)] + argv, capture_output=True,
                              text=True, timeout=timeout + 30, stdin=subprocess.DEVNULL)
        with open(peak) as fh:
            return Measured(proc.returncode, proc.stdout, proc.stderr, int(fh.read()))


def _unsigned(tmp_path, sums: bytes, meta: bytes, name: str):
    entries = [Entry("SHA256SUMS", sums), Entry("SHA256SUMS.sig", os.urandom(64)), Entry("bundle.json", meta)]
    return write_archive(entries, tmp_path / name)


def test_inspect_of_a_tiny_archive_with_a_64_mib_bundle_json_stays_small_and_says_so(tmp_path):
    # A giant array of zeros: valid JSON that a parser turns into tens of millions of list slots.
    meta = b'{"pad": [' + b"0," * ((BIG - 20) // 2) + b'0]}\n'
    sums = ("%s  bundle.json\n" % hashlib.sha256(meta).hexdigest()).encode()
    archive = _unsigned(tmp_path, sums, meta, "tiny.bundle.tar.zst")
    assert archive.stat().st_size < 64 * 1024 and len(meta) > BIG - 64
    r = run_measured("inspect", archive)
    assert r.rc == 0, r
    assert r.max_rss_kb < CEILING_KB, r
    assert r.out.startswith("UNVERIFIED") and "bundle.json" in r.out and "too large" in r.out, r
    r = run_measured("inspect", archive, "--json")
    assert r.rc == 0 and r.max_rss_kb < CEILING_KB, r
    result = json.loads(r.out)["result"]
    assert result["verified"] is False and result["status"] == "UNVERIFIED"
    assert result["too_large"] == [{"member": "bundle.json", "size": len(meta), "cap": result["unverified_cap"]}]
    assert result["name"] is None and result["members"] is None


def test_inspect_does_not_read_a_64_mib_unsigned_sha256sums(tmp_path):
    sums = _numbered_lines(BIG)
    archive = _unsigned(tmp_path, sums, b"{}\n", "sums.bundle.tar.zst")
    r = run_measured("inspect", archive)
    assert r.rc == 0 and r.max_rss_kb < CEILING_KB, r
    assert r.out.startswith("UNVERIFIED") and "SHA256SUMS" in r.out and "too large" in r.out, r


def test_verify_checks_the_signature_of_a_64_mib_sha256sums_before_parsing_it(tmp_path, pub):
    sums = _numbered_lines(BIG)
    archive = _unsigned(tmp_path, sums, b"{}\n", "sums.bundle.tar.zst")
    r = run_measured("verify", archive, "--trust", pub)
    assert r.rc == 4 and "signature" in r.err, r
    assert r.max_rss_kb < CEILING_KB, r
    r = run_measured("inspect", archive, "--trust", pub)  # a key given, the signature bad: UNVERIFIED, unparsed
    assert r.rc == 0 and r.max_rss_kb < CEILING_KB and "too large" in r.out, r


def _numbered_lines(size: int) -> bytes:
    """Valid, sorted SHA256SUMS lines up to ``size`` bytes: each one a dict entry once parsed."""
    digest = hashlib.sha256(b"x").hexdigest()
    lines = []
    total = 0
    n = 0
    while True:
        line = "%s  f/%09d\n" % (digest, n)
        if total + len(line) > size:
            return "".join(lines).encode()
        lines.append(line)
        total += len(line)
        n += 1


def test_the_measurement_sees_a_big_child_and_not_its_parent():
    """The ceiling means something: a child that touches 300 MB is measured above it, a small one below."""
    touch_300mb = "b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    big = run_measured(argv=[sys.executable, "-c", touch_300mb])
    assert big.rc == 0 and big.max_rss_kb > CEILING_KB, big
    small = run_measured(argv=[sys.executable, "-c", "pass"])
    assert small.rc == 0 and small.max_rss_kb < 50 * 1024, small


def test_the_worst_json_an_unsigned_inspect_still_parses_stays_bounded(tmp_path):
    """At the cap itself, the costliest JSON per byte (empty lists) is parsed: it costs ~110 MB, not GBs."""
    from installer.cli.inspect import INSPECT_UNVERIFIED_CAP

    meta = b'{"pad": [' + b"[]," * ((INSPECT_UNVERIFIED_CAP - 20) // 3) + b'0]}\n'
    assert len(meta) <= INSPECT_UNVERIFIED_CAP
    sums = ("%s  bundle.json\n" % hashlib.sha256(meta).hexdigest()).encode()
    r = run_measured("inspect", _unsigned(tmp_path, sums, meta, "cap.bundle.tar.zst"))
    assert r.rc == 3, r  # parsed, then refused: no format field
    assert r.max_rss_kb < 200 * 1024, r
