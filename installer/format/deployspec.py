"""The `deploy` object: how a bundle names what it deploys (its namespace, Kubernetes objects, dev TLS, compose env).

The manifest's `spec.deploy` and bundle.json's `deploy` are the same object; the builder checks it
with the schema, then through this model, and writes `to_dict()` into the signed bundle.json. The
installer parses it here, strictly, before it is used: every name in it ends up in a file name, a
JSON document, a command line (COMMANDS.txt) or an environment variable, so each one is held to the
grammar of the strictest place it goes, and every problem is one sentence naming its JSON path
(InvalidInput, exit 3).

    namespace: shop                       a DNS label: the Kubernetes namespace of every object and of helm
    compose:
      env: {SHOP_TLS_DIR: tls}             environment variable -> the site folder it points at (tls | token | s3),
                                           or secrets-gid: the group install --secrets-group made able to read
                                           the site's secrets (docs/TLS.md)
    tls:                                   what --dev-tls makes in KIT/secrets/tls
      services: [web, db]                  DNS labels: one certificate each, named after the service
      ca:     {file: ca, cn: ...}          file stem (ca.crt, ca.key) and common name of the CA
      shared: {file: tls, cn: ...}         the certificate every service presents (server and client)
      client: {file: client, cn: ...}      a client-only certificate
    kubernetes:
      configmaps: [{name, data: [{key, tenant: COMPONENT | file: TARGET}]}]
      secrets:    [{name, data: [{key, tenant | file | site: tls/FILE | token/FILE}]}]

A ConfigMap is made from bundle files only (a tenant file, or a `files[].target`); a Secret may
also take files the site supplies in KIT/secrets/tls, KIT/secrets/token or KIT/secrets/s3. Which bundle files exist
is checked against the rest of the document by `check_sources` (bundle.json: tenants and files).
"""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from installer.errors import InvalidInput
from installer.format.paths import path_problem

# Hard caps: a deploy section is a page of names, not a data set.
MAX_OBJECTS = 64          # ConfigMaps, and Secrets, each
MAX_DATA = 64             # keys in one object
MAX_SERVICES = 64         # dev-TLS services
MAX_ENV = 16              # compose environment variables
MAX_OBJECT_NAME = 200     # below Kubernetes' 253: the name is part of a file name (NN-secret-NAME.json <= 255 bytes)

SITE_FOLDERS = ("tls", "token", "s3")  # KIT/secrets/<folder>: what the site supplies (s3: object store keys)
SECRETS_GID = "secrets-gid"            # a compose variable set to the group that may read the site's secrets
ENV_VALUES = SITE_FOLDERS + (SECRETS_GID,)
DATA_SOURCES = ("tenant", "file", "site")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")                   # Kubernetes IsConfigMapKey (and not . .. ..x)
_COMPONENT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")            # a tenant component, as bundle.json's tenants
_SITE_FILE = re.compile(r"(tls|token|s3)/([A-Za-z0-9._-]{1,255})")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,40}")                     # a field name safe to repeat in a message
_COMMON_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9 ._-]{0,62}[A-Za-z0-9])?")  # no / = , + \ : safe in -subj

