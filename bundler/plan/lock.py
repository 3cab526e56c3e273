"""Lock files: `<stem>.lock.json` beside the manifest pins every resolution (README "Using it").

`lock` resolves each image reference to the digest its tag points at now, each chart to its archive's
digest (the repository index's for HTTP charts, the manifest's for OCI charts, the package's for local
ones) and each file to its sha256. `build` then fetches exactly those digests even if a tag moved.
With `--locked` any missing, stale or different entry is exit 5, every problem listed; `--ignore-lock`
builds from the manifest alone and says so in bundle.json. Lock files are never written by hand.
"""

import hashlib
import json
import os
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from installer.errors import ContentMismatch, InvalidInput, UsageError
from installer.fsutil import write_atomic
from installer.format.meta import canonical_json
from installer.format.model import Image, Referrer, document
from installer.format.reference import Reference, parse, strict_digest, strict_hex

from bundler.plan.manifest import Manifest
from bundler.plan.schemas import validator

LockDoc = Dict[str, Any]  # a lock file, as lock.schema.json and _digest_problems checked it


class LockedImage(Protocol):
    """What the lock records of a pulled image (bundler.pull.images.PulledImage, a layer above)."""

    @property
    def ref(self) -> Reference: ...

    @property
    def entry(self) -> Image: ...

    @property
    def resolved_digest(self) -> str: ...


class LockedChart(Protocol):
    """What the lock records of a pulled chart (bundler.pull.charts.PulledChart, a layer above)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def lock_digest(self) -> str: ...


def lock_path(manifest_path: str) -> str:
    stem = os.path.splitext(os.path.basename(manifest_path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(manifest_path)), stem + ".lock.json")


def manifest_sha256(manifest_path: str) -> str:
    with open(manifest_path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def load_lock(path: str) -> Optional[LockDoc]:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc: LockDoc = json.load(fh)  # an object once the schema below has passed
    except ValueError as exc:
        raise InvalidInput("the lock file %s is not JSON; regenerate it with `offline-bundle lock`" % path) from exc
    errors = [e.message for e in validator("lock.schema.json").iter_errors(doc)] or _digest_problems(doc)
    if errors:
        raise InvalidInput("the lock file %s is not valid; regenerate it with `offline-bundle lock`" % path, errors)
    return doc


def _digest_problems(doc: LockDoc) -> List[str]:
    """Every digest re-checked in code, whatever the schema's patterns allow: pins become cache paths."""
    checks: List[Tuple[Callable[[object, str], str], str, object]] = [
        (strict_hex, "manifest_sha256", doc["manifest_sha256"])]
    checks += [(strict_digest, "images[%s].digest" % ref, e["digest"]) for ref, e in doc["images"].items()]
    problems = []
    for ref, e in doc["images"].items():
        where = document("the lock file").key("images").key(ref).key("referrers")
        for j, r in enumerate(e.get("referrers", [])):
            try:  # the model's own checks: strict digests, kinds, cosign tags of their very subject
                Referrer.from_dict(r, where.item(j))
            except InvalidInput as exc:
                problems.append(exc.message)
    checks += [(strict_digest, "charts[%s].digest" % name, e["digest"]) for name, e in doc["charts"].items()]
    checks += [(strict_hex, "files[%s]" % target, value) for target, value in doc["files"].items()]
    for check, key, value in checks:
        try:
            check(value, key)
        except InvalidInput as exc:
            problems.append(exc.message)
    return problems


