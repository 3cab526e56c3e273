"""Kubernetes manifests for the objects a bundle's `deploy.kubernetes` section declares, as JSON files.

`build_objects` makes every ConfigMap and Secret the section names (installer/format/deployspec.py)
from the bundle's files and the files the site supplies; nothing here knows any product's names.
Each builder returns the plain dict that `kubectl create ... --dry-run=client -o json` prints for
the same inputs (checked field for field against the real kubectl v1.35 by
tests/integration/test_k8s_manifests.py):

  namespace(NAME)                      kubectl create namespace NAME
  configmap_from_files(N, NS, files)   kubectl create configmap N -n NS --from-file=KEY=PATH ...
  secret_from_files(N, NS, files)      kubectl create secret generic N -n NS --from-file=KEY=PATH ...

What kubectl v1.35 prints, and so what these dicts hold:
- no `metadata.creationTimestamp` (kubectl up to 1.32 printed `creationTimestamp: null`; 1.35 omits it);
- a Namespace carries `spec: {}` and `status: {}`;
- a ConfigMap puts a file that is valid UTF-8 (Go's utf8.Valid, which is exactly Python's strict
  UTF-8 decoding) under `data` as text, and any other file under `binaryData`, base64;
  `data`/`binaryData` are left out when empty;
- a Secret holds every file base64 under `data`; `kubectl create secret generic` without
  `--type` prints NO `type` (the API server then defaults it to Opaque), so `type=None` here.

Manifests are written as JSON: it is valid YAML, `kubectl apply -f` reads it, and the standard
library writes it (the installer has no YAML emitter). Characters that a YAML reader would
take for line breaks or refuse (C1 controls, U+2028/2029, U+FEFF, U+FFFE/FFFF) are written as
\\u escapes, so the files read the same as JSON and as YAML.

Secrets never land in the deploy folder: they go to their own 0700 folder as 0600 files,
written atomically. No return value, exception message or log here carries secret content.
"""

import base64
import json
import os
import re
import stat
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from installer.errors import InternalError, InvalidInput, LocalEnvironmentError
from installer.format.deployspec import DataEntry, KubernetesSpec
from installer.fsutil import fsync_dir, write_atomic

# An object as `kubectl create ... -o json` prints it: apiVersion, kind, metadata, data...
KubeObject = Dict[str, Any]

# The API server refuses a ConfigMap or Secret whose values exceed 1 MiB (core.MaxSecretSize).
MAX_OBJECT_DATA = 1024 * 1024

DEPLOY_FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700

_KEY_CHARS = re.compile(r"[-._a-zA-Z0-9]+\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_OUR_FILE = re.compile(r"[0-9]{2,}-(namespace|configmap|secret)-[a-z0-9.-]+\.json\Z")
# Valid JSON, but not what a YAML reader reads back: escape them (see the module docstring).
_YAML_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]")


# --- validation: the rules kubectl and the API server apply ----------------------------------
def _check_key(key: str, obj: str) -> None:
    """k8s.io/apimachinery validation.IsConfigMapKey, which kubectl applies to every --from-file key."""
    problem = None
    if not isinstance(key, str) or not key:
        problem = "a key must be a non-empty string"
    elif len(key) > 253:
        problem = "a key must be no more than 253 characters"
    elif not _KEY_CHARS.match(key):
        problem = "a key may hold only letters, digits, '-', '_' and '.'"
    elif key in (".", "..") or key.startswith(".."):
        problem = "a key must not be '.' or '..' nor start with '..'"
    if problem:
        raise InvalidInput("%r is not a valid key for %s: %s" % (key, obj, problem))


def _check_name(name: object, what: str, label: bool = False) -> None:
    """The API server's name rules (kubectl --dry-run=client does not check them; we also use
    names in file names, so they are checked before anything is built)."""
    pattern, limit = (_DNS_LABEL, 63) if label else (_DNS_SUBDOMAIN, 253)
    if not isinstance(name, str) or len(name) > limit or not pattern.match(name):
        raise InvalidInput("%r is not a valid %s name: lower-case letters, digits and '-'%s, at most %d "
                           "characters, starting and ending with a letter or digit"
                           % (name, what, "" if label else " (and '.')", limit))


