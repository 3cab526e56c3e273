"""`install`: verify and stage in one streaming pass, promote, deploy, switch `current`.

Phases (PRODUCT.md "Kit and install phases"), each recorded in the receipt:
  1 verify and stage   2 promote to bundles/   3 push and load   4 render site outputs
  5 switch current     6 move registry tags, apply
A failure in 1-4 leaves `current` unchanged; the staging folder is quarantined with its reason.
"""

import errno
import json
import os
from typing import Iterator, List, Optional, Sequence

from installer import faults
from installer.errors import (BundleError, ContentMismatch, InternalError, Interrupted, LocalEnvironmentError, TrustError,
                     UnsafeMember, UsageError, VersionRefused)
from installer.fsutil import (PathRefused, fsync_dir, is_regular, lstat_or_none, open_regular, read_fd, read_installed,
                     read_under, write_atomic)
from installer.format.imagecheck import MAX_INDEX_BYTES
from installer.kit.check import VersionCheck, check_version, repair as repair_tree
from installer.kit.layout import Kit, make_read_only, new_receipt_name, remove_tree, resolve_keys, utc_now
from installer.format.meta import canonical_json
from installer.format.paths import contained
from installer.progress import Progress
from installer.kit.receipts import PHASES, Receipt
from installer.site.dockerload import DockerLoad
from installer.site.push import SitePush, parse_site
from installer.deploy.render import render
from installer.format.semver import Version
from installer.trust.verify import DiscardSink, Verified, verify_file

SPACE_MARGIN = 16 * 1024 * 1024
MAX_SECRET_BYTES = 1024 * 1024  # a certificate, a key or a token the operator put in KIT/secrets


def check_precedence(kit: Kit, name: str, version: str, bid: str) -> None:
    """SemVer precedence ignores build metadata (2.0.0+b1 == 2.0.0+b2): equal precedence with another version
    string, or the same version with another bundle_id, among what the kit holds or ever admitted, is exit 8."""
    new = Version(version)
    seen = [(v, kit.bundle_id_of(name, v), "holds") for v in kit.versions(name)]
    seen += [(r["version"], r.get("bundle_id"), "installed before") for r in kit.admitted(name)]
    for other, other_id, how in seen:
        if Version(other) == new and (other != version or (other_id and other_id != bid)):
            raise VersionRefused("%s %s has the same precedence as %s %s, which this kit %s (bundle_id %s); SemVer "
                                 "ignores build metadata, so bump the version"
                                 % (name, version, name, other, how, (other_id or "?")[:16]))


class StagingSink:
    """Writes verified-as-they-stream members under a staging root, read-only, fsynced."""

    def __init__(self, root: str, kit: Optional[Kit] = None) -> None:
        self.root = root
        self.kit = kit
        self._index = None
        os.makedirs(root, mode=0o755)

    def materialize(self, path: str, digest: str, size: int, executable: bool) -> bytes:
        """A delta's omitted file, from the kit by sha256 (re-hashed as it is linked or copied, with its signed
        mode); its bytes are returned when it is small enough to be a manifest the image check reads."""
        from installer.kit.deltaindex import KitIndex, materialize

        if self._index is None:
            self._index = KitIndex(self.kit)
        dest = contained(self.root, path)
        materialize(self._index, digest, dest, executable, path)
        return read_under(self.root, path, size) if size <= MAX_INDEX_BYTES else b""

    def write(self, path: str, size: int, chunks: Iterator[bytes], executable: bool) -> None:
        full = contained(self.root, path)
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(full, flags, 0o600)
        except FileExistsError:
            raise UnsafeMember("member %s would overwrite a file already written" % path)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fchmod(fd, 0o555 if executable else 0o444)
            os.fsync(fd)
            if not path.startswith(("SHA256SUMS", "bundle.json", "DELTA.json")):
                faults.point("mid-payload")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise LocalEnvironmentError("no space left on the kit's filesystem while writing %s" % path)
            raise LocalEnvironmentError("cannot write %s into the kit: %s" % (path, exc.strerror))
        finally:
            os.close(fd)


