"""Helm charts into the bundle: from HTTP chart repositories, OCI registries and local folders.

- HTTP repository: `index.yaml`, the exact version, the `.tgz` checked against the index's digest
  (exit 5 on mismatch), kept exactly as served.
- OCI registry: Helm's artifact (config + chart layer) kept byte-exact; its chart layer is the `.tgz`.
- Local folder: packaged deterministically (sorted entries, uid/gid 0, the build time, gzip header
  mtime 0 and no file name, level 9).
Every chart also travels as a Helm OCI artifact (byte-exact for OCI charts, built here for the
others) so that the installer pushes all charts the same way: `helm pull oci://SITE/charts/NAME`.
"""

import fnmatch
import gzip
import hashlib
import io
import json
import os
import urllib.parse
import zlib
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from installer.errors import ContentMismatch, InternalError, InvalidInput, RegistryError, UnsafeMember, UsageError
from installer.format.model import Chart, ChartImage, ChartOci, document
from installer.format.oci import OCI_MANIFEST, Descriptor, parse_manifest
from installer.format.paths import chart_path, chart_values_path
from installer.format.reference import MirrorJSON, parse, strict_hex
from installer.format.semver import is_semver
from installer.format.tarstream import BLOCK, TarReader, member_header
from installer.fsutil import Readable

from bundler.pull.chartrepo import LIMITS, MiB, ChartRepoClient
from bundler.pull.images import BlobCache, Puller

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass
class UrlMirror:
    source: str
    dest: str

    def to_json(self) -> MirrorJSON:
        return {"source": self.source, "mirror": self.dest}


def split_mirrors(specs: Sequence[str]) -> Tuple[List[str], List[UrlMirror]]:
    """Registry mirrors (host[/path]=host[/prefix]) and chart-repository URL-prefix mirrors (a://...=b://...)."""
    registry, urls = [], []
    for spec in specs:
        if "://" in spec.split("=", 1)[0]:
            src, _, dst = spec.partition("=")
            if "://" not in dst:
                raise UsageError("--mirror %r: a chart repository URL maps to another URL" % spec)
            urls.append(UrlMirror(src.rstrip("/"), dst.rstrip("/")))
        else:
            registry.append(spec)
    return registry, urls


def apply_url_mirrors(url: str, mirrors: Sequence[UrlMirror]) -> Tuple[str, Optional[UrlMirror]]:
    best = None
    for m in mirrors:
        if url == m.source or url.startswith(m.source + "/"):
            if best is None or len(m.source) > len(best.source):
                best = m
    if best is None:
        return url, None
    return best.dest + url[len(best.source):], best


@dataclass
class PulledChart:
    """A chart in the blob cache: its bundle.json entry (the format's model) and what only the build needs."""

    entry: Chart
    blobs: Dict[str, int]           # its Helm OCI artifact: digest -> size
    values: Optional[bytes] = None  # the chart's base values, as canonical JSON (entry.values names the member)
    mirror: Optional[MirrorJSON] = None  # the --mirror rule used: {source, mirror}

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def version(self) -> str:
        return self.entry.version

    @property
    def tgz_digest(self) -> str:
        return "sha256:" + self.entry.sha256

    @property
    def lock_digest(self) -> str:
        """What a lock file pins: the registry's manifest for OCI charts, the archive for the others."""
        return self.entry.oci.digest if self.entry.source == "oci" else self.tgz_digest

    def set_values(self, data: bytes) -> None:
        """Carry base values: their bytes, and their member named in the entry."""
        self.values = data
        self.entry = replace(self.entry, values=chart_values_path(self.name, self.version))


def pulled_chart(name: str, version: str, source: str, origin: str, fetched_from: str, tgz_digest: str, tgz_size: int,
                 index_digest: Optional[str], oci: Descriptor, blobs: Dict[str, int], entry: Dict[str, Any], where: str
                 ) -> PulledChart:
    """The chart's bundle.json entry. ``source`` is repo | oci | path, ``origin`` the repository URL, oci://
    reference or manifest-relative path; the manifest entry's image value paths are carried as they are."""
    images = tuple(ChartImage.from_dict(spec, document("%s: images" % where).item(i))
                   for i, spec in enumerate(entry.get("images") or []))
    chart = Chart(name, version, chart_path(name, version), tgz_digest.split(":")[1],
                  ChartOci(oci.digest, oci.media_type, oci.size), images, None, source=source, origin=origin,
                  fetched_from=fetched_from, size=tgz_size, index_digest=index_digest)
    return PulledChart(chart, blobs)