def _check_files(files: Mapping[str, bytes], obj: str) -> None:
    total = 0
    for key, value in files.items():
        _check_key(key, obj)
        if not isinstance(value, (bytes, bytearray)):
            raise InternalError("the value of key %r for %s must be bytes" % (key, obj))
        total += len(value)
    if total > MAX_OBJECT_DATA:
        raise InvalidInput("%s would hold %d bytes; Kubernetes refuses more than %d in one object"
                           % (obj, total, MAX_OBJECT_DATA))


def _metadata(name: str, namespace: Optional[str]) -> Dict[str, str]:
    meta = {"name": name}
    if namespace is not None:
        _check_name(namespace, "namespace", label=True)
        meta["namespace"] = namespace
    return meta


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


# --- the objects ---------------------------------------------------------------------------------
def namespace(name: str) -> KubeObject:
    """`kubectl create namespace NAME --dry-run=client -o json`."""
    _check_name(name, "namespace", label=True)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}, "status": {}}


def configmap_from_files(name: str, namespace: Optional[str], files: Mapping[str, bytes]) -> KubeObject:
    """`kubectl create configmap NAME [-n NS] --from-file=KEY=PATH ...`: valid UTF-8 is text under
    `data`, anything else base64 under `binaryData` (kubectl's utf8.Valid rule)."""
    _check_name(name, "ConfigMap")
    what = "ConfigMap %s" % name
    _check_files(files, what)
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(name, namespace)}
    text, binary = {}, {}
    for key in sorted(files):
        raw = bytes(files[key])
        try:
            text[key] = raw.decode("utf-8", "strict")
        except UnicodeDecodeError:
            binary[key] = _b64(raw)
    if text:
        obj["data"] = text
    if binary:
        obj["binaryData"] = binary
    return obj


def secret_from_files(name: str, namespace: Optional[str], files: Mapping[str, bytes],
                      type: Optional[str] = None) -> KubeObject:
    """`kubectl create secret generic NAME [-n NS] --from-file=KEY=PATH ... [--type=TYPE]`.

    Without `--type` kubectl prints no `type` (the server defaults it to Opaque): `type=None`
    is `create secret generic` without --type; `type="Opaque"` is `--type=Opaque`."""
    _check_name(name, "Secret")
    what = "Secret %s" % name
    _check_files(files, what)
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(name, namespace)}
    if files:
        obj["data"] = {key: _b64(files[key]) for key in sorted(files)}
    if type:
        obj["type"] = type
    return obj


def describe(entry: DataEntry, site_root: str) -> str:
    """Where a key's bytes come from, in words (never the bytes)."""
    if entry.source == "site":
        return os.path.join(site_root, *entry.ref.split("/"))
    return "the bundle's tenant file for %s" % entry.ref if entry.source == "tenant" else "the bundle's %s" % entry.ref


def build_objects(kube: KubernetesSpec, namespace: str, bundle_file: Callable[[DataEntry], bytes],
                  site_file: Callable[[DataEntry], Optional[bytes]], site_root: str = "KIT/secrets"
                  ) -> Tuple[List[KubeObject], List[KubeObject], List[str]]:
    """Every ConfigMap and Secret of the deploy section, in its order: (configmaps, secrets, skipped).

    bundle_file(entry): the bytes of a tenant file or bundle file (bundle.json's check proved it exists).
    site_file(entry): the bytes of a file the site supplies under ``site_root`` (tls/... or token/...), or
    None when absent. A ConfigMap is always built. A Secret whose inputs are not all there and non-empty
    is not built; `skipped` says which and why (names and paths only, never content)."""
    configmaps = [configmap_from_files(obj.name, namespace, {e.key: bundle_file(e) for e in obj.data})
                  for obj in kube.configmaps]
    secrets, skipped = [], []
    for obj in kube.secrets:
        files, missing = {}, []
        for entry in obj.data:
            data = site_file(entry) if entry.source == "site" else bundle_file(entry)
            if data:
                files[entry.key] = data
            else:
                missing.append(describe(entry, site_root))
        if missing:
            skipped.append("secret %s: missing or empty: %s — add %s and install again"
                           % (obj.name, ", ".join(missing), "it" if len(missing) == 1 else "them"))
        else:
            secrets.append(secret_from_files(obj.name, namespace, files))
    return configmaps, secrets, skipped