class LockCheck:
    """Applies a lock during a build and collects what does not match."""

    def __init__(self, manifest: Manifest, mode: str) -> None:
        if mode not in ("default", "locked", "ignore"):
            raise UsageError("--locked and --ignore-lock cannot be used together")
        self.manifest = manifest
        self.mode = mode
        self.path = lock_path(manifest.path)
        self.lock: Optional[LockDoc] = None if mode == "ignore" else load_lock(self.path)
        self.problems: List[str] = []
        self.warnings: List[str] = []
        if mode == "locked" and self.lock is None:
            raise ContentMismatch("--locked: there is no lock file %s; run `offline-bundle lock` first" % self.path)
        self.stale = bool(self.lock and self.lock["manifest_sha256"] != manifest_sha256(manifest.path))
        if self.stale:
            self._note("the lock file %s was made for another version of the manifest (stale)" % self.path)

    def _note(self, message: str) -> None:
        (self.problems if self.mode == "locked" else self.warnings).append(message)

    def image_pin(self, ref_text: str) -> Optional[str]:
        if not self.lock:
            return None
        entry = self.lock["images"].get(str(parse(ref_text)))
        if entry is None:
            self._note("%s is not in the lock file" % ref_text)
            return None
        digest: str = entry["digest"]  # a strict digest: load_lock checked it
        return digest

    def referrer_pins(self, ref_text: str) -> Optional[List[Referrer]]:
        """The referrers the lock pins for this image (None: the lock has none to say, so they are looked for)."""
        entry = self.lock["images"].get(str(parse(ref_text))) if self.lock else None
        if entry is None or "referrers" not in entry:
            return None
        where = document("the lock file").key("images").key(str(parse(ref_text))).key("referrers")
        return [Referrer.from_dict(r, where.item(j)) for j, r in enumerate(entry["referrers"])]

    def referrer_missing(self, ref_text: str, digest: str, why: str) -> None:
        self._note("%s: the referrer %s the lock pins %s" % (ref_text, digest, why))

    def tag_moved(self, ref_text: str, now: Optional[str], pinned: str) -> None:
        if now is not None and now != pinned:
            self._note("%s now points at %s; the lock pins %s" % (ref_text, now, pinned))

    def chart(self, name: str, version: str, digest: str) -> None:
        if not self.lock:
            return
        entry = self.lock["charts"].get(name)
        if entry is None:
            self._note("chart %s is not in the lock file" % name)
        elif entry["version"] != version or entry["digest"] != digest:
            # A pin that differs from what is served is exit 5 even without --locked.
            self.problems.append("chart %s %s is %s; the lock pins %s %s"
                                 % (name, version, digest, entry["version"], entry["digest"]))

    def file(self, target: str, sha256: str) -> None:
        if not self.lock:
            return
        pinned = self.lock["files"].get(target)
        if pinned is None:
            self._note("%s is not in the lock file" % target)
        elif pinned != sha256:
            self._note("%s has changed since the lock file was made" % target)

    def finish(self) -> Dict[str, str]:
        if self.problems:
            raise ContentMismatch("the build does not match the lock file %s" % self.path, self.problems)
        if self.mode == "ignore":
            return {"status": "ignored"}
        if not self.lock:
            return {"status": "none"}
        with open(self.path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        return {"status": "stale" if self.stale or self.warnings else "used", "sha256": digest}


def write_lock(manifest: Manifest, images: Sequence[LockedImage], charts: Sequence[LockedChart],
               files: Dict[str, str]) -> Dict[str, Any]:
    doc: LockDoc = {
        "manifest_sha256": manifest_sha256(manifest.path),
        "images": {str(i.ref): _locked_image(i) for i in images},
        "charts": {c.name: {"version": c.version, "digest": c.lock_digest} for c in charts},
        "files": files,
    }
    path = lock_path(manifest.path)
    write_atomic(path, canonical_json(doc))  # a random temp name, O_EXCL|O_NOFOLLOW: no planted link is followed
    return {"lock": path, "images": len(doc["images"]), "charts": len(doc["charts"]), "files": len(doc["files"])}


def _locked_image(image: LockedImage) -> Dict[str, Any]:
    out: Dict[str, Any] = {"digest": image.resolved_digest, "platforms": image.entry.platforms}
    if image.entry.referrers:
        out["referrers"] = [r.to_dict() for r in image.entry.referrers]
    return out
