"""The kit's bundles, versions and last installs."""

import os
from typing import Dict, List, Optional, Sequence

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt
from installer.format.model import Outcome, Phase
from installer.kit.layout import Kit, resolve_keys


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
                "*" if v["current"] else " ", v["version"], (v["bundle_id"] or "?")[:16], (v["signer"] or "none"),
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


COMMANDS = [Command("status", "show the kit's bundles, versions and last installs",
            [KIT_OPT, Opt("--signer", metavar="FP", help="only versions admitted by this key fingerprint"),
             Opt("--verify", help="also re-hash every installed version against its signed SHA256SUMS and today's "
                                  "trusted keys (exit 5 or 4 when anything differs)"), TRUST_OPT],
            run_status, text_status)]
