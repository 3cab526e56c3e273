"""The installer's commands: one implementation behind two front doors.

``installer.cli.main`` (argparse, standalone) and ``bundler.cli`` (click) both build their options
from the specs below and call the same functions, so their options are identical by design.
Each function returns a JSON-able result; ``text`` renders it for people.
"""

import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from installer.errors import UsageError
from installer.install import DeployOptions, install
from installer.kit.layout import Kit, resolve_keys
from installer.format.model import Outcome, Phase
from installer.format.oci import kind_of
from installer.format.semver import is_semver
from installer.trust.signing import load_public_key
from installer.trust.store import TrustStore
from installer.format.tarstream import TarReader
from installer.trust.verify import READ_CHUNK, open_archive, read_head, verify_file
from installer.format.zstd import open_decompressed


class Opt:
    """One option or positional argument. ``metavar=None`` on an option makes it a flag."""

    def __init__(self, *flags: str, dest: str = "", metavar: Optional[str] = None, help: str = "",
                 required: bool = False, multiple: bool = False, choices: Sequence[str] = (),
                 default=None) -> None:
        self.flags = flags
        self.positional = not flags[0].startswith("-")
        self.dest = dest or flags[0].lstrip("-").replace("-", "_")
        self.metavar = metavar if metavar or self.positional else None
        self.is_flag = not self.positional and metavar is None
        self.help = help
        # Positionals are required unless the spec says otherwise (then written [NAME]).
        self.required = required if not self.positional else required or metavar is None or not metavar.startswith("[")
        self.multiple = multiple
        self.choices = tuple(choices)
        self.default = default


class Command:
    def __init__(self, name: str, help: str, opts: List[Opt], run: Callable[..., dict],
                 text: Callable[[dict], List[str]]) -> None:
        self.name = name
        self.help = help
        self.opts = opts
        self.run = run
        self.text = text


COMMON = [
    Opt("--json", help="print exactly one JSON object {ok, exit_code, error, result} on stdout"),
    Opt("--quiet", help="print nothing but errors (and, for build, the archive path)"),
]
TRUST_OPT = Opt("--trust", metavar="KEY_OR_DIR", multiple=True,
                help="trusted public key (.pub) or folder of them; default: the kit's trust store")


def _short(fp: Optional[str]) -> str:
    return fp or "none"


# --- verify ---------------------------------------------------------------------------------
TARGET_RE = re.compile(r"([a-z0-9][a-z0-9-]{0,62})(?:@(.+))?")  # NAME[@VERSION], used with fullmatch


def run_verify(archive: Optional[str] = None, trust: Sequence[str] = (), kit: Optional[str] = None,
               quiet: bool = False, **_) -> dict:
    """An archive (signature, every checksum, structure), or with --kit and no archive (or NAME[@VERSION])
    the installed versions themselves, re-hashed against their signed SHA256SUMS and today's keys."""
    target = _kit_target(archive, kit)
    if target is not None:
        return verify_kit(kit, trust, *target)
    if archive is None:
        raise UsageError("name an ARCHIVE to verify, or give --kit DIR to verify what is installed there")
    k = Kit.existing(kit) if kit else None
    keys = resolve_keys(trust, k)
    index = None
    if k is not None:
        from installer.kit.deltaindex import KitIndex

        index = KitIndex(k)
    v = verify_file(archive, keys, show_progress=not quiet, kit_index=index)
    result = v.summary()
    result.update(archive=archive, checks={"signature": "ok", "bundle.json": "ok", "members": "ok",
                                           "structure": "ok", "sidecar": v.sidecar})
    return result


def _kit_target(arg: Optional[str], kit: Optional[str]) -> Optional[Tuple[Optional[str], Optional[str]]]:
    """(name, version) when the command verifies the kit itself: --kit with no archive, or with NAME[@VERSION]
    that is not a file or folder on disk (a bundle name has no '.', an archive's file name always has one)."""
    if not kit:
        return None
    if arg is None:
        return None, None
    match = TARGET_RE.fullmatch(arg)
    if match is None or os.path.lexists(arg):
        return None
    version = match.group(2)
    if version is not None and not is_semver(version):
        raise UsageError("%r: the version after @ is not SemVer" % arg)
    return match.group(1), version


