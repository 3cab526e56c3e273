"""Build-side commands, described with the same specs as the installer's."""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

from installer.cli.commands import Command, Opt

from bundler.seal import keys
from bundler.emit import standalone
from installer.errors import UsageError

from bundler.seal.archive import parse_size
from bundler.build import build, seal
from bundler.stage.stage import SourceOptions, lock
from bundler.resources import default_manifest


def run_keygen(out: str, algorithm: str = "ed25519", **_: Any) -> Dict[str, str]:
    key_path, pub_path, public = keys.keygen(out, algorithm or "ed25519")
    result = keys.describe_public(public)
    result.update(key=key_path, pub=pub_path)
    return result


def text_keygen(r: Dict[str, str]) -> List[str]:
    return ["wrote %s (private, 0600) and %s" % (r["key"], r["pub"]),
            "fingerprint %s (%s)" % (r["fingerprint"], r["algorithm"]),
            "reviewers verify SHA256SUMS with: %s" % r["openssl_verify"]]


SOURCE_OPTS = [
    Opt("--cache", metavar="DIR", help="content-addressed blob cache (default: ~/.cache/offline-bundle)"),
    Opt("--mirror", metavar="SRC=DST", multiple=True,
        help="fetch SRC (registry host[/path]) through DST (host[:port][/prefix]); longest SRC wins"),
    Opt("--registry-ca", metavar="FILE", help="CA bundle to verify registry TLS certificates"),
    Opt("--insecure-registry", metavar="HOST", dest="insecure_registry", multiple=True,
        help="allow plain HTTP or unverified TLS to HOST[:PORT]"),
]


def source_options(cache: Optional[str] = None, mirror: Sequence[str] = (), registry_ca: Optional[str] = None,
                   insecure_registry: Sequence[str] = (), quiet: bool = False, locked: bool = False,
                   ignore_lock: bool = False) -> SourceOptions:
    if locked and ignore_lock:
        raise UsageError("--locked and --ignore-lock cannot be used together")
    mode = "locked" if locked else "ignore" if ignore_lock else "default"
    return SourceOptions(cache or "", tuple(mirror or ()), registry_ca, tuple(insecure_registry or ()), not quiet, mode)


def run_build(manifest: Optional[str] = None, key: str = "", out: str = ".", cache: Optional[str] = None,
              mirror: Sequence[str] = (), registry_ca: Optional[str] = None, insecure_registry: Sequence[str] = (),
              quiet: bool = False,
              locked: bool = False, ignore_lock: bool = False, split_size: Optional[str] = None,
              unsigned: bool = False, with_installer: bool = False, delta_from: Optional[str] = None,
              no_sbom: bool = False, **_: Any) -> Dict[str, Any]:
    if with_installer and unsigned:
        raise UsageError("--with-installer signs the installer with --key; after --unsigned and seal, run "
                         "export-installer where the key is")
    if not key and not unsigned:
        raise UsageError("build needs --key KEY (or --unsigned, then seal)")
    if key and unsigned:
        raise UsageError("--unsigned builds without a key; drop --key")
    if unsigned and delta_from:
        raise UsageError("--delta-from needs --key: a staged build cannot be a delta yet (seal the full version, "
                         "then build the delta where the key is)")
    opts = dataclasses.replace(source_options(cache, mirror, registry_ca, insecure_registry, quiet, locked,
                                              ignore_lock), sbom=not no_sbom)
    size = parse_size(split_size) if split_size else 0
    result = build(manifest or default_manifest(), key, out or ".", opts=opts, split_size=size, unsigned=unsigned,
                   delta_from=delta_from)
    return standalone.with_installer(result, key, out or ".") if with_installer else result


def run_seal(staged: str, sig: str, trust: Sequence[str] = (), **_: Any) -> Dict[str, Any]:
    return seal(staged, sig, list(trust or ()))


def run_lock(manifest: Optional[str] = None, cache: Optional[str] = None, mirror: Sequence[str] = (),
             registry_ca: Optional[str] = None, insecure_registry: Sequence[str] = (), quiet: bool = False,
             **_: Any) -> Dict[str, Any]:
    return lock(manifest or default_manifest(), source_options(cache, mirror, registry_ca, insecure_registry, quiet))


def text_lock(r: Dict[str, Any]) -> List[str]:
    return ["wrote %s: %d images, %d charts, %d files pinned" % (r["lock"], r["images"], r["charts"], r["files"])]


