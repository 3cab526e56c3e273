"""`install`: verify and stage in one streaming pass, promote, deploy, switch `current`.

Phases (docs/FORMAT.md "Kit and install phases"), each recorded in the receipt:
  1 verify and stage   2 promote to bundles/   3 push and load   4 render site outputs
  5 switch current     6 move registry tags, apply
A failure in 1-4 leaves `current` unchanged; the staging folder is quarantined with its reason.
"""

import os
from typing import List, Optional, Sequence

from installer import faults
from installer.errors import (BundleError, ContentMismatch, InternalError, Interrupted, LocalEnvironmentError,
                              UsageError)
from installer.fsutil import (PathRefused, is_regular, lstat_or_none, open_regular, read_fd, read_installed)
from installer.kit.check import VersionCheck, check_version, repair as repair_tree
from installer.kit.layout import Kit, make_read_only, resolve_keys
from installer.progress import Progress
from installer.kit.admission import REINSTALL, AdmitOptions, Candidate, admit, kit_state
from installer.kit.receipts import Receipt
from installer.format.model import Outcome, Phase, SiteOptions, Status
from installer.kit.staging import Staging, StagingSink, clear_debris
from installer.site.dockerload import DockerLoad
from installer.site.push import SitePush, parse_site
from installer.site.retry import RetryPolicy
from installer.site.transport import Transport
from installer.deploy.render import render
from installer.trust.verify import DiscardSink, ProvenHead, VerifyReport, verify_file

MAX_SECRET_BYTES = 1024 * 1024  # a certificate, a key or a token the operator put in KIT/secrets


class DeployOptions:
    """Where phases 3, 4 and 6 deliver: a site registry and/or the local Docker engine."""

    def __init__(self, registry: Optional[str] = None, registry_ca: Optional[str] = None,
                 insecure: Sequence[str] = (), strip_source_host: bool = False, docker: bool = False,
                 platform: Optional[str] = None, dev_tls: bool = False, apply: bool = False,
                 transport: Optional[Transport] = None, retry: Optional[RetryPolicy] = None) -> None:
        self.transport = transport  # to the site registry; None: the real one (tests pass an in-memory registry)
        self.retry = retry
        self.dev_tls = dev_tls
        self.apply = apply
        self.registry = registry
        self.registry_ca = registry_ca
        self.insecure = tuple(insecure)
        self.strip_source_host = strip_source_host
        self.docker = docker
        self.platform = platform
        if registry:
            parse_site(registry)  # a usage error before anything is read