def verify_kit(kit: str, trust: Sequence[str], name: Optional[str], version: Optional[str]) -> dict:
    from installer.kit.check import check_kit, summary_error

    k = Kit.existing(kit)
    checks = check_kit(k, resolve_keys(trust, k), name, version)
    if name and not checks:
        raise UsageError("%s%s is not installed in %s" % (name, "@" + version if version else "", kit))
    failure = summary_error(checks)
    if failure is not None:
        cls, sentence, lines = failure
        raise cls(sentence, lines)
    return {"kit": k.root, "versions": [c.to_json() for c in checks]}


def text_verify(r: dict) -> List[str]:
    if "versions" in r:
        return ["OK %s %s: every file matches its signed SHA256SUMS; signed by %s"
                % (c["name"], c["version"], c["signer"])
                for c in r["versions"]] or ["kit %s holds no bundles" % r["kit"]]
    delta = r.get("delta")
    extra = []
    if delta:
        extra = ["delta against %s: %d files (%d bytes) omitted, %d of them checked in the kit%s" % (
            ", ".join("%s %s" % (b["name"], b["version"]) for b in delta["base"]), delta["omitted"],
            delta["omitted_bytes"], delta["checked_in_kit"],
            "" if r["complete"] else "; complete: false (pass --kit DIR to check the rest)")]
    verdict = "OK" if r["complete"] else "INCOMPLETE (a delta: signature and carried files good)"
    return extra + ["%s %s %s: signature by %s; %d files (%d payload bytes) listed in SHA256SUMS" % (
                verdict, r["name"], r["version"], r["signer"], r["files"], r["total_size"]),
            "bundle_id %s" % r["bundle_id"],
            "archive sha256 %s (sidecar: %s)" % (r["archive_sha256"], r["sidecar"])]


# --- inspect ------------------------------------------------------------------------------
# Unverified, inspect reads at most this much of SHA256SUMS, bundle.json or DELTA.json. An unsigned head
# costs an attacker nothing to inflate (64 MiB of JSON compresses to a few KB) while parsing it costs
# many times its size (1.75 GB for a 64 MiB bundle.json); a real bundle.json of thousands of files is
# well under this. A head signed by a trusted key is read within the format's own caps.
INSPECT_UNVERIFIED_CAP = 4 * 1024 * 1024
_INSPECT_FIELDS = ("name", "version", "created", "tool", "total_size", "members", "files", "tenants", "images",
                   "charts")


def run_inspect(archive: str, trust: Sequence[str] = (), **_) -> dict:
    """Reads the first three members only; without a trusted signature everything is UNVERIFIED."""
    keys = resolve_keys(trust, None) if trust else []
    with open_archive(archive) as fh:
        stream = open_decompressed(fh)
        try:
            v = read_head(TarReader(stream, READ_CHUNK), keys, require_trust=False,
                          unverified_cap=INSPECT_UNVERIFIED_CAP)
        finally:
            stream.close()
    raw = v.meta.to_dict() if v.meta else {}
    result = {
        "verified": v.signer is not None,
        "status": "signature verified" if v.signer else "UNVERIFIED",
        "signer": v.signer.fingerprint if v.signer else None,
        "bundle_id": v.bundle_id or None,
        "too_large": v.too_large, "unverified_cap": INSPECT_UNVERIFIED_CAP,
        "lock": raw.get("lock"), "mirrors": raw.get("mirrors", []) if raw else None,
    }
    result.update((key, raw.get(key)) for key in _INSPECT_FIELDS)
    return result


def _got(obj, key: str, default="?"):
    """A field of an unverified record that may be missing or of another type (only shown, never used)."""
    return obj.get(key, default) if isinstance(obj, dict) else default


def _inspect_images(r: dict) -> List[str]:
    lines = []
    for image in r["images"]:
        platforms = _got(image, "platforms")
        listed = platforms if isinstance(platforms, list) else [platforms]
        platforms = "all platforms" if platforms == "all" else ", ".join(str(p) for p in listed)
        lines.append("image %s" % image["ref"])
        lines.append("  %s  %s (%s%s; %s)" % (image["digest"], kind_of(image["media_type"]),
                                               platforms, ", derived index" if image["derived"] else "",
                                               "from %s" % _got(image, "fetched_from")))
    return lines


