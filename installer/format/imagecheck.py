"""Step (5) for images: bundle.json, images/index.json and the manifests in the stream agree.

bundle.json is authenticated, so it names which blobs are manifests; those few small members are
kept in memory as they stream past, and once the stream is complete every reference, digest,
size and child blob is checked. A bundle whose image graph has a hole is refused before promotion.
"""

import hashlib
import json
from typing import Any, Dict, List, Optional

from installer.errors import ContentMismatch, InvalidInput
from installer.fsutil import read_installed
from installer.format.model import BundleHead
from installer.format.oci import MANIFEST_TYPES, MAX_MANIFEST_BYTES, MAX_PAYLOAD_BYTES, REF_NAME, parse_manifest
from installer.format.paths import BLOB_PREFIX, INDEX_PATH, LAYOUT_PATH, blob_path

MAX_INDEX_BYTES = 16 * 1024 * 1024


MAX_SMALL_BLOB = 16 * 1024 * 1024  # manifests (4 MiB at most) and image configs


def read_blob(tree: str, digest: str, cap: int = MAX_SMALL_BLOB) -> bytes:
    """A small blob (a manifest, a config) of an installed version, read without following a link and
    re-hashed: what is pushed or loaded from the kit is what was verified, or exit 5."""
    data = read_installed(tree, blob_path(digest), cap)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ContentMismatch("%s in %s no longer has its sha256; the installed version is damaged (see "
                              "offline-bundle verify --kit)" % (blob_path(digest), tree))
    return data


