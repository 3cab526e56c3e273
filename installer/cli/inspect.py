"""Show what an archive claims, reading only its head."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from installer.cli.options import TRUST_OPT, Command, Opt
from installer.format.model import BundleHead, Image, Json
from installer.format.oci import kind_of
from installer.format.tarstream import TarReader
from installer.format.zstd import open_decompressed
from installer.kit.layout import resolve_keys
from installer.trust.verify import READ_CHUNK, TooLarge, open_archive, read_head


# Unverified, inspect reads at most this much of SHA256SUMS, bundle.json or DELTA.json. An unsigned head
# costs an attacker nothing to inflate (64 MiB of JSON compresses to a few KB) while parsing it costs
# many times its size (1.75 GB for a 64 MiB bundle.json); a real bundle.json of thousands of files is
# well under this. A head signed by a trusted key is read within the format's own caps.
INSPECT_UNVERIFIED_CAP = 4 * 1024 * 1024
_INSPECT_FIELDS = ("name", "version", "created", "tool", "total_size", "members", "files", "tenants", "images",
                   "charts")


@dataclass(frozen=True)
class InspectReport:
    """What an archive's head claims. ``signer`` (a fingerprint) is None when no trusted key signed it: then
    everything else is only what the archive says."""

    signer: Optional[str]
    bundle_id: str                 # "" when SHA256SUMS was not read
    meta: Optional[BundleHead]     # None when bundle.json was too large to read unverified
    too_large: Tuple[TooLarge, ...]

    @property
    def verified(self) -> bool:
        return self.signer is not None


def run_inspect(archive: str, trust: Sequence[str] = (), **_: Any) -> InspectReport:
    """Reads the first three members only; without a trusted signature everything is UNVERIFIED."""
    keys = resolve_keys(trust, None) if trust else []
    with open_archive(archive) as fh:
        stream = open_decompressed(fh)
        try:
            head = read_head(TarReader(stream, READ_CHUNK), keys, require_trust=False,
                             unverified_cap=INSPECT_UNVERIFIED_CAP)
        finally:
            stream.close()
    return InspectReport(head.signer.fingerprint if head.signer else None, head.bundle_id, head.meta,
                         head.too_large)


def json_inspect(r: InspectReport) -> Dict[str, Json]:
    raw = r.meta.to_dict() if r.meta else {}
    result = {
        "verified": r.verified,
        "status": "signature verified" if r.verified else "UNVERIFIED",
        "signer": r.signer,
        "bundle_id": r.bundle_id or None,
        "too_large": [{"member": t.member, "size": t.size, "cap": t.cap} for t in r.too_large],
        "unverified_cap": INSPECT_UNVERIFIED_CAP,
        "lock": raw.get("lock"), "mirrors": raw.get("mirrors", []) if raw else None,
    }
    result.update((key, raw.get(key)) for key in _INSPECT_FIELDS)
    return result


def _got(obj: Json, key: str, default: Json = "?") -> Json:
    """A field of an unverified record that may be missing or of another type (only shown, never used)."""
    return obj.get(key, default) if isinstance(obj, dict) else default


def _inspect_images(meta: BundleHead) -> List[str]:
    lines = []
    for model, image in ((i, i.to_dict()) for i in meta.images):
        platforms = _got(image, "platforms")
        listed = platforms if isinstance(platforms, list) else [platforms]
        platforms = "all platforms" if platforms == "all" else ", ".join(str(p) for p in listed)
        lines.append("image %s" % image["ref"])
        lines.append("  %s  %s (%s%s; %s)" % (image["digest"], kind_of(image["media_type"]),
                                               platforms, ", derived index" if image["derived"] else "",
                                               "from %s" % _got(image, "fetched_from")))
        lines += image_extras(model)
    return lines


def image_extras(image: Image) -> List[str]:
    """What travels beside an image's graph, one line each: upstream signatures checked at build time, carried
    referrers, foreign layers left out (inspect and verify show them)."""
    lines = []
    for g in image.signatures:
        lines.append("  signed by %s (%s, %s): cosign signature of %s %s" % (
            g.key, g.algorithm, g.key_file if isinstance(g.key_file, str) else "signed-by", g.digest,
            "carried as %s" % g.signature if g.signature else "checked at build time (not carried: its subject is "
            "the upstream index, of which a subset is kept)"))
    for r in image.referrers:
        how = "tag %s" % r.tag if r.tag else "found by %s" % (r.found if isinstance(r.found, str) else "?")
        kind = "%s %s" % (r.kind, r.artifact_type) if isinstance(r.artifact_type, str) else r.kind
        lines.append("  referrer %s  %s of %s (%s)" % (r.digest, kind, r.subject, how))
    for layer in image.skipped_layers:
        urls = layer.urls if isinstance(layer.urls, list) else []
        lines.append("  foreign layer %s (%d bytes) not carried: the site fetches it from %s"
                     % (layer.digest, layer.size, ", ".join(str(u) for u in urls[:2]) or "its URLs"))
    return lines


def text_inspect(r: InspectReport) -> List[str]:
    lines = []
    if not r.verified:
        lines.append("UNVERIFIED: no trusted key signed this bundle; everything below is only what it claims")
    else:
        lines.append("signature verified: signed by %s (payload not read; run verify for every checksum)" % r.signer)
    for big in r.too_large:
        lines.append("%s is %d bytes, too large to show unverified (inspect reads at most %d bytes of an unsigned "
                     "head; pass --trust KEY, or run verify)" % (big.member, big.size, big.cap))
    meta = r.meta
    if meta is not None:
        lines.append("%s %s  created %s  by %s %s"
                     % (meta.name, meta.version, meta.created, meta.tool.name, meta.tool.version))
    if r.bundle_id:
        lines.append("bundle_id %s" % r.bundle_id)
    if meta is None:
        return lines
    lines.append("bundle.json and %d payload files, %d bytes:" % (len(meta.members), meta.total_size))
    blobs = [m for m in meta.members if m.path.startswith("images/blobs/")]
    for m in meta.members:
        if not m.path.startswith("images/blobs/"):
            lines.append("  %12d  %s%s" % (m.size, m.path, "  (executable)" if m.executable else ""))
    if blobs:
        lines.append("  %12d  images/blobs/sha256/ (%d blobs)" % (sum(m.size for m in blobs), len(blobs)))
    lines += _inspect_images(meta)
    for t in meta.tenants:  # by component
        tenant = t.to_dict()
        lines.append("tenant overrides for %s: %s (from %s)" % (t.component, _got(tenant, "path"),
                                                               _got(tenant, "source")))
    return lines


COMMANDS = [Command("inspect", "show what an archive holds, reading only its first three members",
            [Opt("archive", metavar="ARCHIVE"), TRUST_OPT], run_inspect, text_inspect, json_inspect)]
