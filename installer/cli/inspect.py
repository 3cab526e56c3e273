"""Show what an archive claims, reading only its head."""

from typing import List, Sequence

from installer.cli.options import TRUST_OPT, Command, Opt
from installer.format.oci import kind_of
from installer.format.tarstream import TarReader
from installer.format.zstd import open_decompressed
from installer.kit.layout import resolve_keys
from installer.trust.verify import READ_CHUNK, open_archive, read_head


# Unverified, inspect reads at most this much of SHA256SUMS, bundle.json or DELTA.json. An unsigned head
# costs an attacker nothing to inflate (64 MiB of JSON compresses to a few KB) while parsing it costs
# many times its size (1.75 GB for a 64 MiB bundle.json); a real bundle.json of thousands of files is
# well under this. A head signed by a trusted key is read within the format's own caps.
INSPECT_UNVERIFIED_CAP = 4 * 1024 * 1024
_INSPECT_FIELDS = ("name", "version", "created", "tool", "total_size", "members", "files", "tenants", "images",
                   "charts")


def run_inspect(archive: str, trust: Sequence[str] = (), **_) -> dict:
    """Reads the first three members only; without a trusted signature everything is UNVERIFIED."""
    keys = resolve_keys(trust, None) if trust else []
    with open_archive(archive) as fh:
        stream = open_decompressed(fh)
        try:
            v = read_head(TarReader(stream, READ_CHUNK), keys, require_trust=False,
                          unverified_cap=INSPECT_UNVERIFIED_CAP)
        finally:
            stream.close()
    raw = v.meta.to_dict() if v.meta else {}
    result = {
        "verified": v.signer is not None,
        "status": "signature verified" if v.signer else "UNVERIFIED",
        "signer": v.signer.fingerprint if v.signer else None,
        "bundle_id": v.bundle_id or None,
        "too_large": v.too_large, "unverified_cap": INSPECT_UNVERIFIED_CAP,
        "lock": raw.get("lock"), "mirrors": raw.get("mirrors", []) if raw else None,
    }
    result.update((key, raw.get(key)) for key in _INSPECT_FIELDS)
    return result


def _got(obj, key: str, default="?"):
    """A field of an unverified record that may be missing or of another type (only shown, never used)."""
    return obj.get(key, default) if isinstance(obj, dict) else default


def _inspect_images(r: dict) -> List[str]:
    lines = []
    for image in r["images"]:
        platforms = _got(image, "platforms")
        listed = platforms if isinstance(platforms, list) else [platforms]
        platforms = "all platforms" if platforms == "all" else ", ".join(str(p) for p in listed)
        lines.append("image %s" % image["ref"])
        lines.append("  %s  %s (%s%s; %s)" % (image["digest"], kind_of(image["media_type"]),
                                               platforms, ", derived index" if image["derived"] else "",
                                               "from %s" % _got(image, "fetched_from")))
    return lines


def text_inspect(r: dict) -> List[str]:
    lines = []
    if not r["verified"]:
        lines.append("UNVERIFIED: no trusted key signed this bundle; everything below is only what it claims")
    else:
        lines.append("signature verified: signed by %s (payload not read; run verify for every checksum)" % r["signer"])
    for big in r.get("too_large", []):
        lines.append("%s is %d bytes, too large to show unverified (inspect reads at most %d bytes of an unsigned "
                     "head; pass --trust KEY, or run verify)" % (big["member"], big["size"], big["cap"]))
    if r["name"] is not None:
        tool = r["tool"]
        lines.append("%s %s  created %s  by %s %s"
                     % (r["name"], r["version"], r["created"], tool["name"], tool["version"]))
    if r["bundle_id"]:
        lines.append("bundle_id %s" % r["bundle_id"])
    if r["name"] is None:
        return lines
    lines.append("bundle.json and %d payload files, %d bytes:" % (len(r["members"]), r["total_size"]))
    blobs = [m for m in r["members"] if m["path"].startswith("images/blobs/")]
    for m in r["members"]:
        if not m["path"].startswith("images/blobs/"):
            lines.append("  %12d  %s%s" % (m["size"], m["path"], "  (executable)" if m.get("executable") else ""))
    if blobs:
        lines.append("  %12d  images/blobs/sha256/ (%d blobs)" % (sum(m["size"] for m in blobs), len(blobs)))
    lines += _inspect_images(r)
    for component, t in sorted(r["tenants"].items()):
        lines.append("tenant overrides for %s: %s (from %s)" % (component, _got(t, "path"), _got(t, "source")))
    return lines


COMMANDS = [Command("inspect", "show what an archive holds, reading only its first three members",
            [Opt("archive", metavar="ARCHIVE"), TRUST_OPT], run_inspect, text_inspect)]
