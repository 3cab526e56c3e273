"""`install`: verify and stage in one streaming pass, promote, deploy, switch `current`.

Phases (docs/FORMAT.md "Kit and install phases"), each recorded in the receipt:
  1 verify and stage   2 promote to bundles/   3 push and load   4 render site outputs
  5 switch current     6 move registry tags, apply
A failure in 1-4 leaves `current` unchanged; the staging folder is quarantined with its reason.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from installer import faults
from installer.errors import (BundleError, ContentMismatch, InternalError, Interrupted, LocalEnvironmentError,
                              UsageError)
from installer.fsutil import (PathRefused, is_regular, lstat_or_none, open_regular, read_fd, read_installed)
from installer.kit.check import VersionCheck, check_version, repair as repair_tree
from installer.kit.layout import Kit, make_read_only, resolve_keys
from installer.progress import Progress
from installer.kit.admission import REINSTALL, AdmitOptions, Candidate, admit, kit_state
from installer.kit.receipts import Receipt
from installer.format.deployspec import DataEntry
from installer.format.model import BundleHead, Json, Outcome, Phase, PhaseRecord, SiteOptions, Status
from installer.kit.staging import Staging, StagingSink, clear_debris
from installer.site.dockerload import DockerLoad, DockerLoadReport
from installer.site.push import PushReport, SitePush, check_site_names, parse_site
from installer.site.retry import RetryPolicy
from installer.site.transport import Transport
from installer.deploy.apply import ApplyReport
from installer.deploy.render import DeployCommand, Rendered, render
from installer.format.deployspec import SITE_FOLDERS
from installer.kit.secretsaccess import Granted, grant, granted_gid, keeps_group, recorded_gid
from installer.trust.store import TrustedKey
from installer.trust.verify import DiscardSink, ProvenHead, VerifyReport, verify_file

MAX_SECRET_BYTES = 1024 * 1024  # a certificate, a key or a token the operator put in KIT/secrets


@dataclass(frozen=True)
class DeployOutputs:
    """Phase 4: the site outputs rendered, where the TLS material stands, and the Secrets not written."""

    rendered: Rendered
    tls: str                        # existing, missing or generated (KIT/secrets/tls)
    kubernetes_skipped: List[str]   # one sentence per Secret whose site files are missing


@dataclass(frozen=True)
class InstallResult:
    """What an install did, phase by phase. The CLI turns it into text or JSON (installer/cli/install.py)."""

    verified: VerifyReport           # phase 1: the archive's verify report
    meta: BundleHead                 # its signed head
    signer: str                      # the signer's key fingerprint
    outcome: str                     # Outcome.INSTALLED or Outcome.ALREADY_INSTALLED
    previous: Optional[str]          # the version that was current before
    current: str
    kit: str                         # the kit's root
    path: str                        # the installed tree
    receipt: str                     # relative to the kit
    phases: Tuple[PhaseRecord, ...]
    repaired: List[str]              # phase 2 of a reinstall over a damaged tree: what was restored
    push: Optional[PushReport]       # phases 3 and 6 on a site registry
    docker: Optional[DockerLoadReport]  # phase 3 with --docker
    outputs: Optional[DeployOutputs]  # phase 4
    apply: Optional[ApplyReport]     # phase 6 with --apply
    secrets: Optional[Granted] = None  # phase 4 with --secrets-group: who may read the secrets


class DeployOptions:
    """Where phases 3, 4 and 6 deliver: a site registry and/or the local Docker engine."""

    def __init__(self, registry: Optional[str] = None, registry_ca: Optional[str] = None,
                 insecure: Sequence[str] = (), strip_source_host: bool = False, docker: bool = False,
                 platform: Optional[str] = None, dev_tls: bool = False, apply: bool = False,
                 transport: Optional[Transport] = None, retry: Optional[RetryPolicy] = None,
                 secrets_gid: Optional[int] = None) -> None:
        self.transport = transport  # to the site registry; None: the real one (tests pass an in-memory registry)
        self.retry = retry
        self.dev_tls = dev_tls
        self.apply = apply
        self.secrets_gid = secrets_gid  # --secrets-group (parsed by the CLI before anything is read)
        self.registry = registry
        self.registry_ca = registry_ca
        self.insecure = tuple(insecure)
        self.strip_source_host = strip_source_host
        self.docker = docker
        self.platform = platform
        if registry:
            parse_site(registry)  # a usage error before anything is read


# The receipt's records of phases 3, 4 and 6. `install --json` shows the same objects (installer/cli/install.py uses
# these): what an operator reads after an install is what the kit keeps of it.
def apply_record(applied: ApplyReport) -> Dict[str, Json]:
    """--apply as the receipt records it (one object: a Kubernetes and a compose part share ``commands``)."""
    out: Dict[str, Json] = {}
    if applied.kubernetes is not None:
        out["kubernetes"] = applied.kubernetes.status
        if applied.kubernetes.commands is not None:
            out["commands"] = list(applied.kubernetes.commands)
        if applied.kubernetes.folder is not None:
            out["folder"] = applied.kubernetes.folder
    if applied.compose is not None:
        out["compose"] = applied.compose.status
        if applied.compose.commands is not None:
            out["commands"] = list(applied.compose.commands)
    return out


def site_record(report: PushReport, applied: Optional[ApplyReport]) -> Dict[str, Json]:
    """What the receipt keeps of a site push (``sites``): its counters and where the images are."""
    out: Dict[str, Json] = {
        "site": report.site, "blobs_pushed": report.blobs_pushed, "blobs_mounted": report.blobs_mounted,
        "blobs_present": report.blobs_present, "manifests_pushed": report.manifests_pushed,
        "manifests_present": report.manifests_present, "tags_moved": report.tags_moved,
        "tags_current": report.tags_current, "bytes_pushed": report.bytes_pushed, "images": list(report.images),
        "charts": list(report.charts), "referrers_pushed": report.referrers_pushed,
        "referrer_tags": report.referrer_tags, "foreign_skipped": list(report.foreign_skipped)}
    if applied is not None:
        out["apply"] = apply_record(applied)
    return out


def docker_record(report: DockerLoadReport) -> Dict[str, Json]:
    return {"platform": report.platform, "engine": report.engine,
            "images": [{"ref": i.ref, "id": i.id, "tags": list(i.tags), "platform": i.platform}
                       for i in report.images],
            "skipped": [{"ref": k.ref, "reason": k.reason} for k in report.skipped]}


def command_record(command: DeployCommand) -> Dict[str, Json]:
    out: Dict[str, Json] = {"argv": list(command.argv)}
    if command.env:
        out["env"] = dict(command.env)
    return out


def outputs_record(outputs: DeployOutputs) -> Dict[str, Json]:
    r = outputs.rendered
    return {"site": r.site, "folder": r.folder, "files": list(r.files), "commands": list(r.commands),
            "argv": [command_record(c) for c in r.argv], "tls": outputs.tls,
            "kubernetes_skipped": list(outputs.kubernetes_skipped)}


def secrets_record(granted: Optional[Granted]) -> Optional[Dict[str, Json]]:
    """What --secrets-group made readable, and to which group (None: no grant in this install)."""
    if granted is None:
        return None
    return {"group": granted.gid, "paths": list(granted.paths)}


class Installer:
    def __init__(self, archive: str, kit_dir: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
                 reason: Optional[str] = None, keep_failed: bool = False, show_progress: bool = True,
                 deploy: Optional[DeployOptions] = None) -> None:
        self.options = AdmitOptions(allow_downgrade, reason)  # a usage error before anything is read
        self.deploy = deploy or DeployOptions()
        self.archive = archive
        self.kit = Kit(kit_dir)
        self.trust = trust
        self.keep_failed = keep_failed
        self.show_progress = show_progress
        # Set while run() runs: the receipt once the kit is locked, the verify report once phase 1 has read the
        # signed head, the staging folder while the payload is staged and not yet promoted (or used for a repair).
        self._receipt: Optional[Receipt] = None
        self.verified: Optional[ProvenHead] = None
        self.staging: Optional[Staging] = None
        # A reinstall (the bundle_id is installed already): that tree checked against its signed list.
        self.damage: Optional[VersionCheck] = None
        self.loader: Optional[DockerLoad] = None  # --docker: made once the signed head is read (decide)
        self.k8s_skipped: List[str] = []
        self.granted: Optional[Granted] = None
        self.secrets_gid: Optional[int] = None  # the kit's recorded --secrets-group grant (phase 4 reads it)

    @property
    def receipt(self) -> Receipt:
        """This run's receipt (made by run() under the kit lock, before anything else happens)."""
        if self._receipt is None:
            raise InternalError("the install's receipt was used before the kit was locked")
        return self._receipt

    @property
    def already_installed(self) -> bool:
        return self.damage is not None

    # (3) of "Verifying": every decision is taken before a payload byte is written.
    def decide(self, v: ProvenHead) -> Union[DiscardSink, StagingSink]:
        """Admission (installer/kit/admission.py), then tag ownership; the sink the payload streams into."""
        self.verified = v
        meta, signer = v.meta, v.signer
        kit = self.kit
        head = Candidate(meta.name, meta.version, v.bundle_id, signer.scope_problem(meta.name))
        self.receipt.update(name=meta.name, version=meta.version, bundle_id=v.bundle_id,
                            signer=signer.fingerprint, previous=kit.current_version(meta.name))
        admission = admit(head, kit_state(kit, meta.name, meta.version), self.options)
        if admission.downgrade_reason is not None:
            self.receipt.update(downgrade_reason=admission.downgrade_reason)
        if self.deploy.registry:  # names the site would refuse: exit 3 now, not after the kit has changed
            check_site_names(meta, self.deploy.registry, self.deploy.strip_source_host)
        self._check_owners(meta, signer)
        if admission.action == REINSTALL:
            final = kit.version_dir(meta.name, meta.version)
            if os.lstat(final).st_mode & 0o222:  # a run killed inside promote(): finish its chmod
                make_read_only(final)
            # The archive is read and verified whole all the same; the installed tree is checked against it.
            self.damage = check_version(kit, meta.name, meta.version, signature=v.signature)
            if self.damage.ok:
                from installer.kit.deltaindex import KitIndex

                self._docker_first(meta, kit.version_dir(meta.name, meta.version))
                return DiscardSink(KitIndex(kit))
        sink = self._staging(v, meta)
        self._docker_first(meta, self._staged().tree)
        return sink

    def _docker_first(self, meta: BundleHead, tree: str) -> None:
        """--docker: the engine is asked its version before a byte is staged (a missing engine fails here);
        what it will load is decided from the verified manifests before anything is promoted (_phases)."""
        if self.deploy.docker and meta.images:
            self.loader = DockerLoad(tree, meta, self.deploy.platform, progress_factory=self._progress)
            self.loader.engine()

    def _check_owners(self, meta: BundleHead, signer: TrustedKey) -> None:
        """Issue 10 point 2: the tags this install would move must not belong to a name its signer is not trusted
        for."""
        from installer.site.owners import DOCKER_SITE, conflicts, docker_tags, refuse, registry_tags, site_key

        owned = self.kit.owners()
        problems: List[str] = []
        if self.deploy.registry:
            site = site_key(self.deploy.registry)
            problems += conflicts(owned.get(site, {}), registry_tags(meta, self.deploy.registry,
                                                                     self.deploy.strip_source_host),
                                  meta.name, signer, site + "/")
        if self.deploy.docker:
            problems += conflicts(owned.get(DOCKER_SITE, {}), docker_tags(meta, self.deploy.registry,
                                                                           self.deploy.strip_source_host),
                                  meta.name, signer, "docker: ")
        refuse(problems, meta.name, meta.version)

    def _staging(self, v: ProvenHead, meta: BundleHead) -> StagingSink:
        needed = meta.total_size + len(v.sums) + len(v.meta_bytes) + 4096 * (len(meta.members) + 1)
        self.staging = Staging(self.kit, v.bundle_id, needed)
        self.receipt.save()
        return self.staging.create()

    def run(self) -> InstallResult:
        if not os.path.exists(self.archive):
            raise UsageError("the archive %s does not exist" % self.archive)
        if self.deploy.apply and not (self.deploy.registry or self.deploy.docker):
            # said before anything is read or changed: there is no site to apply to
            raise UsageError("--apply needs a site: give --registry (Kubernetes and compose) or --docker (compose)")
        self.kit.prepare()
        with self.kit.locked():
            clear_debris(self.kit)
            keys = resolve_keys(self.trust, self.kit)
            self._receipt = Receipt(self.kit, self.archive)
            try:
                return self._phases(keys)
            except BaseException as exc:
                error = exc if isinstance(exc, BundleError) else (
                    Interrupted(2) if isinstance(exc, KeyboardInterrupt)
                    else InternalError(str(exc) or type(exc).__name__))
                self.fail(error)
                if isinstance(exc, KeyboardInterrupt):
                    raise error from exc
                raise

    def _phases(self, keys: Sequence[TrustedKey]) -> InstallResult:
        """Phases 1-6 in order; 1-4 change nothing the site uses, 5 is one atomic switch, 6 moves tags last."""
        v = self._phase1(keys)
        meta, signer = v.head.meta, v.head.signer
        if self.loader is not None:
            self.loader.plan()  # an image this engine cannot load is refused now, before the kit changes
        repaired = self._phase2(v.head, meta)
        tree = self.kit.version_dir(meta.name, meta.version)
        pusher, docker = self._phase3(tree, meta, v.bundle_id)
        outputs = self._phase4(tree, meta, docker)
        previous = self._phase5(meta)
        applied = self._phase6(meta, v.bundle_id, pusher, outputs)
        outcome = Outcome.ALREADY_INSTALLED if self.already_installed else Outcome.INSTALLED
        self.receipt.finish(outcome)
        return InstallResult(
            verified=v, meta=meta, signer=signer.fingerprint, outcome=outcome, previous=previous,
            current=meta.version, kit=self.kit.root, path=self.kit.version_dir(meta.name, meta.version),
            receipt=os.path.relpath(self.receipt.path, self.kit.root), phases=self.receipt.record.phases,
            repaired=repaired, push=pusher.report if pusher is not None else None, docker=docker, outputs=outputs,
            apply=applied, secrets=self.granted)

    def _phase1(self, keys: Sequence[TrustedKey]) -> VerifyReport:
        """Verify and stage in one streaming pass; admission (``decide``) runs once the signed head is read."""
        v = verify_file(self.archive, keys, self.decide, self.show_progress)
        if self.already_installed:
            self.receipt.phase(Phase.VERIFY_AND_STAGE, Status.DONE, "bundle_id already installed; the archive "
                               "verified again (%d files, %d bytes)" % (v.members_seen + 1, v.bytes_seen))
        else:
            self.receipt.phase(Phase.VERIFY_AND_STAGE, Status.DONE,
                               "%d files, %d bytes verified" % (v.members_seen + 1, v.bytes_seen))
        return v

    def _staged(self) -> Staging:
        if self.staging is None:
            raise InternalError("phase 2 found no staged tree")
        return self.staging

    def _phase2(self, v: ProvenHead, meta: BundleHead) -> List[str]:
        """Promote the staged tree into bundles/ (or, on a re-install, repair the installed tree if it was damaged);
        returns what a repair restored."""
        if self.damage is not None:
            if self.damage.ok:
                self.receipt.phase(Phase.PROMOTE, Status.SKIPPED, "the installed tree matches its signed SHA256SUMS")
                return []
            repaired = self.repair(meta, v, self.damage)
            self.receipt.phase(Phase.PROMOTE, Status.DONE, "repaired bundles/%s/%s from the verified archive: %s"
                               % (meta.name, meta.version, "; ".join(repaired)))
            return repaired
        faults.point("before-promote")
        self._staged().promote(meta.name, meta.version)
        self.staging = None
        self.receipt.phase(Phase.PROMOTE, Status.DONE, "bundles/%s/%s" % (meta.name, meta.version))
        faults.point("after-promote")
        return []

    def _phase5(self, meta: BundleHead) -> Optional[str]:
        """Switch current/<name> to this version (one rename); returns the version that was current."""
        previous = self.kit.current_version(meta.name)
        faults.point("before-switch")
        if previous != meta.version:
            self.kit.switch_current(meta.name, meta.version)
            faults.point("after-switch")
            self.receipt.phase(Phase.SWITCH_CURRENT, Status.DONE,
                               "current/%s -> %s (was %s)" % (meta.name, meta.version, previous or "none"))
        else:
            self.receipt.phase(Phase.SWITCH_CURRENT, Status.DONE, "already current")
        return previous

    def _progress(self, total: int, desc: str) -> Progress:
        return Progress(total, desc, self.show_progress)

    def _site_options(self) -> SiteOptions:
        """What rollback needs to reach this site again (never credentials: they come from the environment)."""
        ca = self.deploy.registry_ca
        return SiteOptions(self.deploy.insecure, os.path.abspath(ca) if ca else None, self.deploy.strip_source_host)

    def _phase3(self, tree: str, meta: BundleHead,
                bundle_id: str) -> Tuple[Optional[SitePush], Optional[DockerLoadReport]]:
        """Push blobs and manifests by digest to the site registry; load into Docker."""
        if not (self.deploy.registry or self.deploy.docker):
            self.receipt.phase(Phase.PUSH_AND_LOAD, Status.SKIPPED, "no --registry or --docker given")
            return None, None
        if not meta.images and not meta.charts:
            self.receipt.phase(Phase.PUSH_AND_LOAD, Status.SKIPPED, "the bundle has no images or charts")
            return None, None
        details = []
        pusher = None
        docker = None
        if self.deploy.registry:
            pusher = SitePush(tree, meta, self.deploy.registry, strip_source_host=self.deploy.strip_source_host,
                              registry_ca=self.deploy.registry_ca, insecure=self.deploy.insecure,
                              progress_factory=self._progress, hashed_this_run=True,
                              transport=self.deploy.transport, retry=self.deploy.retry)
            report = pusher.push_content()
            self.receipt.record_site(self.deploy.registry, site_record(report, None), self._site_options())
            details.append("%s: %d blobs pushed, %d mounted, %d already there; %d manifests pushed, %d already there"
                           % (self.deploy.registry, report.blobs_pushed, report.blobs_mounted,
                              report.blobs_present, report.manifests_pushed, report.manifests_present))
        if self.loader is not None:
            self.loader.tree = tree  # the promoted tree: the plan was made on the same verified bytes, staged
            self.loader.site_refs = pusher.site_tags() if pusher else {}
            docker = self.loader.load_all()
            self.receipt.update(docker=docker_record(docker))
            self._claim_docker(meta, bundle_id, {i.ref for i in docker.images})
            details.append("docker %s: %d images loaded for %s, IDs equal their config digests%s"
                           % (docker.engine or "(version unknown)", len(docker.images), docker.platform,
                              "; %d skipped (%s)" % (len(docker.skipped), "; ".join(
                                  "%s: %s" % (k.ref, k.reason) for k in docker.skipped)) if docker.skipped else ""))
        self.receipt.phase(Phase.PUSH_AND_LOAD, Status.DONE, "; ".join(details))
        return pusher, docker

    def _claim_docker(self, meta: BundleHead, bundle_id: str, loaded: Set[str]) -> None:
        """Record that this bundle name now owns the tags it has just given the images loaded into Docker (the
        ``loaded`` references: a skipped image was given no tag)."""
        from installer.site.owners import DOCKER_SITE, claims, docker_tags

        tags = {tag: ref for tag, ref in docker_tags(meta, self.deploy.registry, self.deploy.strip_source_host).items()
                if ref in loaded}
        self.kit.record_owners(DOCKER_SITE, claims(tags, meta, bundle_id))

    def _claim_registry(self, meta: BundleHead, bundle_id: str, registry: str) -> None:
        """Record that this bundle name now owns the tags it has just moved on the site registry."""
        from installer.site.owners import claims, registry_tags, site_key

        tags = registry_tags(meta, registry, self.deploy.strip_source_host)
        self.kit.record_owners(site_key(registry), claims(tags, meta, bundle_id))

    def _secret_dir(self, name: str) -> str:
        """KIT/secrets/<name>: a real folder or nothing; a link there is never followed (exit 9)."""
        folder = os.path.join(self.kit.secrets, name)
        self.kit.real_dir(folder)
        return folder

    def _secret_file(self, folder: str, name: str) -> Optional[bytes]:
        """A secret the operator put in the kit: a regular file of ours, read without following a link, made 0600."""
        path = os.path.join(folder, name)
        if lstat_or_none(path) is None:
            return None
        try:
            fd = open_regular(path, MAX_SECRET_BYTES)
        except PathRefused as exc:
            raise LocalEnvironmentError("%s %s; refusing to use it" % (exc.path, exc.why)) from exc
        st = os.fstat(fd)
        if st.st_uid == os.geteuid():
            # KIT/secrets holds 0600 files: an operator's copy is brought in line when used. Group read stays only
            # where --secrets-group granted it (the recorded group, read, nothing for others).
            os.fchmod(fd, 0o640 if keeps_group(st, self.secrets_gid) else 0o600)
        return read_fd(fd, MAX_SECRET_BYTES, path)

    def _tls(self, meta: BundleHead) -> Tuple[str, str]:
        """KIT/secrets/tls: an operator's PKI or an earlier run's material is kept; else dev TLS with --dev-tls,
        the set the bundle's deploy.tls names (the default set when it names none). Returns (the folder, where
        its material stands: existing, missing or generated)."""
        from installer.deploy.devtls import existing_files, generate
        from installer.format.deployspec import TlsSpec, namespace_of

        spec = meta.deploy.dev_tls if meta.deploy is not None else TlsSpec()
        folder = self._secret_dir("tls")
        core = [os.path.join(folder, n) for n in spec.in_use]
        if all(is_regular(p) for p in core):
            return folder, "existing"
        if not self.deploy.dev_tls:
            return folder, "missing"
        present = existing_files(folder, spec)
        if present:
            raise UsageError("%s holds only part of a TLS set (%s); complete it with %s or empty it for --dev-tls"
                             % (folder, ", ".join(os.path.basename(p) for p in present), ", ".join(spec.in_use)))
        generate(folder, tls=spec, namespace=namespace_of(meta.deploy, meta.name))
        return folder, "generated"

    def _phase4(self, tree: str, meta: BundleHead, docker: Optional[DockerLoadReport]) -> Optional[DeployOutputs]:
        """Render the site outputs (compose files, chart values, commands) for the site of this run."""
        folder, tls = self._tls(meta)  # writes dev TLS only when --dev-tls asks for it, even with nothing to render
        site = bool(self.deploy.registry or self.deploy.docker)
        has_compose = any(p.startswith("compose/") for p in meta.sizes)
        compose_folders = self._compose_folders(meta)
        granted = self.granted = self._grant_secrets(meta, compose_folders, make=site and has_compose)
        if granted is not None:
            self.receipt.update(secrets_access=secrets_record(granted))
        objects = meta.deploy is not None and not meta.deploy.kubernetes.empty
        if not site or not (meta.charts or objects or has_compose):
            self.receipt.phase(Phase.RENDER, Status.SKIPPED, "no --registry or --docker site, or nothing to render%s%s"
                               % ("; TLS material in secrets/tls (%s)" % tls if self.deploy.dev_tls else "",
                                  "; secrets readable by group %d" % granted.gid if granted is not None else ""))
            return None
        host, prefix = parse_site(self.deploy.registry) if self.deploy.registry else (None, "")
        tls_dir = folder if tls != "missing" else None
        loaded = {i.ref: i.id for i in docker.images} if docker is not None else {}
        rendered = render(self.kit, meta, tree, self.deploy.registry, host, prefix, self.deploy.strip_source_host,
                          extra=lambda tmp, final: self._kubernetes(tree, meta, tmp, tls_dir, final),
                          tls_dir=tls_dir, loaded_ids=loaded,
                          secrets_gid=granted_gid(self.kit.secrets, compose_folders, self.secrets_gid))
        outputs = DeployOutputs(rendered, tls, self.k8s_skipped)
        self.receipt.update(deploy_outputs=outputs_record(outputs))
        self.receipt.phase(Phase.RENDER, Status.DONE, "%s: %d files" % (rendered.folder, len(rendered.files)))
        return outputs

    @staticmethod
    def _compose_folders(meta: BundleHead) -> List[str]:
        """The site folders the bundle's compose files mount (deploy.compose.env); tls and token without one."""
        if meta.deploy is None:
            return ["tls", "token"]
        return sorted({folder for _, folder in meta.deploy.env if folder in SITE_FOLDERS})

    def _grant_secrets(self, meta: BundleHead, names: List[str], make: bool) -> Optional[Granted]:
        """The site folders compose mounts (``names``) exist when this run renders compose files (``make``: 0700,
        made here if missing, since Docker would make a missing one root's and open to all); with --secrets-group,
        the files the containers read become readable by that group (installer/kit/secretsaccess.py): in tls/ only
        the CA certificate and the shared pair. Returns what was granted; self.secrets_gid becomes the kit's
        recorded grant, this one or an earlier one."""
        from installer.format.deployspec import TlsSpec

        for name in names if make else []:
            self.kit.make_dir(self._secret_dir(name), 0o700, enforce=False)
        gid = self.deploy.secrets_gid
        if gid is None:
            self.secrets_gid = recorded_gid(self.kit.state)
            return None
        spec = meta.deploy.dev_tls if meta.deploy is not None else TlsSpec()
        folders: Dict[str, Optional[Sequence[str]]] = {
            name: (list(spec.in_use) if name == "tls" else None) for name in names}
        granted = grant(self.kit.secrets, folders, gid, self.kit.root, self.kit.state)
        self.secrets_gid = gid
        return granted

    def _kubernetes(self, tree: str, meta: BundleHead, tmp: str, tls_dir: Optional[str],
                    final: str) -> Tuple[List[str], List[DeployCommand]]:
        """The objects the bundle's deploy.kubernetes declares: namespace and ConfigMaps in deploy/, Secrets in
        secrets/.

        Bundle files are read from the installed tree only (tenants/<component>.yaml and files[].target, both
        checked in bundle.json), never through a link and never beyond their signed size. Site files come from
        KIT/secrets/tls (only when that set is complete or was just made) and KIT/secrets/token."""
        from installer.deploy import k8s

        deploy = meta.deploy
        if deploy is None or deploy.kubernetes.empty:
            return [], []

        tenant_paths = {t.component: t.path for t in meta.tenants}

        def bundle_file(entry: DataEntry) -> bytes:
            path = tenant_paths[entry.ref] if entry.source == "tenant" else entry.ref
            return read_installed(tree, path, meta.sizes[path])

        token_dir = self._secret_dir("token")
        folders = {"tls": tls_dir, "token": token_dir, "s3": self._secret_dir("s3")}
        used = set()

        def site_file(entry: DataEntry) -> Optional[bytes]:
            folder = folders[entry.site_folder]
            if folder is None or not os.path.isdir(folder):
                return None
            data = self._secret_file(folder, entry.site_file)
            if data is not None:
                used.add(entry.site_folder)
                if entry.site_folder == "s3":
                    data = _one_line(data, os.path.join(folder, entry.site_file))
            return data
        configmaps, secrets, skipped = k8s.build_objects(deploy.kubernetes, deploy.namespace, bundle_file, site_file,
                                                         self.kit.secrets)
        for name in ("token", "s3"):
            if name in used:  # a real folder (checked by _secret_dir): 0700, or 0750 where --secrets-group granted it
                folder = folders[name] or ""
                os.chmod(folder, 0o750 if keeps_group(os.lstat(folder), self.secrets_gid) else 0o700)
        site = os.path.basename(final)
        secrets_dir = os.path.join(self.kit.secrets, meta.name, meta.version, site)
        k8s.write_manifests(os.path.join(tmp, "kubernetes"), secrets_dir, configmaps, secrets,
                            k8s.namespace(deploy.namespace))
        self.k8s_skipped = skipped
        files = sorted("kubernetes/" + n for n in os.listdir(os.path.join(tmp, "kubernetes")))
        commands = [DeployCommand(["kubectl", "apply", "-f", os.path.join(final, "kubernetes")])]
        if secrets:
            commands.append(DeployCommand(["kubectl", "apply", "-f", secrets_dir]))
        return files, commands

    def _phase6(self, meta: BundleHead, bundle_id: str, pusher: Optional[SitePush],
                outputs: Optional[DeployOutputs]) -> Optional[ApplyReport]:
        """Move registry tags last, then --apply; a failure here leaves the version current and the deploy
        incomplete."""
        if pusher is None and not self.deploy.apply:
            self.receipt.phase(Phase.TAGS_AND_APPLY, Status.SKIPPED, "no registry tags to move")
            return None
        applied = None
        try:
            try:
                if pusher is not None:
                    pusher.move_tags()
                    self._claim_registry(meta, bundle_id, pusher.report.site)
                if self.deploy.apply:
                    applied = self._apply(outputs)
            finally:  # the receipt's record of the site gets what phase 6 did there, even when it failed
                if pusher is not None:
                    site = pusher.report.site
                    self.receipt.record_site(site, site_record(pusher.report, applied), self._site_options())
        except BundleError as exc:
            self.receipt.phase(Phase.TAGS_AND_APPLY, Status.FAILED, exc.message)
            self.receipt.finish(Outcome.DEPLOY_INCOMPLETE, exc)  # recorded: fail() does not write over it
            exc.message += " (the version is installed and current; run the same install again to finish)"
            raise
        detail = ("%s: %d tags moved, %d already current"
                  % (pusher.report.site, pusher.report.tags_moved, pusher.report.tags_current)
                  if pusher is not None else "")
        if applied is not None:
            done = [("compose", applied.compose.status) if applied.compose is not None else None,
                    ("kubernetes", applied.kubernetes.status) if applied.kubernetes is not None else None]
            detail += ("; " if detail else "") + "apply: " + ", ".join("%s %s" % kv for kv in done if kv is not None)
        self.receipt.phase(Phase.TAGS_AND_APPLY, Status.DONE, detail)
        return applied

    def _apply(self, outputs: Optional[DeployOutputs]) -> ApplyReport:
        from installer.deploy.apply import ComposeApplied, KubernetesApplied, apply_compose, apply_kubernetes

        if outputs is None:  # a site was named (run() refuses --apply without one) and the bundle renders nothing
            nothing = "nothing to apply: the bundle has no deploy outputs (charts, Kubernetes objects or compose files)"
            return ApplyReport(KubernetesApplied(nothing) if self.deploy.registry else None,
                               ComposeApplied(nothing) if self.deploy.docker else None)
        kubernetes = compose = None
        if self.deploy.registry:
            host = parse_site(self.deploy.registry)[0]
            kubernetes = apply_kubernetes(outputs.rendered, self.kit.root, host in self.deploy.insecure,
                                          self.deploy.registry_ca)
        if self.deploy.docker:
            compose = apply_compose(outputs.rendered, self.kit.root)
        return ApplyReport(kubernetes, compose)

    def repair(self, meta: BundleHead, v: ProvenHead, damage: VersionCheck) -> List[str]:
        """Phase 2 of a reinstall whose installed tree was damaged: restore it, file by file, from the archive that
        was just verified whole, then prove the tree matches its signed list again."""
        staging = self._staged()
        done = repair_tree(self.kit, damage, staging.tree)
        after = check_version(self.kit, meta.name, meta.version, signature=v.signature)
        if not after.ok:
            raise ContentMismatch("bundles/%s/%s could not be repaired" % (meta.name, meta.version), after.lines())
        staging.discard()
        self.staging = None
        return done

    def fail(self, error: BundleError) -> None:
        receipt = self._receipt
        if self.staging is not None and self.staging.exists():
            v = self.verified
            self.staging.quarantine(error.message, self.archive, receipt.record.bundle_id if receipt else None,
                                    v.sums if v is not None else b"", self.keep_failed)
            self.staging = None
        if receipt is not None and receipt.running:
            done = {p.phase for p in receipt.record.phases}
            first_missing = next(n for n in Phase if n not in done)
            try:
                receipt.phase(first_missing, Status.FAILED, error.message)
                receipt.finish(Outcome.FAILED, error)
            except OSError:
                pass


def _one_line(data: bytes, path: str) -> bytes:
    """An object store key (KIT/secrets/s3) becomes an environment variable (Secret -> envFrom): one line, whose one
    trailing line break (`echo KEY > file` writes one) is dropped; any other control character is refused, by
    name and never by content (exit 9)."""
    if not data:
        return data  # empty: the Secret is not written, and the install names the file (k8s.build_objects)
    value = data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data
    if not value or any(b < 0x20 or b == 0x7F for b in value):
        raise LocalEnvironmentError("%s must hold one line (the key itself); it holds only a line break, several "
                                    "lines or another control character" % path)
    return value


def install(archive: str, kit: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
            reason: Optional[str] = None, keep_failed: bool = False, show_progress: bool = True,
            deploy: Optional[DeployOptions] = None) -> InstallResult:
    return Installer(archive, kit, trust, allow_downgrade, reason, keep_failed, show_progress, deploy).run()
