"""Image references: parsing and normalisation as Docker does it, plus `--mirror` rewriting.

`prom/prometheus:v3.5.0` is `docker.io/prom/prometheus:v3.5.0`; `busybox` is
`docker.io/library/busybox:latest`; `index.docker.io` is `docker.io`. Only sha256 digests are
accepted, with a strict pattern, because digests become file names.
"""

import re
from typing import List, Optional, Sequence, Tuple, Type, TypedDict

from installer.errors import BundleError, InvalidInput, UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = r"(?:%s(?:\.%s)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?" % (_DOMAIN_PART, _DOMAIN_PART)
PATH_RE = re.compile(r"%s(?:/%s)*" % (_COMPONENT, _COMPONENT))
DOMAIN_RE = re.compile(_DOMAIN)
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
MAX_REF = 512


def _shown(value: object) -> str:
    """A hostile value as it may appear in a message: escaped to ASCII (no control characters), cut short."""
    text = ascii(value)
    return text if len(text) <= 90 else text[:80] + "..." + text[-6:]


def strict_digest(value: object, source: str, error: Type[BundleError] = InvalidInput) -> str:
    """``value`` if it is exactly sha256: and 64 lower-case hex digits, else ``error``.

    The one check every digest from outside passes (registry header, index, lock file) before any
    use, because digests become file names. Always fullmatch: a pattern ending in `$` would also
    accept a trailing newline.
    """
    if isinstance(value, str) and DIGEST_RE.fullmatch(value):
        return value
    raise error("%s gave the digest %s, which is not a sha256 digest (sha256: and 64 lower-case hex digits); "
                "refused" % (source, _shown(value)))


def strict_hex(value: object, source: str, error: Type[BundleError] = InvalidInput) -> str:
    """``value`` if it is exactly 64 lower-case hex digits (a bare sha256), else ``error``."""
    if isinstance(value, str) and HEX64_RE.fullmatch(value):
        return value
    raise error("%s gave the sha256 %s, which is not 64 lower-case hex digits; refused" % (source, _shown(value)))


class Reference:
    """A normalised reference: host, path, tag and/or digest."""

    __slots__ = ("host", "path", "tag", "digest")

    def __init__(self, host: str, path: str, tag: Optional[str], digest: Optional[str]) -> None:
        self.host = host
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def repository(self) -> str:
        return "%s/%s" % (self.host, self.path)

    @property
    def endpoint(self) -> str:
        """The host to contact: Docker Hub's API lives on registry-1.docker.io."""
        return DOCKER_HUB_ENDPOINT if self.host == DOCKER_HUB else self.host

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return "Reference(%s)" % self


def parse(text: str) -> Reference:
    """Normalise an image reference; InvalidInput (exit 3) with a reason when it is not one."""
    if not isinstance(text, str) or not text or len(text) > MAX_REF or text != text.strip():
        raise InvalidInput("%r is not an image reference" % (text,))
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.fullmatch(digest):
            raise InvalidInput("%r: only sha256 digests (sha256: and 64 lower-case hex digits) are accepted" % text)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not TAG_RE.fullmatch(tag):
            raise InvalidInput("%r: %r is not a valid tag" % (text, tag))
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not DOMAIN_RE.fullmatch(first):
            raise InvalidInput("%r: %r is not a valid registry host" % (text, first))
        host, path = first, remainder
    else:
        host, path = DOCKER_HUB, rest
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if not PATH_RE.fullmatch(path):
        raise InvalidInput("%r: %r is not a valid repository path (lower-case, digits, . _ -)" % (text, path))
    if tag is None and digest is None:
        tag = "latest"
    ref = Reference(host, path, tag, digest)
    if len(str(ref)) > MAX_REF:
        raise InvalidInput("%r is longer than %d characters once normalised" % (text[:80], MAX_REF))
    return ref


# --- --mirror SRC=DST ---------------------------------------------------------------------------
class MirrorJSON(TypedDict):
    source: str
    mirror: str


class Mirror:
    __slots__ = ("source", "dest_host", "dest_prefix")

    def __init__(self, source: str, dest_host: str, dest_prefix: str) -> None:
        self.source = source
        self.dest_host = dest_host
        self.dest_prefix = dest_prefix

    @property
    def destination(self) -> str:
        return self.dest_host + ("/" + self.dest_prefix if self.dest_prefix else "")

    def to_json(self) -> MirrorJSON:
        return {"source": self.source, "mirror": self.destination}


