"""Verify an archive, or with --kit what is installed."""

import os
import re
from typing import List, Optional, Sequence, Tuple

from installer.cli.options import TRUST_OPT, Command, Opt
from installer.errors import UsageError
from installer.format.semver import is_semver
from installer.kit.layout import Kit, resolve_keys
from installer.trust.verify import verify_file


TARGET_RE = re.compile(r"([a-z0-9][a-z0-9-]{0,62})(?:@(.+))?")  # NAME[@VERSION], used with fullmatch


def run_verify(archive: Optional[str] = None, trust: Sequence[str] = (), kit: Optional[str] = None,
               quiet: bool = False, **_) -> dict:
    """An archive (signature, every checksum, structure), or with --kit and no archive (or NAME[@VERSION])
    the installed versions themselves, re-hashed against their signed SHA256SUMS and today's keys."""
    target = _kit_target(archive, kit)
    if target is not None:
        return verify_kit(kit, trust, *target)
    if archive is None:
        raise UsageError("name an ARCHIVE to verify, or give --kit DIR to verify what is installed there")
    k = Kit.existing(kit) if kit else None
    keys = resolve_keys(trust, k)
    index = None
    if k is not None:
        from installer.kit.deltaindex import KitIndex

        index = KitIndex(k)
    v = verify_file(archive, keys, show_progress=not quiet, kit_index=index)
    result = v.summary()
    result.update(archive=archive, checks={"signature": "ok", "bundle.json": "ok", "members": "ok",
                                           "structure": "ok", "sidecar": v.sidecar})
    return result


def _kit_target(arg: Optional[str], kit: Optional[str]) -> Optional[Tuple[Optional[str], Optional[str]]]:
    """(name, version) when the command verifies the kit itself: --kit with no archive, or with NAME[@VERSION]
    that is not a file or folder on disk (a bundle name has no '.', an archive's file name always has one)."""
    if not kit:
        return None
    if arg is None:
        return None, None
    match = TARGET_RE.fullmatch(arg)
    if match is None or os.path.lexists(arg):
        return None
    version = match.group(2)
    if version is not None and not is_semver(version):
        raise UsageError("%r: the version after @ is not SemVer" % arg)
    return match.group(1), version


def verify_kit(kit: str, trust: Sequence[str], name: Optional[str], version: Optional[str]) -> dict:
    from installer.kit.check import check_kit, summary_error

    k = Kit.existing(kit)
    checks = check_kit(k, resolve_keys(trust, k), name, version)
    if name and not checks:
        raise UsageError("%s%s is not installed in %s" % (name, "@" + version if version else "", kit))
    failure = summary_error(checks)
    if failure is not None:
        cls, sentence, lines = failure
        raise cls(sentence, lines)
    return {"kit": k.root, "versions": [c.to_json() for c in checks]}


def text_verify(r: dict) -> List[str]:
    if "versions" in r:
        return ["OK %s %s: every file matches its signed SHA256SUMS; signed by %s"
                % (c["name"], c["version"], c["signer"])
                for c in r["versions"]] or ["kit %s holds no bundles" % r["kit"]]
    delta = r.get("delta")
    extra = []
    if delta:
        extra = ["delta against %s: %d files (%d bytes) omitted, %d of them checked in the kit%s" % (
            ", ".join("%s %s" % (b["name"], b["version"]) for b in delta["base"]), delta["omitted"],
            delta["omitted_bytes"], delta["checked_in_kit"],
            "" if r["complete"] else "; complete: false (pass --kit DIR to check the rest)")]
    verdict = "OK" if r["complete"] else "INCOMPLETE (a delta: signature and carried files good)"
    return extra + ["%s %s %s: signature by %s; %d files (%d payload bytes) listed in SHA256SUMS" % (
                verdict, r["name"], r["version"], r["signer"], r["files"], r["total_size"]),
            "bundle_id %s" % r["bundle_id"],
            "archive sha256 %s (sidecar: %s)" % (r["archive_sha256"], r["sidecar"])]


COMMANDS = [Command("verify", "check an archive's signature, checksums and structure; with --kit and no archive (or "
                      "NAME[@VERSION]), re-check what is installed",
            [Opt("archive", metavar="[ARCHIVE|NAME[@VERSION]]"), TRUST_OPT,
             Opt("--kit", metavar="DIR", help="use this kit's trust store (and its files for deltas); without an "
                                               "archive, verify the kit's installed versions")],
            run_verify, text_verify)]
