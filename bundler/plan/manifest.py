"""The manifest: what a bundle holds, read from YAML and checked before anything is fetched."""

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from installer.errors import InvalidInput, TrustError, UsageError
from installer.format.deployspec import DEFAULT_CA, DEFAULT_CLIENT, DEFAULT_SHARED, DeploySpec, namespace_of
from installer.format.paths import case_duplicates, is_reserved, path_problem, reserved_names, tenant_path
from installer.format.reference import parse as parse_ref
from installer.trust.signing import load_public_key

from bundler.plan.schemas import problems as schema_problems
from bundler.plan.yamlsrc import Located, Path, format_path, load_yaml


@dataclass(frozen=True)
class FileEntry:
    source: str          # as written in the manifest, relative to its folder
    source_path: str     # resolved on disk
    target: str
    sha256: Optional[str]
    executable: bool


@dataclass(frozen=True)
class TenantEntry:
    component: str
    source: str
    source_path: str

    @property
    def target(self) -> str:
        return tenant_path(self.component)


@dataclass(frozen=True)
class Manifest:
    path: str
    name: str
    version: str
    created: Optional[str]
    files: Tuple[FileEntry, ...]
    tenants: Tuple[TenantEntry, ...]
    images: Tuple[Dict[str, Any], ...]   # spec.images and spec.charts entries, as the schema checked them
    charts: Tuple[Dict[str, Any], ...]
    doc: Located
    deploy: Optional[DeploySpec] = None   # spec.deploy: how the installer names what it deploys

    @property
    def namespace(self) -> str:
        """The Kubernetes namespace the charts go to (the deploy section's, else the default rule)."""
        return namespace_of(self.deploy, self.name)


def _resolve_source(base: str, source: str, doc: Located, path: Path) -> Tuple[str, List[str]]:
    """A source stays inside the manifest's folder; symlinks are followed and checked too."""
    if "\0" in source:
        return "", ["%s: source %r contains a NUL character" % (doc.where(path), source)]
    if os.path.isabs(source):
        return "", ["%s: source %r must be relative to the manifest's folder" % (doc.where(path), source)]
    root = os.path.realpath(base)
    full = os.path.realpath(os.path.join(root, source))
    if os.path.commonpath([root, full]) != root:
        return "", ["%s: source %r points outside the manifest's folder" % (doc.where(path), source)]
    if not os.path.isfile(full):
        return "", ["%s: source file %r does not exist" % (doc.where(path), source)]
    return full, []


def load_manifest(path: str) -> Manifest:
    if not os.path.isfile(path):
        raise UsageError("the manifest %s does not exist" % path)
    doc = load_yaml(path)
    data = doc.data
    problems: List[str] = []
    version = (data.get("metadata", {}).get("version")
               if isinstance(data, dict) and isinstance(data.get("metadata"), dict) else None)
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        # YAML read 1.10 as a number; it is not what the user meant.
        problems.append("%s: the version is a YAML number; quote the version (e.g. version: \"1.10.0\")"
                        % doc.where(("metadata", "version")))
    problems += [p for p in schema_problems(doc, "manifest.schema.json")
                 if not (problems and ": metadata.version:" in p)]
    if problems:
        raise InvalidInput("the manifest %s is not valid" % path, problems)

    meta, spec = data["metadata"], data["spec"]
    base = os.path.dirname(os.path.abspath(path))
    bundled: Set[str] = set()
    images: List[Dict[str, Any]] = []
    for i, image in enumerate(spec.get("images", [])):
        try:
            bundled.add(str(parse_ref(image["ref"])))
        except InvalidInput as exc:
            problems.append("%s: %s" % (doc.where(("spec", "images", i, "ref")), exc.message))
        image = dict(image)
        if "signed-by" in image:
            problems += _signed_by(base, image, doc, ("spec", "images", i, "signed-by"))
        images.append(image)
    for i, chart in enumerate(spec.get("charts", [])):
        if chart.get("values"):
            problems += _resolve_source(base, chart["values"], doc, ("spec", "charts", i, "values"))[1]
        for j, image in enumerate(chart.get("images", [])):
            where = doc.where(("spec", "charts", i, "images", j, "ref"))
            try:
                ref = str(parse_ref(image["ref"]))
            except InvalidInput as exc:
                problems.append("%s: %s" % (where, exc.message))
                continue
            if ref not in bundled:
                problems.append("%s: %s is not listed in spec.images, so the site would not have it" % (where, ref))
    files: List[FileEntry] = []
    for i, item in enumerate(spec.get("files", [])):
        at = ("spec", "files", i)
        target = item["target"]
        why = path_problem(target)
        if why:
            problems.append("%s: %s" % (doc.where(at + ("target",)), why))
        elif is_reserved(target):
            problems.append("%s: target %r falls under a name the bundle reserves (%s)"
                            % (doc.where(at + ("target",)), target, reserved_names()))
        full, errs = _resolve_source(base, item["source"], doc, at + ("source",))
        problems += errs
        files.append(FileEntry(item["source"], full, target, item.get("sha256"), bool(item.get("executable", False))))
    tenants: List[TenantEntry] = []
    for component, source in sorted(spec.get("tenants", {}).items()):
        full, errs = _resolve_source(base, source, doc, ("spec", "tenants", component))
        problems += errs
        tenants.append(TenantEntry(component, source, full))
    targets = [f.target for f in files]
    for dup in case_duplicates(targets):
        problems.append("%s: two files land on the same target: %s" % (path, dup))
    problems += _deploy_problems(spec.get("deploy"), doc, {t.component for t in tenants}, set(targets))
    if problems:
        raise InvalidInput("the manifest %s is not valid" % path, problems)
    deploy = None
    if "deploy" in spec:  # the model's own strict checks, after the schema's (a bundle carries only what it parses)
        deploy = DeploySpec.from_dict(spec["deploy"], "%s: spec.deploy" % path)
    return Manifest(path, meta["name"], meta["version"], meta.get("created"), tuple(files), tuple(tenants),
                    tuple(images), tuple(spec.get("charts", [])), doc, deploy)


