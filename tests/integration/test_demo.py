"""The README's main command, scripts/demo.sh, end to end against the installed CLI."""

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_demo_runs_end_to_end(tmp_path):
    env = dict(os.environ, OFFLINE_BUNDLE_CLI=str(Path(sys.executable).parent / "offline-bundle"),
               DEMO_DIR=str(tmp_path / "demo"))
    # As a user keeps it: `scripts/demo.sh > demo.log 2>&1` (issue 13 point 7: `tee /dev/stderr` once reopened
    # the log, truncating what was written before and leaving NUL bytes)
    log = tmp_path / "demo.log"
    with open(log, "wb") as fh:
        p = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], cwd=REPO, env=env, stdout=fh,
                           stderr=subprocess.STDOUT, timeout=300)
    data = log.read_bytes()
    assert b"\0" not in data, "NUL bytes in the demo's log"
    out = data.decode("utf-8", "replace")
    assert p.returncode == 0, out[-6000:]
    assert out.index("== stand-ins") < out.index("== keygen") < out.index("== build")  # nothing lost before the build
    p.stderr = ""  # one log: every assertion below reads it
    assert "Signature Verified Successfully" in out  # the by-hand openssl step really ran
    assert "by-hand verification: all checks passed" in out
    assert "installed telemetry-storage 2026.11.0" in out and "is already installed" in out
    assert "sha256sum: all" in out and "Traceback" not in p.stderr
    assert "OK telemetry-storage 2026.11.0: every file matches its signed SHA256SUMS" in out  # verify --kit
    assert re.search(r"helm upgrade --install prometheus oci://127\.0\.0\.1:\d+/charts/prometheus@sha256:[0-9a-f]{64} ",
                     out)  # COMMANDS.txt names the chart by digest
    # the site registry serves the bundle's digests (the demo checks each with skopeo and prints it)
    site_lines = [line for line in out.splitlines() if re.match(r"^127\.0\.0\.1:\d+/docker\.io/\S+ +sha256:", line)]
    assert len(site_lines) == 4 and all(line.endswith("derived index") for line in site_lines)
    assert (out + p.stderr).count("rendered with helm; every container image is in the bundle") == 3
    assert "0 blobs pushed (0 bytes), 0 mounted" in out  # the second install wrote nothing
    # the deploy outputs: a chart pulled from the air-gapped site renders the site's pinned image
    assert re.search(r'image: "127\.0\.0\.1:\d+/docker\.io/prom/prometheus:v3\.5\.0@sha256:[0-9a-f]{64}"', out)
    assert "kubernetes/01-configmap-stellaops-loki-tenant-overrides.json" in out
    # issue 13 point 7: the stack's TLS against the real Prometheus, as the kit's files and grant set it up
    assert "secrets readable by group 4242 (and no one else)" in out
    tls = out[out.index("== the stack's TLS"):]
    assert "Prometheus Server is Ready." in tls and "refused during the TLS handshake" in tls
    assert re.search(r"^  prometheus +https://127\.0\.0\.1:\d+/metrics +up ", tls, re.M), tls
    # issue 14: the demo ends with the report staff file, written and said where
    report = out[out.index("== the report security staff file"):]
    assert "VERIFIED: telemetry-storage 2026.11.0 is signed by SHA256:" in report
    assert "the archive's report: %s" % (tmp_path / "demo" / "report.html") in report
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.index("VERIFIED: ") < page.index("Signer") and "<script" not in page
    assert (tmp_path / "demo" / "kit-report.html").is_file()
    assert out.count("Signature Verified Successfully") >= 2  # by hand: SHA256SUMS and the provenance statement
    kit = tmp_path / "demo" / "kit"
    assert os.readlink(kit / "current" / "telemetry-storage") == "../bundles/telemetry-storage/2026.11.0"
