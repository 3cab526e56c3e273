"""Verification reports for the HTML report's tests (installer/report/html.py): a full one, with every key its
docstring names filled in, a failed one that carries only the verdict and the archive, and a hostile one."""

import copy
import hashlib
import re
from typing import Any, Dict, List


def hexof(label: str) -> str:
    """A stable 64-hex digest for ``label`` (distinct labels, distinct digests)."""
    return hashlib.sha256(label.encode()).hexdigest()


FINGERPRINT = "SHA256:" + hexof("bundle.pub")
COSIGN_KEY = "SHA256:" + hexof("cosign.pub")
BUNDLE_ID = hexof("bundle-id")
ARCHIVE = "/media/usb/telemetry-storage-2026.11.0.bundle.tar.zst"


def _packages(count: int, kind: str) -> List[Dict[str, Any]]:
    licenses = ["Apache-2.0", "MIT", "BSD-3-Clause", "GPL-2.0-only"]
    out = []
    for i in range(count):
        name = "%s-pkg-%02d" % (kind, i)
        version = "1.%d.%d" % (i // 10, i % 10)
        out.append({"name": name, "version": version, "type": kind if i % 3 else "go-module",
                    "license": licenses[i % len(licenses)], "purl": "pkg:%s/%s@%s" % (kind, name, version)})
    return out


def _counts(packages: List[Dict[str, Any]], key: str) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for p in packages:
        counts[p[key]] = counts.get(p[key], 0) + 1
    return counts


_PROM_PACKAGES = _packages(45, "deb")  # more than html.OPEN_MAX: a closed <details>
_LOKI_PACKAGES = _packages(3, "apk")

_FULL: Dict[str, Any] = {
    "verdict": {"ok": True, "exit_code": 0,
                "headline": "telemetry-storage 2026.11.0 is signed by %s and every file matches." % FINGERPRINT,
                "reason": None, "problems": []},
    "generated": {"tool": "offline-bundle 0.1.0", "time": "2026-12-02T10:00:00Z"},
    "subject": {"kind": "archive", "path": ARCHIVE, "sha256": hexof("archive"), "size": 734003200,
                "parts": [{"path": ARCHIVE + ".000", "sha256": hexof("part-0")},
                          {"path": ARCHIVE + ".001", "sha256": hexof("part-1")}],
                "active_version": None},
    "bundle": {"name": "telemetry-storage", "version": "2026.11.0", "bundle_id": BUNDLE_ID,
               "created": "2026-11-28T09:30:00Z", "tool": "offline-bundle 0.1.0"},
    "signer": {"fingerprint": FINGERPRINT, "algorithm": "ed25519", "key_file": "/secure/keys/bundle.pub",
               "names": ["telemetry-*", "stack-base"], "not_after": "2027-12-31", "role": "publisher"},
    "files": [
        {"path": "bundle.json", "size": 18234, "sha256": hexof("bundle.json")},
        {"path": "charts/loki-6.29.0.tgz", "size": 171043, "sha256": hexof("loki chart")},
        {"path": "config/prometheus/prometheus.yml", "size": 2311, "sha256": hexof("prometheus.yml")},
        {"path": "images/oci-layout", "size": 30, "sha256": hexof("oci-layout")},
        {"path": "images/index.json", "size": 2048, "sha256": hexof("index.json")},
        {"path": "images/blobs/sha256/" + hexof("blob-a"), "size": 31457280, "sha256": hexof("blob-a")},
        {"path": "sbom/%s.spdx.json" % hexof("prom-manifest"), "size": 402113, "sha256": hexof("prom spdx")},
        {"path": "tenants/loki-overrides.yaml", "size": 911, "sha256": hexof("loki-overrides")},
    ],
    "images": [
        {"ref": "docker.io/prom/prometheus:v3.7.3", "digest": "sha256:" + hexof("prom-manifest"),
         "index_digest": "sha256:" + hexof("prom-index"), "platforms": ["linux/amd64", "linux/arm64"],
         "upstream_signatures": [{"key": COSIGN_KEY, "digest": "sha256:" + hexof("prom-index")}],
         "signed_by_required": True,
         "referrers": [{"kind": "cosign-signature", "digest": "sha256:" + hexof("prom-sig"),
                        "artifact_type": "application/vnd.dev.cosign.simplesigning.v1+json"},
                       {"kind": "attestation", "digest": "sha256:" + hexof("prom-att"),
                        "artifact_type": "application/vnd.in-toto+json"}]},
        {"ref": "docker.io/grafana/loki:3.5.7", "digest": "sha256:" + hexof("loki-manifest"),
         "index_digest": None, "platforms": ["linux/amd64"], "upstream_signatures": [],
         "signed_by_required": False, "referrers": []},
    ],
    "sboms": {
        "made": True, "reason": None, "tool": "syft 1.18.1",
        "images": [
            {"ref": "docker.io/prom/prometheus:v3.7.3", "digest": "sha256:" + hexof("prom-manifest"),
             "platform": "linux/amd64", "origin": "syft",
             "files": ["sbom/%s.spdx.json" % hexof("prom-manifest"), "sbom/%s.cdx.json" % hexof("prom-manifest")],
             "packages": _PROM_PACKAGES, "by_type": _counts(_PROM_PACKAGES, "type"),
             "licenses": _counts(_PROM_PACKAGES, "license")},
            {"ref": "docker.io/grafana/loki:3.5.7", "digest": "sha256:" + hexof("loki-manifest"),
             "platform": "linux/amd64", "origin": "upstream",
             "files": ["sbom/%s.upstream.spdx.json" % hexof("loki-manifest")],
             "packages": _LOKI_PACKAGES, "by_type": _counts(_LOKI_PACKAGES, "type"),
             "licenses": _counts(_LOKI_PACKAGES, "license")},
        ],
        "others": [{"path": "sbom/charts.spdx.json", "kind": "charts", "sha256": hexof("charts spdx")}],
    },
    "provenance": {
        "present": True, "verified": True, "reason": None, "signer": FINGERPRINT,
        "builder_id": "https://offline-bundle.example/builder/v1", "build_type": "offline-bundle/build@v1",
        "started": "2026-11-28T09:10:00Z", "finished": "2026-11-28T09:29:58Z",
        "manifest_sha256": hexof("manifest.yaml"), "lock_sha256": hexof("lock.json"),
        "mirrors": ["docker.io=mirror.local/hub", "quay.io=mirror.local/quay"], "tool": "offline-bundle 0.1.0",
        "subjects": 14, "statement_sha256": hexof("statement"),
    },
    "warnings": ["image docker.io/grafana/loki:3.5.7 has no upstream signature (none was required)"],
    "commands": [
        {"say": "Set the two paths (absolute):",
         "run": "B=%s\nPUB=/secure/keys/bundle.pub" % ARCHIVE},
        {"say": "Extract only the signed list and its signature:",
         "run": 'tar --zstd -xf "$B" --occurrence=1 --no-same-owner --no-same-permissions SHA256SUMS SHA256SUMS.sig'},
        {"say": "Verify the signature over SHA256SUMS (Ed25519):",
         "run": 'openssl pkeyutl -verify -pubin -inkey "$PUB" -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig'},
        {"say": "Extract and check every file:",
         "run": 'mkdir tree\ntar --zstd -xf "$B" -C tree --no-same-owner --no-same-permissions\n'
                '(cd tree && sha256sum -c --strict --quiet ../SHA256SUMS)'},
    ],
}

_FAILED: Dict[str, Any] = {
    "verdict": {"ok": False, "exit_code": 4, "headline": "the signature does not verify",
                "reason": "SHA256SUMS.sig is not a valid signature by %s" % FINGERPRINT,
                "problems": ["SHA256SUMS.sig: signature check failed"]},
    "subject": {"kind": "archive", "path": ARCHIVE},
}


def full_report() -> Dict[str, Any]:
    """A verified archive's report with every key filled in (a fresh copy each call)."""
    return copy.deepcopy(_FULL)


def failed_report() -> Dict[str, Any]:
    """A failed verify's report: the verdict and the archive path only (a fresh copy each call)."""
    return copy.deepcopy(_FAILED)


# Hostile values: markup that would run or load, terminal escapes, bidi and other invisible characters.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(document.cookie)>'
ANSI = "\x1b[1A\x1b[2K\x1b]0;owned\x07"
RLO = "evil\u202egnp.exe"
OTHERS = "a\x00b\x85c\u2028d\u2029e\u2066f\u2069g\u202ah\x7fi\u200bj\r"


def hostile_report() -> Dict[str, Any]:
    """The full report with markup, script, control and bidi characters in its values (a fresh copy each call)."""
    report = full_report()
    bad = SCRIPT + IMG + ANSI + RLO
    report["verdict"]["headline"] = "x " + bad
    report["images"][0]["ref"] = "docker.io/" + SCRIPT
    report["images"][1]["ref"] = IMG
    report["images"][0]["referrers"][0]["artifact_type"] = ANSI + "text/plain"
    report["images"][0]["platforms"] = [RLO, "linux/amd64\n<b>x</b>"]
    report["bundle"]["name"] = RLO
    report["signer"]["key_file"] = "/keys/" + ANSI
    report["signer"]["names"] = [IMG, OTHERS]
    report["files"][0]["path"] = "a\nb\tc" + SCRIPT
    report["sboms"]["images"][0]["packages"][0]["name"] = SCRIPT
    report["sboms"]["images"][0]["packages"][1]["purl"] = "javascript:alert(1)//" + IMG
    report["sboms"]["images"][0]["by_type"][SCRIPT] = 3
    report["sboms"]["images"][0]["licenses"][IMG] = 2
    report["provenance"]["builder_id"] = "https://evil.example/" + IMG
    report["warnings"].append(bad + "\nsecond line")
    report["commands"].append({"say": SCRIPT, "run": "echo '</pre><script>x</script>'\n" + ANSI})
    report["generated"]["time"] = OTHERS
    return report


def digests(report: Dict[str, Any]) -> List[str]:
    """Every value of ``report`` that is a 64-hex digest or fingerprint, as written there (with any ``sha256:`` or
    ``SHA256:`` prefix), each once, in order."""
    found: List[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            if re.fullmatch(r"(?:[A-Za-z0-9]+:)?[0-9a-f]{64}", value) and value not in found:
                found.append(value)

    walk(report)
    return found