def text_inspect(r: dict) -> List[str]:
    lines = []
    if not r["verified"]:
        lines.append("UNVERIFIED: no trusted key signed this bundle; everything below is only what it claims")
    else:
        lines.append("signature verified: signed by %s (payload not read; run verify for every checksum)" % r["signer"])
    for big in r.get("too_large", []):
        lines.append("%s is %d bytes, too large to show unverified (inspect reads at most %d bytes of an unsigned "
                     "head; pass --trust KEY, or run verify)" % (big["member"], big["size"], big["cap"]))
    if r["name"] is not None:
        tool = r["tool"]
        lines.append("%s %s  created %s  by %s %s"
                     % (r["name"], r["version"], r["created"], tool["name"], tool["version"]))
    if r["bundle_id"]:
        lines.append("bundle_id %s" % r["bundle_id"])
    if r["name"] is None:
        return lines
    lines.append("bundle.json and %d payload files, %d bytes:" % (len(r["members"]), r["total_size"]))
    blobs = [m for m in r["members"] if m["path"].startswith("images/blobs/")]
    for m in r["members"]:
        if not m["path"].startswith("images/blobs/"):
            lines.append("  %12d  %s%s" % (m["size"], m["path"], "  (executable)" if m.get("executable") else ""))
    if blobs:
        lines.append("  %12d  images/blobs/sha256/ (%d blobs)" % (sum(m["size"] for m in blobs), len(blobs)))
    lines += _inspect_images(r)
    for component, t in sorted(r["tenants"].items()):
        lines.append("tenant overrides for %s: %s (from %s)" % (component, _got(t, "path"), _got(t, "source")))
    return lines


# --- install ------------------------------------------------------------------------------
def run_install(archive: str, kit: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
                reason: Optional[str] = None, keep_failed: bool = False, quiet: bool = False,
                registry: Optional[str] = None, registry_ca: Optional[str] = None, insecure_registry=(),
                strip_source_host: bool = False, docker: bool = False, platform: Optional[str] = None,
                dev_tls: bool = False, apply: bool = False, **_) -> dict:
    deploy = DeployOptions(registry, registry_ca, tuple(insecure_registry or ()), strip_source_host, docker, platform,
                           dev_tls, apply)
    return install(archive, kit, trust, allow_downgrade, reason, keep_failed, show_progress=not quiet, deploy=deploy)


def text_install(r: dict) -> List[str]:
    if r["outcome"] == "already-installed":
        head = "%s %s is already installed (bundle_id %s); the archive was verified again%s" % (
            r["name"], r["version"], r["bundle_id"], "" if r.get("repaired") else " and the installed tree is intact")
    else:
        head = "installed %s %s (%d files checked, %d payload bytes), signed by %s" % (
            r["name"], r["version"], r["files"], r["total_size"], r["signer"])
    lines = [head, "current: %s -> %s (was %s)" % (r["name"], r["current"], r["previous"] or "none"),
             "path: %s" % r["path"], "receipt: %s" % r["receipt"]]
    if r.get("repaired"):
        lines.append("the installed tree was damaged and has been repaired from this archive:")
        lines += ["  %s" % line for line in r["repaired"]]
    d = r.get("deploy") or {}
    if d:
        lines.append("site %s: %d blobs pushed (%d bytes), %d mounted, %d already there; %d manifests pushed; "
                     "%d tags moved, %d already current" % (d["site"], d["blobs_pushed"], d["bytes_pushed"],
                                                             d["blobs_mounted"], d["blobs_present"],
                                                             d["manifests_pushed"], d["tags_moved"], d["tags_current"]))
        lines += ["  %s" % t for t in d["images"]]
        lines += ["  helm pull %s" % c for c in d.get("charts", [])]
    out = r.get("outputs") or {}
    if out:
        lines.append("deploy outputs in %s:" % os.path.join(r["kit"], out["folder"]))
        lines += ["  %s" % f for f in out["files"]]
        lines.append("to deploy:")
        lines += ["  %s" % c for c in out["commands"]]
        lines += ["  (not written: %s)" % s for s in out.get("kubernetes_skipped", [])]
    applied = (r.get("deploy") or {}).get("apply") or {}
    if applied:
        lines.append("apply: %s" % "; ".join("%s: %s"
                                             % (k, applied[k]) for k in ("kubernetes", "compose") if k in applied))
        if applied.get("kubernetes", "").startswith("no kubeconfig"):
            lines += ["  %s" % c for c in applied.get("commands", [])]
    dk = r.get("docker") or {}
    if dk:
        lines.append("docker (%s): %d images loaded, each ID equal to its config digest"
                     % (dk["platform"], len(dk["images"])))
        lines += ["  %s  %s" % (i["id"][:19], ", ".join(i["tags"]) or i["ref"]) for i in dk["images"]]
    return lines