class ImageGraph:
    def __init__(self, meta: BundleHead, sums: Optional[Dict[str, str]] = None) -> None:
        self.meta = meta
        self.sums = sums or {}
        self.manifest_digests = set()
        for image in meta.images:
            self.manifest_digests.add(image.digest)
            self.manifest_digests.update(m.digest for m in image.manifests)
            self.manifest_digests.update(r.digest for r in image.referrers)
        self.manifest_digests.update(c.oci.digest for c in meta.charts)
        # the cosign payloads that verified at build time: small, kept to check the signatures again (check())
        self.payloads = {g.payload for i in meta.images for g in i.signatures if g.payload is not None}
        self.captured: Dict[str, bytes] = {}

    def wants(self, path: str) -> bool:
        if path == INDEX_PATH:
            return True
        if not path.startswith(BLOB_PREFIX):
            return False
        digest = "sha256:" + path[len(BLOB_PREFIX):]
        return digest in self.manifest_digests or digest in self.payloads

    def cap(self, path: str) -> int:
        if path == INDEX_PATH:
            return MAX_INDEX_BYTES
        digest = "sha256:" + path[len(BLOB_PREFIX):]
        return MAX_MANIFEST_BYTES if digest in self.manifest_digests else MAX_PAYLOAD_BYTES

    def feed(self, path: str, data: bytes) -> None:
        self.captured[path] = data

    def check(self) -> None:
        members = self.meta.sizes
        has_layout = any(p.startswith("images/") for p in members)
        if not self.meta.images and not self.meta.charts:
            if has_layout:
                raise ContentMismatch("the bundle carries images/ but bundle.json lists no images")
            return
        problems: List[str] = []
        for required in (INDEX_PATH, LAYOUT_PATH):
            if required not in members:
                problems.append("%s is missing" % required)
        if problems:
            raise ContentMismatch("the image layout is incomplete", problems)
        index = self._index()
        listed = {i.ref: i for i in self.meta.images}
        for ref in sorted(set(index) ^ set(listed)):
            where = "images/index.json" if ref in index else "bundle.json"
            problems.append("%s is only in %s" % (ref, where))
        for ref in sorted(set(index) & set(listed)):
            entry, image = index[ref], listed[ref]
            if ((entry.get("digest"), entry.get("size"), entry.get("mediaType"))
                    != (image.digest, image.size, image.media_type)):
                problems.append("%s: images/index.json says %s, bundle.json says %s"
                                % (ref, entry.get("digest"), image.digest))
        for image in self.meta.images:
            skipped = {s.digest: s.size for s in image.skipped_layers}
            problems += self._closure(image.digest, image.size, image.media_type, image.ref, skipped=skipped)
            for m in image.manifests:
                if blob_path(m.digest) not in members:
                    problems.append("%s: manifest %s is missing" % (image.ref, m.digest))
            for r in image.referrers:
                what = "%s: referrer %s" % (image.ref, r.digest)
                if r.media_type not in MANIFEST_TYPES:
                    problems.append("%s is a %s, not an image manifest" % (what, r.media_type))
                    continue
                problems += self._closure(r.digest, r.size, r.media_type, what)
        for chart in self.meta.charts:
            what = "chart %s %s" % (chart.name, chart.version)
            problems += self._closure(chart.oci.digest, chart.oci.size, chart.oci.media_type, what)
            if chart.path not in members:
                problems.append("%s: %s is missing" % (what, chart.path))
            elif self.sums.get(chart.path) != chart.sha256:
                problems.append("%s: %s is not the archive bundle.json names" % (what, chart.path))
            elif blob_path("sha256:" + chart.sha256) not in members:
                problems.append("%s: its OCI artifact does not carry %s" % (what, chart.path))
            if chart.values and chart.values not in members:
                problems.append("%s: %s is missing" % (what, chart.values))
        if problems:
            raise ContentMismatch("bundle.json and the image layout disagree", sorted(set(problems)))

    def _index(self) -> Dict[str, Dict[str, Any]]:
        try:
            doc = json.loads(self.captured[INDEX_PATH])
            entries = doc["manifests"]
            assert isinstance(entries, list)
        except (KeyError, ValueError, AssertionError, TypeError, RecursionError) as exc:
            raise InvalidInput("images/index.json is not an OCI image index") from exc
        out = {}
        for entry in entries:
            annotations = entry.get("annotations") if isinstance(entry, dict) else None
            ref = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
            if not isinstance(ref, str):
                raise ContentMismatch("images/index.json has an entry without %s" % REF_NAME)
            if ref in out:
                raise ContentMismatch("images/index.json names %s twice" % ref)
            out[ref] = entry
        return out

    def _closure(self, digest: str, size: int, media_type: str, ref: str, depth: int = 0,
                 skipped: Optional[Dict[str, int]] = None) -> List[str]:
        """Every blob reachable from ``digest`` is a member of the declared size, but the foreign layers bundle.json
        lists as left out (``skipped``: digest -> size)."""
        skipped = skipped or {}
        path = blob_path(digest)
        members = self.meta.sizes
        if path not in members:
            return ["%s: %s is missing" % (ref, digest)]
        if members[path] != size:
            return ["%s: %s is %d bytes, its descriptor says %d" % (ref, digest, members[path], size)]
        data: Optional[bytes] = self.captured.get(path)
        if data is None:
            return ["%s: %s is not listed as a manifest in bundle.json" % (ref, digest)]
        config, children = parse_manifest(data, media_type, "%s (%s)" % (ref, digest))
        problems: List[str] = []
        if config is None:
            if depth:
                return ["%s: nested index %s" % (ref, digest)]
            for child in children:
                problems += self._closure(child.digest, child.size, child.media_type, ref, depth + 1, skipped)
            return problems
        for blob in [config] + children:
            bp = blob_path(blob.digest)
            if blob is not config and blob.foreign and skipped.get(blob.digest) == blob.size and bp not in members:
                continue  # a foreign layer the bundle says it leaves out (foreign-layers: skip)
            if bp not in members:
                problems.append("%s: blob %s is missing" % (ref, blob.digest))
            elif members[bp] != blob.size:
                problems.append("%s: blob %s is %d bytes, its descriptor says %d"
                                % (ref, blob.digest, members[bp], blob.size))
        return problems

