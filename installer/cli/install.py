"""Install an archive into a kit."""

import os
from typing import Any, Dict, List, Optional, Sequence

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt
from installer.install import (DeployOptions, InstallResult, apply_record, docker_record, install, outputs_record,
                               secrets_record, site_record)
from installer.kit.secretsaccess import parse_group
from installer.cli.verify import report_json

Json = Dict[str, Any]


def run_install(archive: str, kit: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
                reason: Optional[str] = None, keep_failed: bool = False, quiet: bool = False,
                registry: Optional[str] = None, registry_ca: Optional[str] = None,
                insecure_registry: Optional[Sequence[str]] = (), strip_source_host: bool = False,
                docker: bool = False, platform: Optional[str] = None, dev_tls: bool = False, apply: bool = False,
                secrets_group: Optional[str] = None, **_: Any) -> InstallResult:
    deploy = DeployOptions(registry, registry_ca, tuple(insecure_registry or ()), strip_source_host, docker, platform,
                           dev_tls, apply, secrets_gid=parse_group(secrets_group))
    return install(archive, kit, trust, allow_downgrade, reason, keep_failed, show_progress=not quiet, deploy=deploy)


# --- JSON: the `result` of `install --json` ------------------------------------------------------
# Its deploy, docker and outputs parts are the receipt's own records of them (installer/install.py).
def verify_json(r: InstallResult) -> Json:
    """Phase 1's verify report: the same keys `verify --json` gives an archive."""
    return report_json(r.verified)


def install_json(r: InstallResult) -> Json:
    if r.push is not None:
        deploy = site_record(r.push, r.apply)
    else:
        deploy = {"apply": apply_record(r.apply)} if r.apply is not None else {}
    result = verify_json(r)
    result.update(deploy=deploy, docker=docker_record(r.docker) if r.docker is not None else {},
                  outputs=outputs_record(r.outputs) if r.outputs is not None else {}, repaired=list(r.repaired),
                  outcome=r.outcome, previous=r.previous, current=r.current, kit=r.kit, path=r.path,
                  receipt=r.receipt, secrets=secrets_record(r.secrets),
                  phases=[{"phase": p.phase, "name": p.name, "status": p.status, "detail": p.detail}
                          for p in r.phases])
    return result


# --- text, for people ------------------------------------------------------------------------------
def text_install(r: InstallResult) -> List[str]:
    meta = r.meta
    if r.outcome == "already-installed":
        head = "%s %s is already installed (bundle_id %s); the archive was verified again%s" % (
            meta.name, meta.version, r.verified.bundle_id, "" if r.repaired else " and the installed tree is intact")
    else:
        head = "installed %s %s (%d files checked, %d payload bytes), signed by %s" % (
            meta.name, meta.version, r.verified.files, meta.total_size, r.signer)
    lines = [head, "current: %s -> %s (was %s)" % (meta.name, r.current, r.previous or "none"),
             "path: %s" % r.path, "receipt: %s" % r.receipt]
    if r.repaired:
        lines.append("the installed tree was damaged and has been repaired from this archive:")
        lines += ["  %s" % line for line in r.repaired]
    if r.secrets is not None:
        lines.append("secrets readable by group %d (and no one else): %s" % (
            r.secrets.gid, ", ".join(r.secrets.paths) or "none: the bundle's compose files mount no site folder"))
    d = r.push
    if d is not None:
        lines.append("site %s: %d blobs pushed (%d bytes), %d mounted, %d already there; %d manifests pushed; "
                     "%d tags moved, %d already current" % (d.site, d.blobs_pushed,
                                                             d.bytes_pushed, d.blobs_mounted, d.blobs_present,
                                                             d.manifests_pushed, d.tags_moved, d.tags_current))
        if d.referrers_pushed or d.referrer_tags:
            lines.append("  %d referrers pushed (signatures, attestations, SBOMs), %d referrer tags written"
                         % (d.referrers_pushed, d.referrer_tags))
        lines += ["  %s" % t for t in d.images]
        lines += ["  helm pull %s" % c for c in d.charts]
    for image in meta.images:
        if image.skipped_layers:
            lines.append("%s: %d foreign layer%s not carried (foreign-layers: skip): hosts running it fetch %s "
                         "from its publisher's URLs" % (image.ref, len(image.skipped_layers),
                                                        "" if len(image.skipped_layers) == 1 else "s",
                                                        "it" if len(image.skipped_layers) == 1 else "them"))
    if r.outputs is not None:
        out = r.outputs.rendered
        lines.append("deploy outputs in %s:" % os.path.join(r.kit, out.folder))
        lines += ["  %s" % f for f in out.files]
        lines.append("to deploy:")
        lines += ["  %s" % c for c in out.commands]
        lines += ["  (not written: %s)" % s for s in r.outputs.kubernetes_skipped]
    if r.apply is not None:
        done = [("kubernetes", r.apply.kubernetes), ("compose", r.apply.compose)]
        if any(a is not None for _, a in done):
            lines.append("apply: %s" % "; ".join("%s: %s" % (k, a.status) for k, a in done if a is not None))
        k8s = r.apply.kubernetes
        if k8s is not None and k8s.status.startswith("no kubeconfig"):
            lines += ["  %s" % c for c in k8s.commands or []]  # Kubernetes' own, even when compose ran too
    if r.docker is not None:
        lines.append("docker (%s): %d images loaded, each ID equal to its config digest (engine %s)"
                     % (r.docker.platform, len(r.docker.images), r.docker.engine or "version unknown"))
        lines += ["  %s  %s" % (i.id[:19], ", ".join(i.tags) or i.ref) for i in r.docker.images]
        lines += ["  not loaded: %s: %s" % (k.ref, k.reason) for k in r.docker.skipped]
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
             Opt("--secrets-group", metavar="GID", dest="secrets_group",
                 help="make the secrets the compose containers mount readable by this group only (docs/TLS.md)"),
             Opt("--apply", help="run kubectl apply and helm upgrade --install (or print them without a kubeconfig); "
                                 "with --docker, bring the compose stack up")],
            run_install, text_install, install_json)]