# Variables the install's own tools (docker, compose, the dynamic loader, the shell) read: a bundle may not
# point them at a secrets folder.
RESERVED_ENV = frozenset(("PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "IFS", "TMPDIR", "PWD", "USER", "LANG",
                          "KUBECONFIG", "SSH_AUTH_SOCK", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"))
RESERVED_ENV_PREFIXES = ("LD_", "DOCKER_", "COMPOSE_", "HELM_", "PYTHON", "SSL_", "BUNDLE_", "LC_", "XDG_")

# What --dev-tls makes when a bundle declares no `tls`: a CA, one shared certificate and a client certificate.
DEFAULT_CA = ("ca", "offline-bundle dev CA")
DEFAULT_SHARED = ("tls", "offline-bundle dev TLS")
DEFAULT_CLIENT = ("client", "offline-bundle dev client")


def _bad(where: str, what: str) -> InvalidInput:
    return InvalidInput("%s %s" % (where, what))


def _object(obj: Any, where: str, known: Sequence[str], required: Sequence[str] = ()) -> Mapping[str, Any]:
    """A JSON object with only ``known`` keys and every ``required`` one."""
    if not isinstance(obj, dict):
        raise _bad(where, "is not an object")
    for key in obj:
        if key not in known:
            named = " " + key if isinstance(key, str) and _PLAIN.fullmatch(key) else ""  # never echo what is odd
            raise _bad(where, "has an unknown field%s (allowed: %s)" % (named, ", ".join(known)))
    for key in required:
        if key not in obj:
            raise _bad("%s.%s" % (where, key), "is missing")
    return obj


def _string(value: Any, where: str, pattern: "re.Pattern[str]", what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(where, "is not %s" % what)
    return value


def _list(value: Any, where: str, limit: int) -> List[Any]:
    if not isinstance(value, list):
        raise _bad(where, "is not a list")
    if len(value) > limit:
        raise _bad(where, "has %d entries; at most %d are allowed" % (len(value), limit))
    return value


def _unique(named: Sequence[Tuple[str, str]], what: str) -> None:
    """(where, name) pairs: the second use of a name is refused at its own path."""
    seen = set()
    for where, name in named:
        if name in seen:
            raise _bad(where, "repeats the %s %s" % (what, name))
        seen.add(name)


def is_dns_label(text: str) -> bool:
    return isinstance(text, str) and bool(_DNS_LABEL.fullmatch(text))


def check_key(key: Any, where: str) -> str:
    """A ConfigMap or Secret key, as kubectl checks every --from-file key (IsConfigMapKey)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or key in (".", "..") or key.startswith(".."):
        raise _bad(where, "is not a Kubernetes key (1 to 253 of letters, digits, '-', '_' and '.'; not '.', "
                          "'..' nor starting with '..')")
    return key


def check_object_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or len(name) > MAX_OBJECT_NAME or not _DNS_SUBDOMAIN.fullmatch(name):
        raise _bad(where, "is not a Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending "
                          "with a letter or digit, at most %d characters)" % MAX_OBJECT_NAME)
    return name


def check_env_name(name: Any, where: str) -> str:
    """``where`` is the env object; a name that fails the grammar is never echoed (it may hold anything)."""
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise _bad(where, "has a variable whose name is not an environment variable name (upper-case letters, "
                          "digits and '_', not starting with a digit, at most 128 characters)")
    if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES):
        raise _bad(where, "has %s, a variable the deploy tools themselves read; choose a name of the product's own"
                   % name)
    return name


# --- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataEntry:
    """One key of a ConfigMap or Secret and where its bytes come from."""

    key: str
    source: str     # tenant | file | site
    ref: str        # a tenant component | a files[].target | tls/FILE, token/FILE or s3/FILE

    @property
    def site_folder(self) -> str:
        return self.ref.split("/", 1)[0] if self.source == "site" else ""

    @property
    def site_file(self) -> str:
        return self.ref.split("/", 1)[1] if self.source == "site" else ""

    @classmethod
    def from_dict(cls, obj: Any, where: str, allow_site: bool) -> "DataEntry":
        sources = DATA_SOURCES if allow_site else DATA_SOURCES[:2]
        _object(obj, where, ("key",) + sources, ("key",))
        key = check_key(obj["key"], where + ".key")
        given = [s for s in sources if s in obj]
        if len(given) != 1:
            raise _bad(where, "needs exactly one of %s" % ", ".join(sources) + (
                "" if allow_site else " (a ConfigMap never takes the site's secret files)"))
        source = given[0]
        ref = obj[source]
        at = "%s.%s" % (where, source)
        if source == "tenant":
            _string(ref, at, _COMPONENT, "a tenant component name")
        elif source == "file":
            if not isinstance(ref, str) or path_problem(ref):
                raise _bad(at, "is not a bundle file path")
        else:
            match = _SITE_FILE.fullmatch(ref) if isinstance(ref, str) else None
            if match is None or match.group(2) in (".", ".."):
                raise _bad(at, "is not tls/FILE, token/FILE or s3/FILE (a file name in the site's TLS, token or "
                               "object store credentials folder)")
        return cls(key, source, ref)

    def to_dict(self) -> Dict[str, str]:
        return {"key": self.key, self.source: self.ref}


@dataclass(frozen=True)
class KubeObject:
    """A ConfigMap or Secret: its name and its keys, in order."""

    name: str
    data: Tuple[DataEntry, ...]

    @classmethod
    def from_dict(cls, obj: Any, where: str, allow_site: bool) -> "KubeObject":
        _object(obj, where, ("name", "data"), ("name", "data"))
        name = check_object_name(obj["name"], where + ".name")
        items = _list(obj["data"], where + ".data", MAX_DATA)
        if not items:
            raise _bad(where + ".data", "is empty; an object holds at least one key")
        data = tuple(DataEntry.from_dict(d, "%s.data[%d]" % (where, i), allow_site) for i, d in enumerate(items))
        _unique([("%s.data[%d].key" % (where, i), d.key) for i, d in enumerate(data)], "key")
        return cls(name, data)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "data": [d.to_dict() for d in self.data]}


@dataclass(frozen=True)
class KubernetesSpec:
    configmaps: Tuple[KubeObject, ...] = ()
    secrets: Tuple[KubeObject, ...] = ()

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "KubernetesSpec":
        _object(obj, where, ("configmaps", "secrets"))
        kinds = []
        for kind, allow_site in (("configmaps", False), ("secrets", True)):
            at = "%s.%s" % (where, kind)
            items = _list(obj.get(kind, []), at, MAX_OBJECTS)
            kinds.append(tuple(KubeObject.from_dict(o, "%s[%d]" % (at, i), allow_site) for i, o in enumerate(items)))
        configmaps, secrets = kinds
        _unique([("%s.configmaps[%d].name" % (where, i), o.name) for i, o in enumerate(configmaps)]
                + [("%s.secrets[%d].name" % (where, i), o.name) for i, o in enumerate(secrets)], "object name")
        return cls(configmaps, secrets)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.configmaps:
            out["configmaps"] = [o.to_dict() for o in self.configmaps]
        if self.secrets:
            out["secrets"] = [o.to_dict() for o in self.secrets]
        return out

    @property
    def empty(self) -> bool:
        return not (self.configmaps or self.secrets)


@dataclass(frozen=True)
class Certificate:
    """A certificate --dev-tls makes: FILE.crt and FILE.key, subject O=offline-bundle development, CN=cn."""

    file: str
    cn: str

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "Certificate":
        _object(obj, where, ("file", "cn"), ("file", "cn"))
        return cls(_string(obj["file"], where + ".file", _DNS_LABEL, "a file stem (a DNS label)"),
                   _string(obj["cn"], where + ".cn", _COMMON_NAME,
                           "a common name (letters, digits, ' ', '.', '_' and '-', at most 64 characters)"))

    def to_dict(self) -> Dict[str, str]:
        return {"file": self.file, "cn": self.cn}


@dataclass(frozen=True)
class TlsSpec:
    services: Tuple[str, ...] = ()
    ca: Certificate = field(default_factory=lambda: Certificate(*DEFAULT_CA))
    shared: Certificate = field(default_factory=lambda: Certificate(*DEFAULT_SHARED))
    client: Certificate = field(default_factory=lambda: Certificate(*DEFAULT_CLIENT))

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "TlsSpec":
        _object(obj, where, ("services", "ca", "shared", "client"))
        items = _list(obj.get("services", []), where + ".services", MAX_SERVICES)
        services = tuple(_string(s, "%s.services[%d]" % (where, i), _DNS_LABEL, "a service name (a DNS label)")
                         for i, s in enumerate(items))
        default = cls()
        certs = {role: Certificate.from_dict(obj[role], "%s.%s" % (where, role)) if role in obj
                 else getattr(default, role) for role in ("ca", "shared", "client")}
        spec = cls(services, certs["ca"], certs["shared"], certs["client"])
        stems = [("%s.%s.file" % (where, role), getattr(spec, role).file) for role in ("ca", "shared", "client")]
        stems += [("%s.services[%d]" % (where, i), s) for i, s in enumerate(services)]
        _unique(stems, "certificate file name")
        return spec

    def to_dict(self) -> Dict[str, Any]:
        return {"services": list(self.services), "ca": self.ca.to_dict(), "shared": self.shared.to_dict(),
                "client": self.client.to_dict()}

    @property
    def in_use(self) -> Tuple[str, ...]:
        """The files a complete TLS folder holds for the stack: the CA certificate and the shared pair."""
        return (self.ca.file + ".crt", self.shared.file + ".crt", self.shared.file + ".key")


@dataclass(frozen=True)
class DeploySpec:
    namespace: str
    env: Tuple[Tuple[str, str], ...] = ()   # (variable, site folder or secrets-gid), sorted by variable
    tls: Optional[TlsSpec] = None
    kubernetes: KubernetesSpec = field(default_factory=KubernetesSpec)

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "DeploySpec":
        """``where`` names the document and path, e.g. "bundle.json: deploy"; problems are InvalidInput."""
        _object(obj, where, ("namespace", "compose", "tls", "kubernetes"), ("namespace",))
        namespace = _string(obj["namespace"], where + ".namespace", _DNS_LABEL,
                            "a DNS label (lower-case letters, digits and '-', at most 63 characters)")
        env: List[Tuple[str, str]] = []
        if "compose" in obj:
            compose = _object(obj["compose"], where + ".compose", ("env",))
            variables = compose.get("env", {})
            if not isinstance(variables, dict):
                raise _bad(where + ".compose.env", "is not an object")
            if len(variables) > MAX_ENV:
                raise _bad(where + ".compose.env", "has %d entries; at most %d are allowed" % (len(variables), MAX_ENV))
            for name, folder in variables.items():
                check_env_name(name, where + ".compose.env")
                if folder not in ENV_VALUES:
                    raise _bad("%s.compose.env.%s" % (where, name),
                               "is not tls, token or s3 (the site folders) or secrets-gid")
                env.append((name, folder))
        tls = TlsSpec.from_dict(obj["tls"], where + ".tls") if "tls" in obj else None
        kube = KubernetesSpec.from_dict(obj["kubernetes"], where + ".kubernetes") if "kubernetes" in obj \
            else KubernetesSpec()
        return cls(namespace, tuple(sorted(env)), tls, kube)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"namespace": self.namespace}
        if self.env:
            out["compose"] = {"env": dict(self.env)}
        if self.tls is not None:
            out["tls"] = self.tls.to_dict()
        if not self.kubernetes.empty:
            out["kubernetes"] = self.kubernetes.to_dict()
        return out

    def check_sources(self, tenants: FrozenSet[str], files: FrozenSet[str], where: str) -> None:
        """Every bundle file the objects take exists: a tenant component of `tenants`, a target of `files`."""
        kube = self.kubernetes
        for kind, objects in (("configmaps", kube.configmaps), ("secrets", kube.secrets)):
            for i, obj in enumerate(objects):
                for j, entry in enumerate(obj.data):
                    at = "%s.kubernetes.%s[%d].data[%d].%s" % (where, kind, i, j, entry.source)
                    if entry.source == "tenant" and entry.ref not in tenants:
                        raise _bad(at, "names the tenant component %s, which the bundle has no file for" % entry.ref)
                    if entry.source == "file" and entry.ref not in files:
                        raise _bad(at, "names %s, which is not one of the bundle's files" % entry.ref)

    @property
    def dev_tls(self) -> TlsSpec:
        return self.tls if self.tls is not None else TlsSpec()


def default_namespace(bundle_name: str) -> str:
    """Without a deploy section: a namespace named after the bundle, or `default` when its name is no DNS label."""
    return bundle_name if is_dns_label(bundle_name) else "default"


def namespace_of(deploy: Optional[DeploySpec], bundle_name: str) -> str:
    return deploy.namespace if deploy is not None else default_namespace(bundle_name)


def parse_deploy(raw: Mapping[str, Any]) -> Optional[DeploySpec]:
    """bundle.json's optional `deploy`, checked after its tenants and files were (parse_meta)."""
    if "deploy" not in raw:
        return None
    spec = DeploySpec.from_dict(raw["deploy"], "bundle.json: deploy")
    spec.check_sources(frozenset(raw["tenants"]), frozenset(f["target"] for f in raw["files"]), "bundle.json: deploy")
    return spec