# --- status -------------------------------------------------------------------------------
def run_status(kit: str, signer: Optional[str] = None, verify: bool = False, trust: Sequence[str] = (), **_) -> dict:
    k = Kit.existing(kit)
    result = _status(k, signer)
    if verify:
        from installer.kit.check import check_kit, summary_error

        checks = {(c.name, c.version): c for c in check_kit(k, resolve_keys(trust, k))}
        for b in result["bundles"]:
            for v in b["versions"]:
                check = checks[(b["name"], v["version"])]
                v["integrity"] = "ok" if check.ok else check.problems + check.trust_problems
        failure = summary_error(list(checks.values()))
        if failure is not None:
            cls, sentence, lines = failure
            raise cls(sentence, lines)
    return result


def _status(k: Kit, signer: Optional[str]) -> dict:
    bundles = []
    for name in k.names():
        receipts = k.receipts_list(name)
        admitted: Dict[str, dict] = {}  # version -> who signed it and when it was installed
        for receipt in receipts:
            promoted = [p for p in receipt.phases if p.done(Phase.PROMOTE)]
            if promoted:
                admitted[receipt.version] = {"signer": receipt.signer, "finished": receipt.finished or promoted[0].at}
            elif receipt.outcome in (Outcome.INSTALLED, Outcome.ALREADY_INSTALLED) and receipt.version not in admitted:
                admitted[receipt.version] = {"signer": receipt.signer, "finished": receipt.finished}
        current = k.current_version(name)
        versions = []
        for version in k.versions(name):
            r = admitted.get(version, {})
            entry = {"version": version, "bundle_id": k.bundle_id_of(name, version), "signer": r.get("signer"),
                     "installed_at": r.get("finished"), "current": version == current}
            if signer and entry["signer"] != signer:
                continue
            versions.append(entry)
        if signer and not versions:
            continue
        last = receipts[-1] if receipts else None
        deploy_root = os.path.join(k.deploy, name)
        outputs = []
        for version in k.versions(name):
            folder = os.path.join(deploy_root, version)
            if os.path.isdir(folder):
                for site in sorted(os.listdir(folder)):
                    if ".tmp-" in site or ".old-" in site:
                        continue
                    files = sorted(os.path.relpath(os.path.join(d, f), os.path.join(folder, site))
                                   for d, _, fs in os.walk(os.path.join(folder, site)) for f in fs)
                    outputs.append({"version": version, "site": site,
                                    "folder": os.path.relpath(os.path.join(folder, site), k.root), "files": files})
        bundles.append({
            "name": name, "current": current, "highest_current": k.highest_current(name), "versions": versions,
            "outputs": outputs,
            "last": {"outcome": last.outcome, "version": last.version, "finished": last.finished,
                     "error": last.error.get("message") if isinstance(last.error, dict) else None,
                     "phases": [{"phase": p.phase, "name": p.name, "status": p.status} for p in last.phases]}
            if last else None,
        })
    return {"kit": k.root, "bundles": bundles}


def text_status(r: dict) -> List[str]:
    if not r["bundles"]:
        return ["kit %s holds no bundles" % r["kit"]]
    lines = ["kit %s" % r["kit"]]
    for b in r["bundles"]:
        lines.append("%s: current %s" % (b["name"], b["current"] or "none"))
        for v in b["versions"]:
            lines.append("  %s %-16s bundle_id %s  signer %s%s%s" % (
                "*" if v["current"] else " ", v["version"], (v["bundle_id"] or "?")[:16], _short(v["signer"]),
                "  installed %s" % v["installed_at"] if v["installed_at"] else "",
                "  verified: every file matches its signed SHA256SUMS" if v.get("integrity") == "ok" else ""))
        for o in b.get("outputs", []):
            lines.append("  outputs for %s, site %s: %s (%d files)"
                         % (o["version"], o["site"], o["folder"], len(o["files"])))
        last = b["last"]
        if last:
            lines.append("  last install: %s %s at %s%s" % (last["outcome"], last["version"], last["finished"],
                                                            ": " + last["error"] if last["error"] else ""))
    return lines