# --- writing -------------------------------------------------------------------------------------
def to_json(obj: KubeObject) -> bytes:
    """Indented JSON that is also valid YAML reading back the same values; ends with a newline."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    text = _YAML_UNSAFE.sub(lambda m: "\\u%04x" % ord(m.group(0)), text)
    return (text + "\n").encode("utf-8")


def _write_atomic(folder: str, filename: str, data: bytes, mode: int) -> str:
    """fsutil.write_atomic with exactly ``mode``; an OSError becomes one sentence without content."""
    path = os.path.join(folder, filename)
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise LocalEnvironmentError("cannot write %s: %s" % (path, exc.strerror or type(exc).__name__)) from exc
    return path


def _make_dirs(folder: str, mode: int, enforce: bool) -> None:
    """Create `folder` and every missing parent with exactly `mode`; with `enforce` the leaf is
    chmod-ed to `mode` even when it exists (a secrets folder is 0700 whatever the umask or an
    earlier run did)."""
    folder = os.path.abspath(folder)
    missing = []
    probe = folder
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        for path in reversed(missing):
            os.mkdir(path, mode)
            os.chmod(path, mode)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise LocalEnvironmentError("%s is not a folder" % folder)
        if enforce and stat.S_IMODE(st.st_mode) != mode:
            os.chmod(folder, mode)
    except FileExistsError as exc:
        raise LocalEnvironmentError("%s appeared while it was being created; is another install running?"
                                    % folder) from exc
    except OSError as exc:
        raise LocalEnvironmentError("cannot prepare %s: %s" % (folder, exc.strerror or type(exc).__name__)) from exc


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _prune(folder: str, keep: Sequence[str]) -> None:
    """Remove manifests of ours (NN-kind-name.json) left by an earlier render that are not in
    this one, so `kubectl apply -f FOLDER` applies exactly the current set."""
    for entry in os.listdir(folder):
        if _OUR_FILE.match(entry) and entry not in keep:
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError as exc:
                raise LocalEnvironmentError("cannot remove the stale manifest %s: %s"
                                            % (os.path.join(folder, entry), exc.strerror)) from exc
    fsync_dir(folder)


def write_manifests(deploy_dir: str, secrets_dir: str, configmaps: Sequence[KubeObject],
                    secrets: Sequence[KubeObject], namespace_obj: Optional[KubeObject]) -> List[str]:
    """One JSON file per object, `NN-kind-name.json`, numbered in apply order: the namespace,
    the ConfigMaps, then the Secrets. The namespace and ConfigMaps go to `deploy_dir`; every Secret
    to `secrets_dir` (0700, files 0600 whatever the umask), which may not be inside `deploy_dir`.
    Returns the written paths."""
    plan = []  # (folder, kind expected, object)
    if namespace_obj is not None:
        plan.append(("deploy", "Namespace", namespace_obj))
    plan += [("deploy", "ConfigMap", obj) for obj in configmaps]
    plan += [("secrets", "Secret", obj) for obj in secrets]
    for _where, kind, obj in plan:
        if not isinstance(obj, dict) or obj.get("kind") != kind:
            got = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
            raise InvalidInput("expected a %s object here, got %s; Secrets go only in the secrets list" % (kind, got))
        _check_name((obj.get("metadata") or {}).get("name"), kind, label=(kind == "Namespace"))
    if _inside(secrets_dir, deploy_dir) or _inside(deploy_dir, secrets_dir):
        raise LocalEnvironmentError("the secrets folder %s and the deploy folder %s must be apart"
                                    % (secrets_dir, deploy_dir))

    width = max(2, len(str(max(len(plan) - 1, 0))))
    folders = {"deploy": (deploy_dir, DEPLOY_FILE_MODE), "secrets": (secrets_dir, SECRET_FILE_MODE)}
    _make_dirs(secrets_dir, SECRET_DIR_MODE, enforce=True)
    _make_dirs(deploy_dir, 0o755, enforce=False)
    names: Dict[str, List[str]] = {"deploy": [], "secrets": []}
    written = []
    for index, (where, kind, obj) in enumerate(plan):
        filename = "%0*d-%s-%s.json" % (width, index, kind.lower(), obj["metadata"]["name"])
        folder, mode = folders[where]
        written.append(_write_atomic(folder, filename, to_json(obj), mode))
        names[where].append(filename)
    _prune(deploy_dir, names["deploy"])
    _prune(secrets_dir, names["secrets"])
    return written