def parse_mirror(spec: str) -> Mirror:
    """SRC=DST: SRC a registry host with optional path prefix; DST host[:port][/prefix]."""
    if spec.count("=") != 1:
        raise UsageError("--mirror takes SRC=DST, not %r" % spec)
    src, dst = (s.strip().rstrip("/") for s in spec.split("="))
    if not src or not dst:
        raise UsageError("--mirror takes SRC=DST, not %r" % spec)
    src_host, _, src_path = src.partition("/")
    if src_host in DOCKER_HUB_ALIASES:
        src_host = DOCKER_HUB
    dst_host, _, dst_prefix = dst.partition("/")
    if not DOMAIN_RE.fullmatch(src_host) or not DOMAIN_RE.fullmatch(dst_host):
        raise UsageError("--mirror %r: both sides start with a registry host" % spec)
    for prefix in (src_path, dst_prefix):
        if prefix and not PATH_RE.fullmatch(prefix):
            raise UsageError("--mirror %r: %r is not a repository path" % (spec, prefix))
    return Mirror(src_host + ("/" + src_path if src_path else ""), dst_host, dst_prefix)


def apply_mirrors(ref: Reference, mirrors: Sequence[Mirror]) -> Tuple[str, str, Optional[Mirror]]:
    """(endpoint host, repository path on it, mirror used) for fetching ``ref``.

    SRC matches whole path components of host/path; the longest SRC wins.
    """
    full = ref.repository
    best: Optional[Mirror] = None
    for m in mirrors:
        if full == m.source or full.startswith(m.source + "/"):
            if best is None or len(m.source) > len(best.source):
                best = m
    if best is None:
        return ref.endpoint, ref.path, None
    remainder = full[len(best.source):].lstrip("/")
    path = "/".join(p for p in (best.dest_prefix, remainder) if p)
    return best.dest_host, path, best


# --- names on the site registry ---------------------------------------------------------------
# Every site repository and reference is rendered by the functions below and nowhere else: the push
# (installer/site/push.py), the tags the kit records as owned (installer/site/owners.py), Docker's tags and
# the deploy outputs (installer/deploy/render.py: compose, values, COMMANDS.txt) all agree by construction.
SITE_NAME_MAX = 255  # distribution's NameTotalLengthMax: the registry host, "/" and the repository together
COMPONENT_RE = re.compile(_COMPONENT)


def site_host(host: str) -> str:
    """A source registry host as one path component of a site repository: lower-cased, ':' written '_'
    (``registry.corp:8443`` -> ``registry.corp_8443``, ``127.0.0.1:5000`` -> ``127.0.0.1_5000``).

    A host name never holds '_' (DOMAIN_RE), so two hosts never meet in one component except by case, which
    DNS ignores. An IPv6 literal loses its brackets and still does not fit the grammar: check_site_names
    refuses it (exit 3) rather than inventing a name for it."""
    return host.lower().replace("[", "").replace("]", "").replace(":", "_")


def site_repository(ref: Reference, prefix: str, strip_source_host: bool) -> str:
    """Where an image lands on the site registry: [PREFIX/]<source host>/<path> (or without the host), the host
    written by ``site_host``."""
    parts: List[str] = [prefix] if prefix else []
    if not strip_source_host:
        parts.append(site_host(ref.host))
    parts.append(ref.path)
    return "/".join(parts)


def chart_repository(prefix: str, name: str) -> str:
    """Charts land as SITE[/PREFIX]/charts/<name>, so `helm pull oci://SITE[/PREFIX]/charts/<name>@DIGEST` works."""
    return "/".join(p for p in (prefix, "charts", name) if p)


def site_reference(host: str, repository: str, tag: Optional[str] = None, digest: Optional[str] = None) -> str:
    """HOST/REPOSITORY[:TAG][@DIGEST]: a repository of the site as pull specs, compose and values name it."""
    return "%s/%s" % (host, repository) + (":" + tag if tag else "") + ("@" + digest if digest else "")


def site_name_problem(host: str, repository: str) -> Optional[str]:
    """Why HOST/REPOSITORY is not a name the distribution reference grammar accepts, or None.

    The grammar (distribution/reference, and the OCI distribution spec's <name>): path components of
    ``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`` joined by '/', at most 255 characters with the registry host.
    Registries answer such a name with 400 NAME_INVALID or 404; distribution 2.8 with a 500, for a ':' and for
    a name over 255 characters (it counts the name alone, but docker, skopeo and containerd count the host too:
    a longer name could be pushed and never pulled)."""
    for component in repository.split("/"):
        if not COMPONENT_RE.fullmatch(component):
            return ("the path component %s is not lower-case letters and digits joined by '.', '_', '__' or '-'"
                    % _shown(component))
    if len(host) + 1 + len(repository) > SITE_NAME_MAX:
        return "%d characters with the registry host, more than the %d a repository name may have" % (
            len(host) + 1 + len(repository), SITE_NAME_MAX)
    return None


def site_tag_problem(tag: str) -> Optional[str]:
    """Why TAG cannot be a tag on a registry (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``), or None."""
    if TAG_RE.fullmatch(tag):
        return None
    return ("the tag %s is not letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"
            % _shown(tag))