# --- inventory ------------------------------------------------------------------------------
def run_inventory(kit: str, out: Optional[str] = None, **_) -> dict:
    from installer.kit.deltaindex import inventory

    doc = inventory(kit)
    if out:
        with open(out, "w", encoding="ascii") as fh:
            json.dump(doc, fh, sort_keys=True, indent=2)
            fh.write("\n")
        return {"out": out, "bundles": doc["bundles"], "files": len(doc["sha256"])}
    return doc


def text_inventory(r: dict) -> List[str]:
    if "out" in r:
        return ["wrote %s: %d bundle versions, %d file digests (no paths, hosts or registries)"
                % (r["out"], len(r["bundles"]), r["files"])]
    return json.dumps(r, sort_keys=True, indent=2).split("\n")  # one item per line (cli escapes newlines in items)


# --- rollback, gc ---------------------------------------------------------------------------
def run_rollback(name: str, kit: str, trust: Sequence[str] = (), **_) -> dict:
    from installer.rollback import rollback

    return rollback(name, kit, trust)


def text_rollback(r: dict) -> List[str]:
    lines = ["rolled %s back: current %s (was %s)" % (r["name"], r["current"], r["previous"])]
    lines += ["  %s: %d tags moved back" % (s["site"], s["tags_moved"]) for s in r["sites"]]
    lines += ["  site outputs: %s (re-apply them with its COMMANDS.txt)" % o for o in r["outputs"]]
    return lines


def run_gc(kit: str, keep: Optional[str] = None, **_) -> dict:
    from installer.kit.lifecycle import gc

    try:
        n = int(keep) if keep is not None else 3
    except ValueError as exc:
        raise UsageError("--keep takes a number, not %r" % keep) from exc
    return gc(kit, n)


def text_gc(r: dict) -> List[str]:
    if not r["removed"]:
        return ["nothing to remove (keeping %d versions of each bundle, and every current one)" % r["kept_per_name"]]
    return ["removed %s (%d bytes freed)" % (", ".join(r["removed"]), r["bytes_freed"])]


# --- tls --------------------------------------------------------------------------------------
def run_tls(out: str, force: bool = False, service: Sequence[str] = (), namespace: Optional[str] = None,
            **_) -> dict:
    from installer.deploy.devtls import NAMESPACE, generate
    from installer.format.deployspec import TlsSpec

    return generate(out, tls=TlsSpec(tuple(service or ())), namespace=namespace or NAMESPACE, force=force)


def text_tls(r: dict) -> List[str]:
    lines = ["wrote development TLS material into %s (%s; keys 0600):" % (r["out_dir"], r["backend"])]
    for name, cert in r["certificates"].items():
        lines.append("  %-15s %s  until %s" % (name, cert["fingerprint"][:23], cert["not_after"]))
    lines.append("for development and staging only; see docs/TLS.md to use your own PKI")
    return lines


# --- trust --------------------------------------------------------------------------------
def run_trust_add(file: str, kit: str, names: Sequence[str] = (), not_after: Optional[str] = None, **_) -> dict:
    if not os.path.isfile(file):
        raise UsageError("the key %s does not exist" % file)
    load_public_key(file)
    k = Kit(kit)
    k.prepare()  # a new kit is made here; an existing one must pass Kit.check first
    with k.locked():
        return TrustStore(k.trust).add(file, list(names), not_after).to_json()


def run_trust_remove(fp: str, kit: str, **_) -> dict:
    k = Kit.existing(kit)
    with k.locked():
        if not TrustStore(k.trust).remove(fp):
            raise UsageError("no key %s is in the kit's trust store" % fp)
    return {"removed": fp}


def run_trust_list(kit: str, **_) -> dict:
    return {"keys": [k.to_json() for k in TrustStore(Kit.existing(kit).trust).keys()]}


def text_trust(r: dict) -> List[str]:
    if "removed" in r:
        return ["removed %s" % r["removed"]]
    keys = r["keys"] if "keys" in r else [r]
    return ["%s  %s  names %s%s" % (k["fingerprint"], k["algorithm"], ",".join(k["names"]),
                                    "  until %s" % k["not_after"] if k["not_after"] else "")
            for k in keys] or ["no trusted keys"]