class Installer:
    def __init__(self, archive: str, kit_dir: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
                 reason: Optional[str] = None, keep_failed: bool = False, show_progress: bool = True,
                 deploy: Optional[DeployOptions] = None) -> None:
        self.options = AdmitOptions(allow_downgrade, reason)  # a usage error before anything is read
        self.deploy = deploy or DeployOptions()
        self.docker_report: dict = {}
        self.rendered: dict = {}
        self.k8s_skipped: list = []
        self.archive = archive
        self.kit = Kit(kit_dir)
        self.trust = trust
        self.keep_failed = keep_failed
        self.show_progress = show_progress
        self.staging: Optional[Staging] = None
        self.already_installed = False
        self.damage: Optional[VersionCheck] = None  # an already-installed tree, checked against its signed list
        self.repaired: List[str] = []
        self.receipt: Optional[Receipt] = None
        self.verified: Optional[ProvenHead] = None

    # (3) of "Verifying": every decision is taken before a payload byte is written.
    def decide(self, v: ProvenHead):
        """Admission (installer/kit/admission.py), then tag ownership; the sink the payload streams into."""
        self.verified = v
        meta, kit = v.meta, self.kit
        head = Candidate(meta.name, meta.version, v.bundle_id, v.signer.scope_problem(meta.name))
        self.receipt.update(name=meta.name, version=meta.version, bundle_id=v.bundle_id,
                            signer=v.signer.fingerprint, previous=kit.current_version(meta.name))
        admission = admit(head, kit_state(kit, meta.name, meta.version), self.options)
        if admission.downgrade_reason is not None:
            self.receipt.update(downgrade_reason=admission.downgrade_reason)
        self._check_owners(meta, v.signer)
        if admission.action == REINSTALL:
            self.already_installed = True
            final = kit.version_dir(meta.name, meta.version)
            if os.lstat(final).st_mode & 0o222:  # a run killed inside promote(): finish its chmod
                make_read_only(final)
            # The archive is read and verified whole all the same; the installed tree is checked against it.
            self.damage = check_version(kit, meta.name, meta.version, signature=v.signature)
            if self.damage.ok:
                from installer.kit.deltaindex import KitIndex

                return DiscardSink(KitIndex(kit))
        return self._staging(v)

    def _check_owners(self, meta, signer) -> None:
        """Issue 10 point 2: the tags this install would move must not belong to a name its signer is not trusted
        for."""
        from installer.site.owners import DOCKER_SITE, conflicts, docker_tags, refuse, registry_tags, site_key

        owned = self.kit.owners()
        problems = []
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

    def _staging(self, v: ProvenHead) -> StagingSink:
        meta = v.meta
        needed = meta.total_size + len(v.sums) + len(v.meta_bytes) + 4096 * (len(meta.members) + 1)
        self.staging = Staging(self.kit, v.bundle_id, needed)
        self.receipt.save()
        return self.staging.create()

    def run(self) -> dict:
        if not os.path.exists(self.archive):
            raise UsageError("the archive %s does not exist" % self.archive)
        self.kit.prepare()
        with self.kit.locked():
            clear_debris(self.kit)
            keys = resolve_keys(self.trust, self.kit)
            self.receipt = Receipt(self.kit, self.archive)
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

    def _phases(self, keys) -> dict:
        """Phases 1-6 in order; 1-4 change nothing the site uses, 5 is one atomic switch, 6 moves tags last."""
        v = self._phase1(keys)
        meta = v.head.meta
        self._phase2(v.head)
        tree = self.kit.version_dir(meta.name, meta.version)
        pusher = self._phase3(tree, meta)
        self.rendered = self._phase4(tree, meta)
        previous = self._phase5(meta)
        deploy = self._phase6(pusher)
        outcome = Outcome.ALREADY_INSTALLED if self.already_installed else Outcome.INSTALLED
        self.receipt.finish(outcome)
        result = _verify_summary(v)
        result.update(deploy=deploy, docker=self.docker_report, outputs=self.rendered, repaired=self.repaired)
        result.update(outcome=outcome, previous=previous, current=meta.version, kit=self.kit.root,
                      path=self.kit.version_dir(meta.name, meta.version),
                      receipt=os.path.relpath(self.receipt.path, self.kit.root),
                      phases=[{"phase": p.phase, "name": p.name, "status": p.status, "detail": p.detail}
                              for p in self.receipt.record.phases])
        return result

    def _phase1(self, keys) -> VerifyReport:
        """Verify and stage in one streaming pass; admission (``decide``) runs once the signed head is read."""
        v = verify_file(self.archive, keys, self.decide, self.show_progress)
        self.verified = v.head
        if self.already_installed:
            self.receipt.phase(Phase.VERIFY_AND_STAGE, Status.DONE, "bundle_id already installed; the archive "
                               "verified again (%d files, %d bytes)" % (v.members_seen + 1, v.bytes_seen))
        else:
            self.receipt.phase(Phase.VERIFY_AND_STAGE, Status.DONE,
                               "%d files, %d bytes verified" % (v.members_seen + 1, v.bytes_seen))
        return v

    def _phase2(self, v: ProvenHead) -> None:
        """Promote the staged tree into bundles/ (or, on a re-install, repair the installed tree if it was damaged)."""
        meta = v.meta
        if self.already_installed:
            if self.damage.ok:
                self.receipt.phase(Phase.PROMOTE, Status.SKIPPED, "the installed tree matches its signed SHA256SUMS")
            else:
                self.repaired = self.repair(meta)
                self.receipt.phase(Phase.PROMOTE, Status.DONE, "repaired bundles/%s/%s from the verified archive: %s"
                                   % (meta.name, meta.version, "; ".join(self.repaired)))
            return
        faults.point("before-promote")
        self.staging.promote(meta.name, meta.version)
        self.staging = None
        self.receipt.phase(Phase.PROMOTE, Status.DONE, "bundles/%s/%s" % (meta.name, meta.version))
        faults.point("after-promote")

    def _phase5(self, meta) -> Optional[str]:
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

    def _phase3(self, tree: str, meta):
        """Push blobs and manifests by digest to the site registry; load into Docker."""
        if not (self.deploy.registry or self.deploy.docker):
            self.receipt.phase(Phase.PUSH_AND_LOAD, Status.SKIPPED, "no --registry or --docker given")
            return None
        if not meta.images and not meta.charts:
            self.receipt.phase(Phase.PUSH_AND_LOAD, Status.SKIPPED, "the bundle has no images or charts")
            return None
        details = []
        pusher = None
        if self.deploy.registry:
            pusher = SitePush(tree, meta, self.deploy.registry, strip_source_host=self.deploy.strip_source_host,
                              registry_ca=self.deploy.registry_ca, insecure=self.deploy.insecure,
                              progress_factory=self._progress, hashed_this_run=True,
                              transport=self.deploy.transport, retry=self.deploy.retry)
            report = pusher.push_content()
            # What rollback needs to reach this site again (never credentials: they come from the environment).
            self.receipt.record_site(self.deploy.registry, report, SiteOptions(
                self.deploy.insecure, os.path.abspath(self.deploy.registry_ca) if self.deploy.registry_ca else None,
                self.deploy.strip_source_host))
            details.append("%s: %d blobs pushed, %d mounted, %d already there; %d manifests pushed, %d already there"
                           % (self.deploy.registry, report["blobs_pushed"], report["blobs_mounted"],
                              report["blobs_present"], report["manifests_pushed"], report["manifests_present"]))
        if self.deploy.docker and meta.images:
            loader = DockerLoad(tree, meta, self.deploy.platform, pusher.site_tags() if pusher else None,
                                progress_factory=self._progress)
            self.docker_report = loader.load_all()
            self.receipt.update(docker=self.docker_report)
            self._claim("docker")
            details.append("docker: %d images loaded for %s, IDs equal their config digests"
                           % (len(self.docker_report["images"]), self.docker_report["platform"]))
        self.receipt.phase(Phase.PUSH_AND_LOAD, Status.DONE, "; ".join(details))
        return pusher

    def _claim(self, where: str) -> None:
        """Record that this bundle name now owns the tags it has just moved (on the site registry, or in Docker)."""
        from installer.site.owners import DOCKER_SITE, claims, docker_tags, registry_tags, site_key

        v, reg, strip = self.verified, self.deploy.registry, self.deploy.strip_source_host
        if where == "docker":
            self.kit.record_owners(DOCKER_SITE, claims(docker_tags(v.meta, reg, strip), v.meta, v.bundle_id))
        else:
            self.kit.record_owners(site_key(reg), claims(registry_tags(v.meta, reg, strip), v.meta, v.bundle_id))

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
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o600)  # KIT/secrets holds 0600 files: an operator's copy is brought in line when used
        return read_fd(fd, MAX_SECRET_BYTES, path)

    def _tls(self, meta) -> dict:
        """KIT/secrets/tls: an operator's PKI or an earlier run's material is kept; else dev TLS with --dev-tls,
        the set the bundle's deploy.tls names (the default set when it names none)."""
        from installer.deploy.devtls import existing_files, file_names, generate
        from installer.format.deployspec import TlsSpec, namespace_of

        spec = meta.deploy.dev_tls if meta.deploy is not None else TlsSpec()
        folder = self._secret_dir("tls")
        core = [os.path.join(folder, n) for n in spec.in_use]
        if all(is_regular(p) for p in core):
            return {"folder": folder, "source": "existing"}
        if not self.deploy.dev_tls:
            return {"folder": folder, "source": "missing"}
        present = existing_files(folder, spec)
        if present:
            raise UsageError("%s holds only part of a TLS set (%s); complete it with %s or empty it for --dev-tls"
                             % (folder, ", ".join(os.path.basename(p) for p in present), ", ".join(spec.in_use)))
        generate(folder, tls=spec, namespace=namespace_of(meta.deploy, meta.name))
        return {"folder": folder, "source": "generated", "files": file_names(spec)}

    def _phase4(self, tree: str, meta) -> dict:
        """Render the site outputs (compose files, chart values, commands) for the site of this run."""
        tls = self._tls(meta)  # writes dev TLS only when --dev-tls asks for it, even with nothing to render
        objects = meta.deploy is not None and not meta.deploy.kubernetes.empty
        has_outputs = meta.charts or objects or any(p.startswith("compose/") for p in meta.sizes)
        if not (self.deploy.registry or self.deploy.docker) or not has_outputs:
            self.receipt.phase(Phase.RENDER, Status.SKIPPED, "no --registry or --docker site, or nothing to render%s"
                               % ("; TLS material in secrets/tls (%s)" % tls["source"] if self.deploy.dev_tls else ""))
            return {}
        host, prefix = parse_site(self.deploy.registry) if self.deploy.registry else (None, "")
        tls_dir = tls["folder"] if tls["source"] != "missing" else None
        loaded = {i["ref"]: i["id"] for i in (self.docker_report or {}).get("images", [])}
        out = render(self.kit, meta, tree, self.deploy.registry, host, prefix, self.deploy.strip_source_host,
                     extra=lambda tmp, final: self._kubernetes(tree, meta, tmp, tls_dir, final), tls_dir=tls_dir,
                     loaded_ids=loaded)
        out["tls"] = tls["source"]
        out["kubernetes_skipped"] = self.k8s_skipped
        self.receipt.update(deploy_outputs=out)
        self.receipt.phase(Phase.RENDER, Status.DONE, "%s: %d files" % (out["folder"], len(out["files"])))
        return out

    def _kubernetes(self, tree: str, meta, tmp: str, tls_dir: Optional[str], final: str):
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

        def bundle_file(entry) -> bytes:
            path = tenant_paths[entry.ref] if entry.source == "tenant" else entry.ref
            return read_installed(tree, path, meta.sizes[path])

        folders = {"tls": tls_dir, "token": self._secret_dir("token")}
        used = set()

        def site_file(entry) -> Optional[bytes]:
            folder = folders[entry.site_folder]
            if folder is None or not os.path.isdir(folder):
                return None
            data = self._secret_file(folder, entry.site_file)
            if data is not None:
                used.add(entry.site_folder)
            return data
        configmaps, secrets, skipped = k8s.build_objects(deploy.kubernetes, deploy.namespace, bundle_file, site_file,
                                                         self.kit.secrets)
        if "token" in used:
            os.chmod(folders["token"], 0o700)  # a real folder (checked by _secret_dir)
        site = os.path.basename(final)
        secrets_dir = os.path.join(self.kit.secrets, meta.name, meta.version, site)
        k8s.write_manifests(os.path.join(tmp, "kubernetes"), secrets_dir, configmaps, secrets,
                            k8s.namespace(deploy.namespace))
        self.k8s_skipped = skipped
        files = sorted("kubernetes/" + n for n in os.listdir(os.path.join(tmp, "kubernetes")))
        commands = [{"argv": ["kubectl", "apply", "-f", os.path.join(final, "kubernetes")]}]
        if secrets:
            commands.append({"argv": ["kubectl", "apply", "-f", secrets_dir]})
        return files, commands

    def _phase6(self, pusher) -> dict:
        """Move registry tags last, then --apply; a failure here leaves the version current and the deploy
        incomplete."""
        if pusher is None and not self.deploy.apply:
            self.receipt.phase(Phase.TAGS_AND_APPLY, Status.SKIPPED, "no registry tags to move")
            return {}
        try:
            report = pusher.move_tags() if pusher is not None else {}
            if pusher is not None:
                self._claim("registry")
            if self.deploy.apply:
                report["apply"] = self._apply()
        except BundleError as exc:
            self.receipt.phase(Phase.TAGS_AND_APPLY, Status.FAILED, exc.message)
            self.receipt.finish(Outcome.DEPLOY_INCOMPLETE, exc)
            self.receipt = None  # recorded: fail() must not write over it
            exc.message += " (the version is installed and current; run the same install again to finish)"
            raise
        detail = ("%s: %d tags moved, %d already current"
                  % (self.deploy.registry, report["tags_moved"], report["tags_current"])
                  if pusher is not None else "")
        if "apply" in report:
            detail += ("; " if detail else "") + "apply: " + ", ".join("%s %s" % kv for kv in sorted(
                (k, v) for k, v in report["apply"].items() if k in ("kubernetes", "compose")))
        self.receipt.phase(Phase.TAGS_AND_APPLY, Status.DONE, detail)
        return report

    def _apply(self) -> dict:
        from installer.deploy.apply import apply_compose, apply_kubernetes

        if not self.rendered:
            raise UsageError("--apply needs site outputs: give --registry (Kubernetes and compose) "
                             "or --docker (compose)")
        result = {}
        if self.deploy.registry:
            host = parse_site(self.deploy.registry)[0]
            result.update(apply_kubernetes(self.rendered, self.kit.root, host in self.deploy.insecure,
                                           self.deploy.registry_ca))
        if self.deploy.docker:
            result.update(apply_compose(self.rendered, self.kit.root))
        return result

    def repair(self, meta) -> List[str]:
        """Phase 2 of a reinstall whose installed tree was damaged: restore it, file by file, from the archive that
        was just verified whole, then prove the tree matches its signed list again."""
        done = repair_tree(self.kit, self.damage, self.staging.tree)
        after = check_version(self.kit, meta.name, meta.version, signature=self.verified.signature)
        if not after.ok:
            raise ContentMismatch("bundles/%s/%s could not be repaired" % (meta.name, meta.version), after.lines())
        self.staging.discard()
        self.staging = None
        return done

    def fail(self, error: BundleError) -> None:
        if self.staging is not None and self.staging.exists():
            v = self.verified
            self.staging.quarantine(error.message, self.archive, self.receipt.record.bundle_id if self.receipt
                                    else None, v.sums if v is not None else b"", self.keep_failed)
            self.staging = None
        if self.receipt is not None and self.receipt.running:
            done = {p.phase for p in self.receipt.record.phases}
            first_missing = next(n for n in Phase if n not in done)
            try:
                self.receipt.phase(first_missing, Status.FAILED, error.message)
                self.receipt.finish(Outcome.FAILED, error)
            except OSError:
                pass

def install(archive: str, kit: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
            reason: Optional[str] = None, keep_failed: bool = False, show_progress: bool = True,
            deploy: Optional[DeployOptions] = None) -> dict:
    return Installer(archive, kit, trust, allow_downgrade, reason, keep_failed, show_progress, deploy).run()


def _verify_summary(v: VerifyReport) -> dict:
    """The verify part of install's result, as installer.cli.verify.report_json renders it (the one renderer once
    the install result is rendered in cli/install.py, which this layer cannot import)."""
    d = v.delta
    return {"name": v.name, "version": v.version, "bundle_id": v.bundle_id, "signer": v.signer, "files": v.files,
            "total_size": v.total_size, "complete": v.complete,
            "delta": {"base": [b.to_dict() for b in d.base], "omitted": d.omitted, "omitted_bytes": d.omitted_bytes,
                      "checked_in_kit": d.checked_in_kit} if d is not None else None,
            "archive_sha256": v.archive_sha256 or None, "sidecar": v.sidecar}