def _signed_by(base: str, image: Dict[str, Any], doc: Located, at: Path) -> List[str]:
    """``signed-by``: a public key file beside the manifest (resolved to its full path in ``image``), read now so
    a wrong path or a key of an unsupported type is said before anything is pulled."""
    if image.get("source") == "docker-daemon":
        return ["%s: an image from the local Docker engine has no upstream signature to check" % doc.where(at)]
    full, errs = _resolve_source(base, image["signed-by"], doc, at)
    if errs:
        return errs
    try:
        load_public_key(full)
    except TrustError as exc:
        return ["%s: %s" % (doc.where(at), exc.message)]
    image["signed-by"] = full
    return []


def _deploy_problems(deploy: Optional[Dict[str, Any]], doc: Located, tenants: Set[str], targets: Set[str]
                     ) -> List[str]:
    """What the schema cannot see: names unique where they must be, and every bundle file an object takes
    declared in spec.tenants or spec.files."""
    if not deploy:
        return []
    problems: List[str] = []
    seen: Dict[str, Path] = {}
    kube = deploy.get("kubernetes") or {}
    for kind in ("configmaps", "secrets"):
        for i, obj in enumerate(kube.get(kind) or []):
            at = ("spec", "deploy", "kubernetes", kind, i)
            if obj["name"] in seen:
                problems.append("%s: %s is also the name of %s; object names are unique"
                                % (doc.where(at + ("name",)), obj["name"], format_path(seen[obj["name"]])))
            seen.setdefault(obj["name"], at)
            keys: Set[str] = set()
            for j, entry in enumerate(obj["data"]):
                where = doc.where(at + ("data", j))
                if entry["key"] in keys:
                    problems.append("%s: the key %s is given twice in %s" % (where, entry["key"], obj["name"]))
                keys.add(entry["key"])
                if "tenant" in entry and entry["tenant"] not in tenants:
                    problems.append("%s: tenant %s is not in spec.tenants" % (where, entry["tenant"]))
                if "file" in entry and entry["file"] not in targets:
                    problems.append("%s: file %s is not the target of any spec.files entry" % (where, entry["file"]))
    tls = deploy.get("tls")
    if tls is not None:
        base = ("spec", "deploy", "tls")
        defaults = {"ca": DEFAULT_CA[0], "shared": DEFAULT_SHARED[0], "client": DEFAULT_CLIENT[0]}
        stems: List[Tuple[Path, str]] = [(base + (role, "file"), tls[role]["file"]) if role in tls
                                          else (base, defaults[role]) for role in ("ca", "shared", "client")]
        stems += [(base + ("services", i), name) for i, name in enumerate(tls.get("services") or [])]
        used: Set[str] = set()
        for at, name in stems:
            if name in used:
                problems.append("%s: %s is already a certificate's file name; each certificate needs its own"
                                % (doc.where(at), name))
            used.add(name)
    return problems