KIT_OPT = Opt("--kit", metavar="DIR", required=True, help="the Offline Kit folder")
COMMANDS = [
    Command("verify", "check an archive's signature, checksums and structure; with --kit and no archive (or "
                      "NAME[@VERSION]), re-check what is installed",
            [Opt("archive", metavar="[ARCHIVE|NAME[@VERSION]]"), TRUST_OPT,
             Opt("--kit", metavar="DIR", help="use this kit's trust store (and its files for deltas); without an "
                                               "archive, verify the kit's installed versions")],
            run_verify, text_verify),
    Command("inspect", "show what an archive holds, reading only its first three members",
            [Opt("archive", metavar="ARCHIVE"), TRUST_OPT], run_inspect, text_inspect),
    Command("install", "verify an archive, unpack it into the kit and make it current",
            [Opt("archive", metavar="ARCHIVE"), KIT_OPT, TRUST_OPT,
             Opt("--allow-downgrade", help="allow a version below the highest ever made current"),
             Opt("--reason", metavar="TEXT", help="why the downgrade is needed (recorded in the receipt)"),
             Opt("--keep-failed", help="keep the payload of a failed install in quarantine"),
             Opt("--registry", metavar="HOST[:PORT][/PREFIX]", help="push the images to this site registry"),
             Opt("--registry-ca", metavar="FILE", help="CA bundle to verify the site registry's TLS certificate"),
             Opt("--insecure-registry", metavar="HOST", dest="insecure_registry", multiple=True,
                 help="allow plain HTTP or unverified TLS to HOST[:PORT]"),
             Opt("--strip-source-host", help="drop the source host from site repository names (refused on collisions)"),
             Opt("--docker", help="load the images into the local Docker engine (DOCKER_HOST or /var/run/docker.sock)"),
             Opt("--platform", metavar="P", help="the platform to load with --docker (default: this host's)"),
             Opt("--dev-tls", help="create development TLS material in KIT/secrets/tls if none is there"),
             Opt("--apply", help="run kubectl apply and helm upgrade --install (or print them without a kubeconfig); "
                                 "with --docker, bring the compose stack up")],
            run_install, text_install),
    Command("status", "show the kit's bundles, versions and last installs",
            [KIT_OPT, Opt("--signer", metavar="FP", help="only versions admitted by this key fingerprint"),
             Opt("--verify", help="also re-hash every installed version against its signed SHA256SUMS and today's "
                                  "trusted keys (exit 5 or 4 when anything differs)"), TRUST_OPT],
            run_status, text_status),
    Command("inventory", "the digests, names, versions and bundle_ids the kit holds (input for delta builds)",
            [KIT_OPT, Opt("--out", metavar="FILE", help="write to FILE (default: stdout)")],
            run_inventory, text_inventory),
    Command("rollback", "make the previous version current again and move registry tags back",
            [Opt("name", metavar="NAME"), KIT_OPT, TRUST_OPT], run_rollback, text_rollback),
    Command("gc", "remove old versions (never the current one)",
            [KIT_OPT, Opt("--keep", metavar="N", help="versions of each bundle to keep (default 3)")], run_gc, text_gc),
    Command("tls",
            "write development TLS material (a CA, a certificate per service, one all services share, a client one)",
            [Opt("--out", metavar="DIR", required=True, help="folder for ca.crt, tls.crt, tls.key, client.crt, ..."),
             Opt("--service", metavar="NAME", multiple=True,
                 help="a service the shared certificate serves (and gets its own certificate); repeatable"),
             Opt("--namespace", metavar="NS", help="the services' Kubernetes namespace, for their "
                                                   "NAME.NS.svc names (default: default)"),
             Opt("--force", help="replace files that already exist")],
            run_tls, text_tls),
    Command("trust add", "trust a public key for this kit",
            [Opt("file", metavar="FILE"), KIT_OPT,
             Opt("--names", metavar="GLOB", multiple=True, help="bundle names this key may sign (default: all)"),
             Opt("--not-after", metavar="DATE", help="last day (YYYY-MM-DD) this key is trusted")],
            run_trust_add, text_trust),
    Command("trust remove", "stop trusting a key", [Opt("fp", metavar="FP"), KIT_OPT], run_trust_remove, text_trust),
    Command("trust list", "list the kit's trusted keys", [KIT_OPT], run_trust_list, text_trust),
]
