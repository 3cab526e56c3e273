"""bundle.json: the authenticated description of a bundle version (format 1).

It is parsed only after its bytes matched their signed SHA256SUMS line, and it is checked
field by field here with the standard library: the installer carries no schema engine.
"""

import datetime
import json
import re
from typing import Any, Dict, Mapping, Optional, Tuple

from installer.errors import InvalidInput
from installer.format.deployspec import DeploySpec, parse_deploy
from installer.format.paths import c_sorted, is_reserved, path_problem
from installer.format.semver import is_semver

FORMAT = 1
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # used with fullmatch
COMPONENT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a tenant component (loki, tempo, ...)
CREATED_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
MAX_META_BYTES = 64 * 1024 * 1024


class Meta:
    """The fields the installer relies on; ``raw`` keeps the whole document for reports."""

    __slots__ = ("name", "version", "created", "tool", "members", "executable", "total_size", "images", "charts",
                 "tenants", "deploy", "raw")

    def __init__(self, raw: Dict[str, Any], deploy: Optional[DeploySpec] = None) -> None:
        self.raw = raw
        self.deploy = deploy  # the optional `deploy` object (installer/format/deployspec.py), checked by parse_meta
        self.name: str = raw["name"]
        self.version: str = raw["version"]
        self.created: str = raw["created"]
        self.tool: Dict[str, str] = raw["tool"]
        self.members: Dict[str, int] = {m["path"]: m["size"] for m in raw["members"]}
        self.executable = frozenset(m["path"] for m in raw["members"] if m.get("executable"))
        self.total_size: int = raw["total_size"]
        self.images = [ImageRecord(i) for i in raw["images"]]
        self.charts = [ChartRecord(c) for c in raw["charts"]]
        # component -> its member path (always tenants/<component>.yaml, a listed member: checked in parse_meta)
        self.tenants: Dict[str, str] = {c: t["path"] for c, t in sorted(raw["tenants"].items())}


class ChartRecord:
    """One entry of bundle.json's charts, already checked by _check_chart."""

    __slots__ = ("name", "version", "path", "sha256", "oci_digest", "oci_media_type", "oci_size", "values", "images", "raw")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.name: str = raw["name"]
        self.version: str = raw["version"]
        self.path: str = raw["path"]
        self.sha256: str = raw["sha256"]
        self.oci_digest: str = raw["oci"]["digest"]
        self.oci_media_type: str = raw["oci"]["media_type"]
        self.oci_size: int = raw["oci"]["size"]
        self.values: Optional[str] = raw.get("values")
        self.images = raw.get("images") or []


class ImageRecord:
    """One entry of bundle.json's images, already checked by _check_image."""

    __slots__ = ("ref", "digest", "media_type", "size", "manifests", "derived", "source", "raw")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.ref: str = raw["ref"]
        self.digest: str = raw["digest"]
        self.media_type: str = raw["media_type"]
        self.size: int = raw["size"]
        self.manifests = raw["manifests"]
        self.derived: bool = raw["derived"]
        self.source: str = raw["source"]


def _fail(why: str) -> InvalidInput:
    return InvalidInput("bundle.json is malformed: %s" % why)


def _want(obj: Mapping, key: str, kind, where: str = "") -> Any:
    if key not in obj:
        raise _fail("%s%s is missing" % (where, key))
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail("%s%s has the wrong type" % (where, key))
    return value


def _valid_time(text: str) -> bool:
    if not CREATED_RE.fullmatch(text):
        return False
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def parse_meta(data: bytes) -> Meta:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail("not JSON (%s)" % type(exc).__name__)
    if not isinstance(raw, dict):
        raise _fail("not a JSON object")
    fmt = raw.get("format")
    if type(fmt) is not int or fmt != FORMAT:
        raise InvalidInput("the bundle has format %r; this installer reads format %d only" % (fmt, FORMAT))
    name = _want(raw, "name", str)
    if not NAME_RE.fullmatch(name):
        raise _fail("name %r is not a valid bundle name" % name)
    if not is_semver(_want(raw, "version", str)):
        raise _fail("version %r is not SemVer" % raw["version"])
    if not _valid_time(_want(raw, "created", str)):
        raise _fail("created %r is not an RFC 3339 UTC time" % raw["created"])
    tool = _want(raw, "tool", dict)
    _want(tool, "name", str, "tool.")
    _want(tool, "version", str, "tool.")
    members = _want(raw, "members", list)
    total = 0
    paths = []
    for i, member in enumerate(members):
        where = "members[%d]." % i
        if not isinstance(member, dict):
            raise _fail(where[:-1] + " is not an object")
        path = _want(member, "path", str, where)
        if path_problem(path):
            raise _fail(where + "path: " + path_problem(path))
        size = _want(member, "size", int, where)
        if size < 0:
            raise _fail(where + "size is negative")
        if not isinstance(member.get("executable", False), bool):
            raise _fail(where + "executable is not true or false")
        total += size
        paths.append(path)
    if paths != c_sorted(set(paths)):
        raise _fail("members are not unique and sorted by path")
    if _want(raw, "total_size", int) != total:
        raise _fail("total_size is not the sum of the member sizes")
    for key in ("images", "charts", "files"):
        _want(raw, key, list)
    sizes = {m["path"]: m["size"] for m in members}
    executable = {m["path"] for m in members if m.get("executable")}
    _check_tenants(_want(raw, "tenants", dict), sizes)
    for i, entry in enumerate(raw["files"]):
        _check_file(entry, "files[%d]." % i, sizes, executable)
    refs = set()
    for i, image in enumerate(raw["images"]):
        _check_image(image, "images[%d]." % i)
        if image["ref"] in refs:
            raise _fail("images lists %s twice" % image["ref"])
        refs.add(image["ref"])
    names = set()
    for i, chart in enumerate(raw["charts"]):
        _check_chart(chart, "charts[%d]." % i, sizes)
        if chart["name"] in names:
            raise _fail("charts lists %s twice" % chart["name"])
        names.add(chart["name"])
    return Meta(raw, parse_deploy(raw))