def text_build(r: Dict[str, Any]) -> List[str]:
    if "staged" in r:
        step = ("step 1 of 2: sign the provenance statement" if r.get("step") == "provenance"
                else "step 2 of 2: sign SHA256SUMS")
        return ["staged %s %s in %s (%s)" % (r["name"], r["version"], r["staged"], step),
                "sign %s elsewhere, then run" % r["sign"],
                "  offline-bundle seal %s --sig SIGNATURE_FILE [--trust bundle.pub]" % r["staged"]] + \
            (["bundle_id %s" % r["bundle_id"]] if r.get("bundle_id") else []) + [r["staged"]]
    checks = ["chart %s: %s" % (name, "rendered with helm; every container image is in the bundle" if state == "ok" else
                                "image check %s" % state) for name, state in sorted(r.get("helm_check", {}).items())]
    signer = "signed by %s" % r["signer"] if r["signer"] else "signature not checked here (seal without --trust)"
    return ["built %s %s: %d files (%d images, %d charts), %d bytes, %s" % (
                r["name"], r["version"], r["files"], r["images"], r.get("charts", 0), r["total_size"], signer)
            ] + checks + [
            "bundle_id %s" % r["bundle_id"],
            "sha256 %s  (%d bytes compressed%s)" % (r["sha256"], r["size"],
                                                    ", in %d parts" % len(r["parts"]) if r.get("parts") else ""),
            "lock file: %s" % r["lock"]["status"]] + ["warning: %s" % w for w in r.get("warnings", [])] + \
        (["delta: %d files (%d bytes) omitted, present in %s" % (r["delta"]["omitted"], r["delta"]["omitted_bytes"],
          ", ".join("%s %s" % (b["name"], b["version"]) for b in r["delta"]["base"]) or "the inventory")]
         if r.get("delta") else []) + \
        standalone.installer_lines(r)


BUILD_COMMANDS: List[Command[Any]] = [
    Command("keygen", "create a signing key pair (bundle.key 0600, bundle.pub)",
            [Opt("--out", metavar="DIR", required=True, help="folder for bundle.key and bundle.pub"),
             Opt("--algorithm", metavar="ALG", choices=("ed25519", "ecdsa-p256"), default="ed25519",
                 help="ed25519 (default) or ecdsa-p256 (for OpenSSL without EdDSA)")],
            run_keygen, text_keygen),
    Command("build", "build a signed bundle archive from a manifest",
            [Opt("manifest", metavar="[MANIFEST]"),
             Opt("--key", metavar="KEY", help="private signing key (PKCS#8 PEM); not with --unsigned"),
             Opt("--out", metavar="DIR", default=".", help="output folder (default: .)")] + SOURCE_OPTS + [
             Opt("--locked", help="fail (exit 5) on a missing or stale lock file or anything it does not pin"),
             Opt("--ignore-lock", help="build from the manifest alone (recorded in bundle.json)"),
             Opt("--split-size", metavar="SIZE", help="cut the archive into parts for removable media "
                                                      "(binary units: 700M, 4G; fat32 = 4 GiB - 1 MiB)"),
             Opt("--unsigned", help="stop before signing: write DIR/<name>-<version>.staged/ for `seal`"),
             Opt("--no-sbom", dest="no_sbom",
                 help="make no SBOMs of the images (bundle.json records that none were made)"),
             Opt("--with-installer",
                 help="also write offline-bundle-installer-<ver>/ into --out (see export-installer)"),
             Opt("--delta-from", metavar="INVENTORY_OR_OLD_BUNDLE",
                 help="write a .delta.bundle.tar.zst carrying only files the base lacks "
                      "(a kit's inventory or an old bundle)")],
            run_build, text_build),
    Command("export-installer",
            "write the standalone installer folder (installer.pyz, wheels, signed INSTALLER.SHA256SUMS)",
            [Opt("--key", metavar="KEY", required=True, help="private signing key (PKCS#8 PEM), the bundles' key"),
             Opt("--out", metavar="DIR", default=".", help="output folder (default: .)"),
             Opt("--wheels", metavar="DIR",
                 help="folder of speed-up wheels (*.whl) to ship, hash-checked, never pip-installed")],
            standalone.run_export_installer, standalone.text_export_installer),
    Command("seal", "write the archive from a staged build and a signature made elsewhere (openssl, HSM, KMS)",
            [Opt("staged", metavar="STAGED"), Opt("--sig", metavar="FILE", required=True,
                                                  help="detached signature of STAGED/SHA256SUMS"),
             Opt("--trust", metavar="KEY_OR_DIR", multiple=True, help="check the signature with this key first")],
            run_seal, text_build),
    Command("lock", "resolve every image and chart to digests into <stem>.lock.json beside the manifest",
            [Opt("manifest", metavar="[MANIFEST]")] + SOURCE_OPTS, run_lock, text_lock),
]