class DeployOptions:
    """Where phases 3, 4 and 6 deliver: a site registry and/or the local Docker engine."""

    def __init__(self, registry: Optional[str] = None, registry_ca: Optional[str] = None,
                 insecure: Sequence[str] = (), strip_source_host: bool = False, docker: bool = False,
                 platform: Optional[str] = None, dev_tls: bool = False, apply: bool = False) -> None:
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
        if allow_downgrade and not (reason or "").strip():
            raise UsageError("--allow-downgrade needs --reason TEXT saying why")
        self.deploy = deploy or DeployOptions()
        self.docker_report: dict = {}
        self.rendered: dict = {}
        self.k8s_skipped: list = []
        self.archive = archive
        self.kit = Kit(kit_dir)
        self.trust = trust
        self.allow_downgrade = allow_downgrade
        self.reason = reason
        self.keep_failed = keep_failed
        self.show_progress = show_progress
        self.staging_dir = ""
        self.already_installed = False
        self.damage: Optional[VersionCheck] = None  # an already-installed tree, checked against its signed list
        self.repaired: List[str] = []
        self.receipt: Optional[Receipt] = None
        self.verified: Optional[Verified] = None

    # (3) of "Verifying": every decision is taken before a payload byte is written.
    def decide(self, v: Verified):
        self.verified = v
        meta, kit = v.meta, self.kit
        problem = v.signer.scope_problem(meta.name)
        if problem:
            raise TrustError(problem)
        self.receipt.doc.update(name=meta.name, version=meta.version, bundle_id=v.bundle_id,
                                signer=v.signer.fingerprint, previous=kit.current_version(meta.name))
        existing = kit.bundle_id_of(meta.name, meta.version)
        if existing is not None and existing != v.bundle_id:
            raise VersionRefused("%s %s is already installed with other content (bundle_id %s, this one %s); "
                                 "bump the version" % (meta.name, meta.version, existing, v.bundle_id))
        check_precedence(kit, meta.name, meta.version, v.bundle_id)
        highest = kit.highest_current(meta.name)
        is_current = kit.current_version(meta.name) == meta.version
        if highest and Version(meta.version) < Version(highest) and not is_current:
            if not self.allow_downgrade:
                raise VersionRefused("%s %s is older than %s, the highest version this kit has made current; "
                                     "pass --allow-downgrade --reason TEXT to install it anyway"
                                     % (meta.name, meta.version, highest))
            self.receipt.doc["downgrade_reason"] = self.reason
        self._check_owners(meta, v.signer)
        if existing == v.bundle_id:
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
        """Issue 10 point 2: the tags this install would move must not belong to a name its signer is not trusted for."""
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

    def _staging(self, v: Verified) -> "StagingSink":
        meta, kit = v.meta, self.kit
        needed = meta.total_size + len(v.sums) + len(v.meta_bytes) + 4096 * (len(meta.members) + 1) + SPACE_MARGIN
        free = kit.free_bytes(kit.staging)
        if free < needed:
            raise LocalEnvironmentError("not enough free space in the kit: %d MiB needed, %d MiB free"
                                        % (needed >> 20, free >> 20))
        self.staging_dir = os.path.join(kit.staging, "%s-%d" % (v.bundle_id[:16], os.getpid()))
        self.receipt.save()
        os.makedirs(self.staging_dir, mode=0o700)  # explicit: a umask of 002 must not make .state group-writable
        faults.point("after-head")
        return StagingSink(os.path.join(self.staging_dir, "tree"), kit)

    def run(self) -> dict:
        if not os.path.exists(self.archive):
            raise UsageError("the archive %s does not exist" % self.archive)
        self.kit.prepare()
        with self.kit.locked():
            self.clear_debris()
            keys = resolve_keys(self.trust, self.kit)
            self.receipt = Receipt(self.kit, self.archive)
            try:
                return self._phases(keys)
            except BaseException as exc:
                error = exc if isinstance(exc, BundleError) else (
                    Interrupted(2) if isinstance(exc, KeyboardInterrupt) else InternalError(str(exc) or type(exc).__name__))
                self.fail(error)
                if isinstance(exc, KeyboardInterrupt):
                    raise error
                raise

    def _phases(self, keys) -> dict:
        v = verify_file(self.archive, keys, self.decide, self.show_progress)
        self.verified = v
        meta = v.meta
        if self.already_installed:
            self.receipt.phase(1, "done", "bundle_id already installed; the archive verified again (%d files, %d bytes)"
                               % (v.members_seen + 1, v.bytes_seen))
            if self.damage.ok:
                self.receipt.phase(2, "skipped", "the installed tree matches its signed SHA256SUMS")
            else:
                self.repaired = self.repair(meta)
                self.receipt.phase(2, "done", "repaired bundles/%s/%s from the verified archive: %s"
                                   % (meta.name, meta.version, "; ".join(self.repaired)))
        else:
            self.receipt.phase(1, "done", "%d files, %d bytes verified" % (v.members_seen + 1, v.bytes_seen))
            faults.point("before-promote")
            self.promote(os.path.join(self.staging_dir, "tree"), meta.name, meta.version, v)
            self.receipt.phase(2, "done", "bundles/%s/%s" % (meta.name, meta.version))
            faults.point("after-promote")
        tree = self.kit.version_dir(meta.name, meta.version)
        pusher = self._phase3(tree, meta)
        self.rendered = self._phase4(tree, meta)
        previous = self.kit.current_version(meta.name)
        faults.point("before-switch")
        if previous != meta.version:
            self.kit.switch_current(meta.name, meta.version)
            faults.point("after-switch")
            self.receipt.phase(5, "done", "current/%s -> %s (was %s)" % (meta.name, meta.version, previous or "none"))
        else:
            self.receipt.phase(5, "done", "already current")
        deploy = self._phase6(pusher)
        outcome = "already-installed" if self.already_installed else "installed"
        self.receipt.finish(outcome)
        result = v.summary()
        result.update(deploy=deploy, docker=self.docker_report, outputs=self.rendered, repaired=self.repaired)
        result.update(outcome=outcome, previous=previous, current=meta.version, kit=self.kit.root,
                      path=self.kit.version_dir(meta.name, meta.version),
                      receipt=os.path.relpath(self.receipt.path, self.kit.root),
                      phases=[{k: p[k] for k in ("phase", "name", "status", "detail")} for p in self.receipt.doc["phases"]])
        return result

    def _progress(self, total: int, desc: str) -> Progress:
        return Progress(total, desc, self.show_progress)

    def _phase3(self, tree: str, meta):
        """Push blobs and manifests by digest to the site registry; load into Docker."""
        if not (self.deploy.registry or self.deploy.docker):
            self.receipt.phase(3, "skipped", "no --registry or --docker given")
            return None
        if not meta.images and not meta.charts:
            self.receipt.phase(3, "skipped", "the bundle has no images or charts")
            return None
        details = []
        pusher = None
        if self.deploy.registry:
            pusher = SitePush(tree, meta, self.deploy.registry, strip_source_host=self.deploy.strip_source_host,
                              registry_ca=self.deploy.registry_ca, insecure=self.deploy.insecure,
                              progress_factory=self._progress, hashed_this_run=True)
            report = pusher.push_content()
            self.receipt.doc.setdefault("sites", {})[self.deploy.registry] = report
            # What rollback needs to reach this site again (never credentials: they come from the environment).
            self.receipt.doc.setdefault("site_options", {})[self.deploy.registry] = {
                "insecure": list(self.deploy.insecure), "registry_ca": os.path.abspath(self.deploy.registry_ca)
                if self.deploy.registry_ca else None, "strip_source_host": self.deploy.strip_source_host}
            details.append("%s: %d blobs pushed, %d mounted, %d already there; %d manifests pushed, %d already there"
                           % (self.deploy.registry, report["blobs_pushed"], report["blobs_mounted"],
                              report["blobs_present"], report["manifests_pushed"], report["manifests_present"]))
        if self.deploy.docker and meta.images:
            loader = DockerLoad(tree, meta, self.deploy.platform, pusher.site_tags() if pusher else None,
                                progress_factory=self._progress)
            self.docker_report = loader.load_all()
            self.receipt.doc["docker"] = self.docker_report
            self._claim("docker")
            details.append("docker: %d images loaded for %s, IDs equal their config digests"
                           % (len(self.docker_report["images"]), self.docker_report["platform"]))
        self.receipt.phase(3, "done", "; ".join(details))
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
            raise LocalEnvironmentError("%s %s; refusing to use it" % (exc.path, exc.why))
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
        has_outputs = meta.charts or objects or any(p.startswith("compose/") for p in meta.members)
        if not (self.deploy.registry or self.deploy.docker) or not has_outputs:
            self.receipt.phase(4, "skipped", "no --registry or --docker site, or nothing to render%s"
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
        self.receipt.doc["deploy_outputs"] = out
        self.receipt.phase(4, "done", "%s: %d files" % (out["folder"], len(out["files"])))
        return out

    def _kubernetes(self, tree: str, meta, tmp: str, tls_dir: Optional[str], final: str):
        """The objects the bundle's deploy.kubernetes declares: namespace and ConfigMaps in deploy/, Secrets in secrets/.

        Bundle files are read from the installed tree only (tenants/<component>.yaml and files[].target, both
        checked in bundle.json), never through a link and never beyond their signed size. Site files come from
        KIT/secrets/tls (only when that set is complete or was just made) and KIT/secrets/token."""
        from installer.deploy import k8s

        deploy = meta.deploy
        if deploy is None or deploy.kubernetes.empty:
            return [], []

        def bundle_file(entry) -> bytes:
            path = meta.tenants[entry.ref] if entry.source == "tenant" else entry.ref
            return read_installed(tree, path, meta.members[path])

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
        """Move registry tags last, then --apply; a failure here leaves the version current and the deploy incomplete."""
        if pusher is None and not self.deploy.apply:
            self.receipt.phase(6, "skipped", "no registry tags to move")
            return {}
        try:
            report = pusher.move_tags() if pusher is not None else {}
            if pusher is not None:
                self._claim("registry")
            if self.deploy.apply:
                report["apply"] = self._apply()
        except BundleError as exc:
            self.receipt.phase(6, "failed", exc.message)
            self.receipt.finish("deploy-incomplete", exc)
            self.receipt = None  # recorded: fail() must not write over it
            exc.message += " (the version is installed and current; run the same install again to finish)"
            raise
        detail = ("%s: %d tags moved, %d already current" % (self.deploy.registry, report["tags_moved"], report["tags_current"])
                  if pusher is not None else "")
        if "apply" in report:
            detail += ("; " if detail else "") + "apply: " + ", ".join("%s %s" % kv for kv in sorted(
                (k, v) for k, v in report["apply"].items() if k in ("kubernetes", "compose")))
        self.receipt.phase(6, "done", detail)
        return report

    def _apply(self) -> dict:
        from installer.deploy.apply import apply_compose, apply_kubernetes

        if not self.rendered:
            raise UsageError("--apply needs site outputs: give --registry (Kubernetes and compose) or --docker (compose)")
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
        done = repair_tree(self.kit, self.damage, os.path.join(self.staging_dir, "tree"))
        after = check_version(self.kit, meta.name, meta.version, signature=self.verified.signature)
        if not after.ok:
            raise ContentMismatch("bundles/%s/%s could not be repaired" % (meta.name, meta.version), after.lines())
        remove_tree(self.staging_dir)
        self.staging_dir = ""
        return done

    def promote(self, tree: str, name: str, version: str, v: Verified) -> None:
        """Phase 2: rename the verified tree into bundles/, then make it read-only and durable."""
        parent = os.path.join(self.kit.bundles, name)
        os.makedirs(parent, mode=0o755, exist_ok=True)  # explicit, whatever the umask
        # A version folder is renamed while still writable (renaming a 0555 folder fails for non-root).
        make_read_only(tree, include_root=False)
        final = self.kit.version_dir(name, version)
        try:
            os.rename(tree, final)
        except OSError as exc:
            raise LocalEnvironmentError("cannot move the verified tree into %s: %s" % (final, exc.strerror))
        os.chmod(final, 0o555)
        fsync_dir(final)
        fsync_dir(parent)
        fsync_dir(self.kit.bundles)
        os.rmdir(self.staging_dir)
        self.staging_dir = ""

    def fail(self, error: BundleError) -> None:
        if self.staging_dir and os.path.isdir(self.staging_dir):
            self.quarantine(self.staging_dir, error.message)
            self.staging_dir = ""
        if self.receipt is not None and self.receipt.doc["outcome"] == "running":
            done = {p["phase"] for p in self.receipt.doc["phases"]}
            first_missing = next(n for n in sorted(PHASES) if n not in done)
            try:
                self.receipt.phase(first_missing, "failed", error.message)
                self.receipt.finish("failed", error)
            except OSError:
                pass

    def quarantine(self, staging: str, reason: str) -> str:
        """Move a failed staging folder aside with its reason; drop the payload unless asked to keep it.

        The payload goes first (so a full disk has room for the record), and the record is best-effort:
        it must never replace the error that made the install fail."""
        tree = os.path.join(staging, "tree")
        listing = []
        if os.path.isdir(tree):
            for folder, _dirs, files in os.walk(tree):
                listing += [os.path.relpath(os.path.join(folder, f), tree) for f in files]
            if not self.keep_failed:
                remove_tree(tree)
            else:
                make_read_only(tree)  # kept for inspection, changed by nobody
        dest = os.path.join(self.kit.quarantine, os.path.basename(new_receipt_name())[:-5])
        os.rename(staging, dest)
        v = self.verified
        info = {"reason": reason, "at": utc_now(), "archive": os.path.abspath(self.archive),
                "payload_kept": self.keep_failed,
                "bundle_id": self.receipt.doc.get("bundle_id") if self.receipt is not None else None}
        try:
            write_atomic(os.path.join(dest, "reason.json"), canonical_json(info))
            if listing:
                write_atomic(os.path.join(dest, "members.txt"), "".join(p + "\n" for p in sorted(listing)).encode())
            if v is not None and v.sums:
                write_atomic(os.path.join(dest, "SHA256SUMS"), v.sums)
        except OSError:
            pass
        return dest

    def clear_debris(self) -> None:
        """Staging left by a killed run is quarantined before anything else happens (payload deleted first),
        and the temporary names a killed run leaves (receipts, current/ links) are removed."""
        for entry in sorted(os.listdir(self.kit.staging)):
            path = os.path.join(self.kit.staging, entry)
            remove_tree(os.path.join(path, "tree"))
            dest = os.path.join(self.kit.quarantine, "debris-" + entry)
            if os.path.exists(dest):
                remove_tree(dest)
            os.rename(path, dest)
            write_atomic(os.path.join(dest, "reason.json"),
                         json.dumps({"reason": "left behind by an interrupted install", "at": utc_now()}).encode())
        for folder in (self.kit.receipts, self.kit.current):
            for entry in os.listdir(folder):
                if ".tmp-" in entry:
                    remove_tree(os.path.join(folder, entry))
        for root, dirs, _files in os.walk(self.kit.deploy):
            for d in list(dirs):
                if ".tmp-" in d or ".old-" in d:
                    remove_tree(os.path.join(root, d))
                    dirs.remove(d)

def install(archive: str, kit: str, trust: Sequence[str] = (), allow_downgrade: bool = False,
            reason: Optional[str] = None, keep_failed: bool = False, show_progress: bool = True,
            deploy: Optional[DeployOptions] = None) -> dict:
    return Installer(archive, kit, trust, allow_downgrade, reason, keep_failed, show_progress, deploy).run()