class ChartFetcher:
    def __init__(self, cache: BlobCache, puller: Puller, url_mirrors: Sequence[UrlMirror], registry_ca: Optional[str],
                 insecure: Sequence[str], epoch: int) -> None:
        self.cache = cache
        self.puller = puller
        self.url_mirrors = list(url_mirrors)
        self.epoch = epoch
        self.http = ChartRepoClient(registry_ca, insecure)

    # --- HTTP repository ----------------------------------------------------------------------
    def from_repo(self, entry: Dict[str, Any], where: str) -> PulledChart:
        repo = entry["repo"].rstrip("/")
        url, mirror = apply_url_mirrors(repo, self.url_mirrors)
        for own in (repo, url):  # the manifest's and the --mirror's URL: the user's own input (exit 3);
            self.http.check_url(own, where, InvalidInput)  # no credentials in them, so none in messages
        found = self._index_entry(url, entry, where)
        chart_url = urllib.parse.urljoin(url + "/", found["urls"][0])
        if mirror is None and not chart_url.startswith(url):
            chart_url, _ = apply_url_mirrors(chart_url, self.url_mirrors)
        index_digest = found.get("digest")
        if index_digest is not None:
            strict_hex(index_digest, "%s/index.yaml (for %s %s)" % (url, entry["name"], entry["version"]),
                       RegistryError)

        def matches_index(digest: str, _size: int) -> None:
            if index_digest is not None and digest.split(":")[1] != index_digest:
                raise ContentMismatch("%s: %s has sha256 %s, the repository index says %s"
                                      % (where, chart_url, digest.split(":")[1], index_digest))

        chunks = self.http.chunks(chart_url, where, LIMITS.archive_bytes, "a chart archive")
        tgz_digest, tgz_size = self.cache.put_stream(chunks, matches_index)
        chart = self._artifact(tgz_digest, tgz_size, entry, where, "repo", repo, chart_url, index_digest)
        chart.mirror = mirror.to_json() if mirror else None
        return chart

    def _index_entry(self, url: str, entry: Dict[str, Any], where: str) -> Dict[str, Any]:
        """The index.yaml entry for the wanted version, its shape checked (a malformed index is exit 7)."""
        with self.http.spool(url + "/index.yaml", where, LIMITS.index_bytes, "a chart repository index") as fh:
            try:
                index = yaml.safe_load(fh)
            except (yaml.YAMLError, RecursionError) as exc:
                raise RegistryError("%s: %s/index.yaml is not valid YAML" % (where, url)) from exc
        entries = index.get("entries") if isinstance(index, dict) else None
        versions = entries.get(entry["name"]) if isinstance(entries, dict) else None
        if not isinstance(entries, dict) or not isinstance(versions, (list, type(None))):
            raise RegistryError("%s: %s/index.yaml is not a Helm chart repository index" % (where, url))
        if versions is None:
            raise InvalidInput("%s: %s/index.yaml has no chart %r" % (where, url, entry["name"]))
        found = next((v for v in versions if isinstance(v, dict) and str(v.get("version")) == str(entry["version"])),
                     None)
        if found is None:
            raise InvalidInput("%s: %s offers no version %s of %s" % (where, url, entry["version"], entry["name"]))
        urls = found.get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
            raise RegistryError("%s: %s/index.yaml lists no usable URL for %s %s"
                                % (where, url, entry["name"], entry["version"]))
        return found

    # --- OCI --------------------------------------------------------------------------------
    def from_oci(self, entry: Dict[str, Any], where: str) -> PulledChart:
        ref_text = entry["ref"][len("oci://"):]
        version = str(entry["version"])
        ref = parse("%s:%s" % (ref_text, version.replace("+", "_")))
        image, reg, repo = self.puller.resolve({"ref": str(ref), "referrers": False}, where)
        if reg is None:  # only a docker-daemon image comes without a registry, and a chart's reference is not one
            raise InternalError("%s: %s was resolved without a registry" % (where, entry["ref"]))
        data = self.cache.read(image.top.digest)
        config, layers = parse_manifest(data, image.top.media_type, where)
        if config is None or config.media_type != HELM_CONFIG:
            raise InvalidInput("%s: %s is not a Helm chart (config %s)"
                               % (where, entry["ref"], config and config.media_type))
        chart_layers = [layer for layer in layers if layer.media_type == HELM_CHART]
        if len(chart_layers) != 1:
            raise InvalidInput("%s: %s has %d chart layers, not one" % (where, entry["ref"], len(chart_layers)))
        too_big = [layer for layer in layers if layer.size > LIMITS.archive_bytes]
        if too_big:  # checked on the descriptor, before a byte of it is fetched
            raise RegistryError("%s: %s has a %d-byte layer %s, more than the %d MiB a chart archive may be; refused"
                                % (where, entry["ref"], too_big[0].size, too_big[0].digest,
                                   LIMITS.archive_bytes // MiB))
        self.puller.fetch_blobs([(reg, repo, d, s) for d, s in image.blobs.items()], "pull %s" % entry["ref"])
        name, chart_version, _ = chart_metadata(self.cache.path(chart_layers[0].digest), where)
        if chart_version != version:
            raise ContentMismatch("%s: %s:%s holds chart version %s" % (where, entry["ref"], version, chart_version))
        chart = pulled_chart(name, version, "oci", entry["ref"], image.entry.fetched_from, chart_layers[0].digest,
                             chart_layers[0].size, None, image.top, dict(image.blobs), entry, where)
        chart.mirror = image.mirror.to_json() if image.mirror else None
        return chart

    # --- local ------------------------------------------------------------------------------
    def from_path(self, entry: Dict[str, Any], where: str, base: str) -> PulledChart:
        root = os.path.realpath(os.path.join(base, entry["path"]))
        if os.path.commonpath([os.path.realpath(base), root]) != os.path.realpath(base):
            raise InvalidInput("%s: the chart path %r points outside the manifest's folder" % (where, entry["path"]))
        if not os.path.isfile(os.path.join(root, "Chart.yaml")):
            raise InvalidInput("%s: %s has no Chart.yaml" % (where, entry["path"]))
        data = package_chart(root, self.epoch, where)
        return self._artifact(self._put(data), len(data), entry, where, "path", entry["path"], entry["path"], None)

    # --- common -----------------------------------------------------------------------------
    def _artifact(self, tgz_digest: str, tgz_size: int, entry: Dict[str, Any], where: str, source: str, origin: str,
                  fetched_from: str, index_digest: Optional[str]) -> PulledChart:
        """Build the Helm OCI artifact for a chart (already in the cache) that did not come from a registry."""
        name, version, metadata = chart_metadata(self.cache.path(tgz_digest), where)
        if entry.get("name") and entry["name"] != name:
            raise ContentMismatch("%s: the chart is named %s, not %s" % (where, name, entry["name"]))
        if entry.get("version") and str(entry["version"]) != version:
            raise ContentMismatch("%s: the chart has version %s, not %s" % (where, version, entry["version"]))
        config = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
        config_digest = self._put(config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": HELM_CHART, "digest": tgz_digest, "size": tgz_size}],
            "annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version},
        }, sort_keys=True, separators=(",", ":")).encode()
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.cache.put_manifest(manifest_digest, manifest, OCI_MANIFEST)
        blobs = {manifest_digest: len(manifest), config_digest: len(config), tgz_digest: tgz_size}
        return pulled_chart(name, version, source, origin, fetched_from, tgz_digest, tgz_size, index_digest,
                            Descriptor(OCI_MANIFEST, manifest_digest, len(manifest)), blobs, entry, where)

    def _put(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.cache.put_bytes(digest, data)
        return digest


def chart_metadata(path: str, where: str) -> Tuple[str, str, Dict[str, Any]]:
    """(name, version, Chart.yaml as a dict) from a chart archive on disk, read through the caps."""
    try:
        doc = yaml.safe_load(_chart_yaml(path, where))
    except (yaml.YAMLError, RecursionError) as exc:
        raise InvalidInput("%s: the chart's Chart.yaml is not valid YAML" % where) from exc
    if not isinstance(doc, dict) or not doc.get("name") or not doc.get("version"):
        raise InvalidInput("%s: Chart.yaml has no name and version" % where)
    version = str(doc["version"])
    if not is_semver(version):
        raise InvalidInput("%s: the chart version %r is not SemVer" % (where, version))
    return str(doc["name"]), version, json.loads(json.dumps(doc, default=str))


class _Unpacked:
    """The decompressed stream of a chart archive, counted: past ``LIMITS.unpacked_bytes`` it stops."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.count = 0

    def read(self, n: int) -> bytes:
        data = self._stream.read(n)
        self.count += len(data)
        if self.count > LIMITS.unpacked_bytes:
            raise _TooBig()
        return data


class _TooBig(Exception):
    pass


def _chart_yaml(path: str, where: str) -> bytes:
    """The bytes of ``<top>/Chart.yaml``, read with the installer's own tar reader through the caps."""
    try:
        found = _top_chart_yamls(path)
    except _TooBig as exc:
        raise InvalidInput("%s: the chart archive unpacks to more than %d MiB (Helm refuses charts over 100 MiB); "
                           "refused" % (where, LIMITS.unpacked_bytes // MiB)) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput("%s: the chart archive is not a readable gzip file" % where) from exc
    except (InvalidInput, UnsafeMember) as exc:
        raise InvalidInput("%s: the chart archive is not a readable tar (%s)" % (where, exc.message)) from exc
    if len(found) != 1:
        raise InvalidInput("%s: the chart archive has %s Chart.yaml at its top, not one" % (where, len(found) or "no"))
    if found[0] is None:
        raise InvalidInput("%s: the chart's Chart.yaml is not a regular file of at most %d MiB"
                           % (where, LIMITS.chart_yaml_bytes // MiB))
    return found[0]


def _top_chart_yamls(path: str) -> List[Optional[bytes]]:
    """Each ``<top>/Chart.yaml`` (None when it is not a small regular file). The whole archive is scanned,
    up to the cap, because Helm takes the last of several; a second one ends the scan (it is refused)."""
    found: List[Optional[bytes]] = []
    with gzip.open(path, "rb") as gz:
        reader = TarReader(_Unpacked(gz))
        member = reader.next()
        while member is not None and len(found) < 2:
            if member.path.count("/") == 1 and member.path.endswith("/Chart.yaml"):
                small = member.is_regular and member.size <= LIMITS.chart_yaml_bytes
                found.append(b"".join(reader.chunks()) if small else None)
            member = reader.next()
    return found


def _helmignore(root: str) -> List[str]:
    path = os.path.join(root, ".helmignore")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


def _ignored(rel: str, patterns: List[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        pat = pattern.rstrip("/")
        if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat) or rel.startswith(pat + "/"):
            return True
    return False


def package_chart(root: str, epoch: int, where: str) -> bytes:
    """A chart folder as a deterministic .tgz: same files, same bytes, wherever and whenever it is built."""
    with open(os.path.join(root, "Chart.yaml"), "rb") as fh:
        meta = yaml.safe_load(fh.read(LIMITS.chart_yaml_bytes))
    name = str((meta or {}).get("name") or "")
    if not name:
        raise InvalidInput("%s: Chart.yaml has no name" % where)
    patterns = _helmignore(root)
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for n in names:
            full = os.path.join(folder, n)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == ".helmignore" or _ignored(rel, patterns):
                continue
            if os.path.islink(full):
                raise InvalidInput("%s: the chart folder holds a symbolic link (%s); charts are packaged from regular "
                                   "files" % (where, rel))
            files.append(rel)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        for rel in sorted(files, key=lambda p: p.encode()):
            full = os.path.join(root, rel)
            with open(full, "rb") as fh:
                data = fh.read()
            executable = bool(os.stat(full).st_mode & 0o111)
            gz.write(member_header("%s/%s" % (name, rel), len(data), epoch, executable))
            gz.write(data + b"\0" * (-len(data) % BLOCK))
        gz.write(b"\0" * (2 * BLOCK))
    return raw.getvalue()


def fetch_charts(entries: Sequence[Dict[str, Any]], where: Sequence[str], fetcher: ChartFetcher, base: str
                 ) -> List[PulledChart]:
    charts: List[PulledChart] = []
    seen: Dict[str, str] = {}
    for entry, w in zip(entries, where):
        if entry.get("path"):
            chart = fetcher.from_path(entry, w, base)
        elif entry.get("ref"):
            chart = fetcher.from_oci(entry, w)
        else:
            chart = fetcher.from_repo(entry, w)
        if chart.name in seen:
            raise InvalidInput("%s: the chart %s is listed twice (also at %s)" % (w, chart.name, seen[chart.name]))
        seen[chart.name] = w
        if entry.get("values"):
            chart.set_values(values_json(os.path.join(base, entry["values"]), w))
        charts.append(chart)
    return charts


def values_json(path: str, where: str) -> bytes:
    """A chart's base values (the seed's settings), stored as canonical JSON so the stdlib installer can edit it."""
    try:
        with open(path, "rb") as fh:
            doc = yaml.safe_load(fh.read())
    except FileNotFoundError as exc:
        raise InvalidInput("%s: the values file %s does not exist" % (where, path)) from exc
    except yaml.YAMLError as exc:
        raise InvalidInput("%s: the values file %s is not valid YAML (%s)" % (where, path, exc)) from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InvalidInput("%s: the values file %s is not a mapping" % (where, path))
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()

