"""Install an archive into a kit."""

import os
from typing import List, Optional, Sequence

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt
from installer.install import DeployOptions, install


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


COMMANDS = [Command("install", "verify an archive, unpack it into the kit and make it current",
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
            run_install, text_install)]