def _check_listed(path: str, where: str, sizes: Mapping[str, int]) -> None:
    """A path named in bundle.json must obey the member rules and be a listed member (issue 10, point 1):
    signed metadata never names anything outside the verified tree."""
    if path_problem(path):
        raise _fail(where + ": " + path_problem(path))
    if path not in sizes:
        raise _fail("%s %s is not a member of the bundle" % (where, path))


def _check_tenants(tenants: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """tenants: component -> {path: tenants/<component>.yaml, ...}; nothing else is ever read for a tenant."""
    for component, entry in tenants.items():
        where = "tenants.%s" % component
        if not isinstance(component, str) or not COMPONENT_RE.fullmatch(component):
            raise _fail("tenants has a component %r that is not a name" % (component,))
        if not isinstance(entry, dict):
            raise _fail(where + " is not an object")
        path = _want(entry, "path", str, where + ".")
        if path != "tenants/%s.yaml" % component:
            raise _fail("%s.path is %r; a tenant file is tenants/%s.yaml" % (where, path[:200], component))
        _check_listed(path, where + ".path", sizes)  # read later capped by that member's signed size


def _check_file(entry: Any, where: str, sizes: Mapping[str, int], executable: Any) -> None:
    if not isinstance(entry, dict):
        raise _fail(where[:-1] + " is not an object")
    target = _want(entry, "target", str, where)
    _check_listed(target, where + "target", sizes)
    if is_reserved(target):
        raise _fail("%starget %s falls under a reserved name" % (where, target))
    if not re.fullmatch(r"[0-9a-f]{64}", _want(entry, "sha256", str, where)):
        raise _fail(where + "sha256 is not 64 hex digits")
    _want(entry, "size", int, where)  # informative: the member's own size is what is enforced
    if bool(entry.get("executable", False)) != (target in executable):
        raise _fail(where + "executable differs from the member's")


def _check_chart(chart: Any, where: str, sizes: Mapping[str, int]) -> None:
    from installer.format.reference import DIGEST_RE

    if not isinstance(chart, dict):
        raise _fail(where[:-1] + " is not an object")
    name = _want(chart, "name", str, where)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
        raise _fail(where + "name %r is not a chart name" % name)
    version = _want(chart, "version", str, where)
    if not is_semver(version):
        raise _fail(where + "version %r is not SemVer" % version)
    if _want(chart, "path", str, where) != "charts/%s-%s.tgz" % (name, version):
        raise _fail(where + "path is not charts/<name>-<version>.tgz")
    _check_listed(chart["path"], where + "path", sizes)
    if not re.fullmatch(r"[0-9a-f]{64}", _want(chart, "sha256", str, where)):
        raise _fail(where + "sha256 is not 64 hex digits")
    oci = _want(chart, "oci", dict, where)
    if not DIGEST_RE.fullmatch(_want(oci, "digest", str, where + "oci.")):
        raise _fail(where + "oci.digest is not sha256:<64 hex>")
    _want(oci, "media_type", str, where + "oci.")
    _want(oci, "size", int, where + "oci.")
    values = chart.get("values")
    if values is not None and values != "charts/%s-%s.values.json" % (name, version):
        raise _fail(where + "values is not charts/<name>-<version>.values.json")
    if values is not None:
        _check_listed(values, where + "values", sizes)
    for j, image in enumerate(_want(chart, "images", list, where)):
        iw = "%simages[%d]." % (where, j)
        if not isinstance(image, dict):
            raise _fail(iw[:-1] + " is not an object")
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", _want(image, "values", str, iw)):
            raise _fail(iw + "values is not a dotted path")
        _want(image, "ref", str, iw)
        if image.get("style", "repository-tag") not in ("repository-tag", "registry-repository-tag", "image"):
            raise _fail(iw + "style is not repository-tag, registry-repository-tag or image")


def _check_image(image: Any, where: str) -> None:
    from installer.format.reference import DIGEST_RE, parse

    if not isinstance(image, dict):
        raise _fail(where[:-1] + " is not an object")
    ref = _want(image, "ref", str, where)
    try:
        if str(parse(ref)) != ref:
            raise _fail(where + "ref %r is not in normalised form" % ref)
    except InvalidInput:
        raise _fail(where + "ref %r is not an image reference" % ref)
    if not DIGEST_RE.fullmatch(_want(image, "digest", str, where)):
        raise _fail(where + "digest is not sha256:<64 hex>")
    _want(image, "media_type", str, where)
    if _want(image, "size", int, where) < 0:
        raise _fail(where + "size is negative")
    _want(image, "derived", bool, where)
    if _want(image, "source", str, where) not in ("registry", "docker-daemon"):
        raise _fail(where + "source is neither registry nor docker-daemon")
    for j, m in enumerate(_want(image, "manifests", list, where)):
        mw = "%smanifests[%d]." % (where, j)
        if not isinstance(m, dict) or not DIGEST_RE.fullmatch(_want(m, "digest", str, mw)):
            raise _fail(mw + "digest is not sha256:<64 hex>")
        _want(m, "media_type", str, mw)
        _want(m, "platform", str, mw)


def canonical_json(obj: Any) -> bytes:
    """The one serialisation the builder uses, so equal content gives equal bytes."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def member_paths(meta: Meta) -> Tuple[str, ...]:
    return tuple(meta.members)
