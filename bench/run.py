#!/usr/bin/env python3
"""offline-bundle against the pipelines users would otherwise write (issue 7).

    .venv/bin/python bench/run.py [--size-mb 1500] [--repeat 3] [--double] [--out bench/latest.json]

Seeds a local registry (the "source", reached through --mirror docker.io=HOST) with a realistic image set,
then runs each of our operations and its baseline alternately, timing wall clock and sampling the peak RSS of
the whole process tree. Writes --out (JSON, every sample) and bench/RESULTS.md (medians, ratios, targets).
Everything runs on loopback, under one work folder that is removed on exit, Ctrl-C or SIGTERM.
See bench/README.md for what each line compares.
"""

import argparse
import datetime
import hashlib
import itertools
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

GENERATOR_VERSION = 1          # bump when the image set changes: invalidates --data-dir
MiB = 1 << 20
SAMPLE_INTERVAL = 0.05         # s between /proc polls for the process tree's RSS
SKOPEO_CACHE = "/var/lib/containers/cache"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")

# issue 7 item 2: ratios of medians (ours / baseline)
TARGETS = {
    "build": 1.0,
    "verify": 0.8,
    "install": 0.8,
    "install_push": 1.0,
    "warm_rebuild": 0.15,
}
RSS_LIMIT_MB = 200.0
RSS_FLAT_GROWTH = 0.10        # "flat": peak at 2X at most 10% above peak at X

OPS = ("build", "verify", "install", "install_push", "warm_rebuild", "delta")


class BenchError(Exception):
    """A clear, one-line reason the benchmark cannot go on."""


def log(msg: str) -> None:
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------------
# peak RSS of a whole process tree, from /proc

def _children_map() -> Dict[int, List[int]]:
    kids: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        try:
            kids.setdefault(int(fields[1]), []).append(int(name))
        except (IndexError, ValueError):
            continue
    return kids


def _children_file(pid: int) -> Optional[List[int]]:
    """Children from /proc/PID/task/*/children (CONFIG_PROC_CHILDREN); None when the kernel lacks it."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    out: List[int] = []
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as fh:
                out += [int(x) for x in fh.read().split()]
        except FileNotFoundError:
            if not os.path.exists("/proc/%d/task/%s" % (pid, tid)):
                continue
            return None
        except OSError:
            continue
    return out


HAVE_CHILDREN_FILE = _children_file(os.getpid()) is not None


def tree_pids(root: int) -> List[int]:
    if HAVE_CHILDREN_FILE:
        out, i = [root], 0
        while i < len(out):
            out += _children_file(out[i]) or []
            i += 1
        return out
    kids = _children_map()
    out, i = [root], 0
    while i < len(out):
        out += kids.get(out[i], [])
        i += 1
    return out


def rss_kb(pid: int) -> int:
    try:
        with open("/proc/%d/status" % pid, "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, a zombie, or a kernel thread


class TreeSampler(threading.Thread):
    """Polls the sum of VmRSS over a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.polls = 0
        self.max_procs = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = tree_pids(self.pid)
            total = sum(rss_kb(p) for p in pids)
            self.peak_kb = max(self.peak_kb, total)
            self.max_procs = max(self.max_procs, len(pids))
            self.polls += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ------------------------------------------------------------------------------------------------
# the work folder, child processes and registries: everything is undone on exit

class Workspace:
    def __init__(self, parent: Optional[str], keep: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ob-bench-", dir=parent))
        self.keep = keep
        self.registries: list = []
        self.current: Optional[subprocess.Popen] = None
        self.env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        docker_cfg = self.root / "docker-config"  # no credentials from the developer's ~/.docker
        docker_cfg.mkdir()
        (docker_cfg / "config.json").write_text("{}\n")
        self.env["DOCKER_CONFIG"] = str(docker_cfg)
        self.env.pop("SOURCE_DATE_EPOCH", None)
        self.env.pop("OFFLINE_BUNDLE_DEBUG", None)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def registry(self, accesslog: bool = False):
        from helpers.registry import start_registry
        base = self.path("registries")
        base.mkdir(exist_ok=True)
        reg = start_registry(base, kind="plain", accesslog=accesslog)
        self.registries.append(reg)
        return reg

    def drop_registry(self, reg) -> None:
        reg.stop()
        if reg in self.registries:
            self.registries.remove(reg)
        rmtree(reg.dir)

    def kill_current(self) -> None:
        proc = self.current
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)  # the child's own process group (start_new_session)
            except ProcessLookupError:
                return
            try:
                proc.wait(10)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        self.kill_current()
        for reg in list(self.registries):
            try:
                reg.stop()
            except Exception as exc:  # keep cleaning up
                log("could not stop registry %s: %s" % (reg, exc))
        self.registries = []
        if self.keep:
            log("work folder kept: %s" % self.root)
        else:
            rmtree(self.root)


def rmtree(path) -> None:
    """Remove a tree, including the kit's read-only (0555/0444) folders and files."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return

    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
            func(p)
        except FileNotFoundError:
            pass
    shutil.rmtree(path, onerror=fix)


def dir_size(path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(folder, f)).st_size
            except OSError:
                pass
    return total


class Measured:
    def __init__(self, wall: float, peak_kb: int, rc: int, polls: int, max_procs: int, stderr: str) -> None:
        self.wall, self.peak_kb, self.rc, self.polls, self.max_procs, self.stderr = wall, peak_kb, rc, polls, max_procs, stderr

    def to_json(self) -> dict:
        return {"wall_s": round(self.wall, 3), "peak_rss_mb": round(self.peak_kb / 1024, 1),
                "rss_polls": self.polls, "max_processes": self.max_procs}


def run_measured(ws: Workspace, label: str, argv: Sequence[str], cwd=None, check: bool = True) -> Measured:
    """Run argv in its own process group; wall clock and the tree's peak RSS. Flushes dirty pages first."""
    os.sync()  # the previous sample's write-back must not be billed to this one
    err_path = ws.path("logs", "%s.stderr" % label.replace(" ", "_").replace("/", "_"))
    err_path.parent.mkdir(exist_ok=True)
    with open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=ws.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        ws.current = proc
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            rc = proc.wait()
            wall = time.monotonic() - start
        finally:
            sampler.stop()
            ws.kill_current()
            ws.current = None
    text = err_path.read_text(errors="replace")
    m = Measured(wall, sampler.peak_kb, rc, sampler.polls, sampler.max_procs, text)
    if check and rc != 0:
        raise BenchError("%s failed (exit %d): %s\n  command: %s" % (label, rc, text.strip()[-1500:] or "(no stderr)",
                                                                      " ".join(map(str, argv))[:600]))
    return m


def run_quiet(ws: Workspace, argv: Sequence[str], cwd=None) -> str:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=ws.env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError("%s failed (exit %d): %s" % (" ".join(map(str, argv))[:300], proc.returncode,
                                                       (proc.stderr or proc.stdout).strip()[-1500:]))
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# the image set: gzip layers of random (incompressible) and text-like (about 2.3x) content

# key: (kind, fraction of --size-mb compressed). Fractions of the v1 set add up to 1.0.
LAYERS = {
    "base":         ("text", 0.14),    # shared by base-a and base-b
    "a-bin":        ("random", 0.10),
    "a-cfg":        ("text", 0.02),
    "b-lib":        ("text", 0.07),
    "b-bin":        ("random", 0.05),
    "m-amd64-bin":  ("random", 0.09),
    "m-amd64-lib":  ("text", 0.03),
    "m-arm64-bin":  ("random", 0.09),
    "m-arm64-lib":  ("text", 0.03),
    "big-model":    ("random", 0.12),  # one large file
    "big-etc":      ("text", 0.02),
    "c-base":       ("text", 0.05),
    "c-bin":        ("random", 0.04),
    "c-app-1.0":    ("text", 0.01),
    "c-app-1.1":    ("text", 0.01),    # only in the delta's v2 set
    "tools":        ("text", 0.06),
}
MANY = 24
for _i in range(MANY):
    LAYERS["many-%02d" % _i] = ("text" if _i % 2 else "random", 0.08 / MANY)

# The stack's four references (the default manifest's compose files name them, and install renders those
# files for the site) stand in for real images, plus three more.
IMAGES = [  # (repository under docker.io, tag, layers or {platform: layers})
    ("prom/prometheus", "v3.5.0", ["base", "a-bin", "a-cfg"]),
    ("grafana/tempo", "2.8.2", ["base", "b-lib", "b-bin"]),            # shares the base layer
    ("grafana/loki", "3.5.3", {"linux/amd64": ["m-amd64-lib", "m-amd64-bin"],   # the multi-arch index
                               "linux/arm64": ["m-arm64-lib", "m-arm64-bin"]}),
    ("otel/opentelemetry-collector-contrib", "0.130.0", ["big-etc", "big-model"]),
    ("bench/many", "1.0", ["many-%02d" % i for i in range(MANY)]),
    ("bench/app-c", "1.0", ["c-base", "c-bin", "c-app-1.0"]),
    ("bench/tools", "1.0", ["tools"]),
]
DELTA_IMAGE = ("bench/app-c", "1.1", ["c-base", "c-bin", "c-app-1.1"])  # one layer changed

_POOL: Optional[List[bytes]] = None


def text_pool() -> List[bytes]:
    """2048 blocks of 4 KiB of text-like lines (Zipf-distributed words, some numbers): gzip ~2.3x."""
    global _POOL
    if _POOL is None:
        r = random.Random(7)
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        words = ["".join(r.choice(letters[:r.randint(8, 26)]) for _ in range(r.randint(2, 9))) for _ in range(4000)]
        cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))
        blocks = []
        for _ in range(2048):
            lines, n = [], 0
            while n < 4096:
                line = " ".join(r.choices(words, cum_weights=cum, k=r.randint(3, 12)))
                if r.random() < 0.3:
                    line = "  %s: %d" % (line, r.randint(0, 99999))
                lines.append(line)
                n += len(line) + 1
            blocks.append(("\n".join(lines) + "\n").encode()[:4096])
        _POOL = blocks
    return _POOL


def content(kind: str, size: int, rng: random.Random):
    if kind == "random":
        left = size
        while left:
            n = min(MiB, left)
            yield rng.randbytes(n)
            left -= n
        return
    pool = text_pool()
    left = size
    while left:
        n = min(MiB, left)
        data = b"".join(pool[i] for i in rng.choices(range(len(pool)), k=(n + 4095) // 4096))
        yield data[:n]
        left -= n


def write_layer(blobs: Path, key: str, kind: str, target: int, seed: int) -> dict:
    """Stream a tar of several files through gzip into blobs/; stop adding files at ``target`` compressed bytes."""
    from helpers.images import _pad, _tar_header
    import tarfile

    rng = random.Random(seed)
    level = 1 if kind == "text" else 0  # random bytes do not compress: stored deflate blocks, as gzip -1 would
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip wrapper, mtime 0: deterministic
    tar_hash, gz_hash = hashlib.sha256(), hashlib.sha256()
    state = {"gz": 0}
    fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=str(blobs))
    with os.fdopen(fd, "wb", buffering=MiB) as out:
        def emit(data: bytes) -> None:
            tar_hash.update(data)
            z = comp.compress(data)
            if z:
                gz_hash.update(z)
                out.write(z)
                state["gz"] += len(z)
        top = ("opt/%s" if kind == "random" else "usr/share/%s") % key
        parts = top.split("/")
        for i in range(1, len(parts) + 1):
            emit(_tar_header("/".join(parts[:i]) + "/", 0, 0o755, tarfile.DIRTYPE))
        written = number = 0
        while True:
            if kind == "random":
                if written >= target:
                    break
                size = target - written if key == "big-model" else min(target - written, rng.randint(MiB, 24 * MiB))
            else:
                if state["gz"] >= target or (number and written * 2 >= target * 6):
                    break
                hi = max(64 * 1024, min(4 * MiB, target * 2))
                size = rng.randint(min(64 * 1024, hi), hi)
            name = "%s/f%04d.%s" % (top, number, "bin" if kind == "random" else "txt")
            emit(_tar_header(name, size, 0o755 if kind == "random" else 0o644))
            for chunk in content(kind, size, rng):
                emit(chunk)
            emit(_pad(size))
            written += size
            number += 1
        emit(b"\0" * 1024)
        tail = comp.flush()
        gz_hash.update(tail)
        out.write(tail)
        gz_size = state["gz"] + len(tail)
    os.replace(tmp, blobs / gz_hash.hexdigest())
    return {"digest": "sha256:" + gz_hash.hexdigest(), "size": gz_size, "diff_id": "sha256:" + tar_hash.hexdigest(),
            "kind": kind, "uncompressed": written}


def seed_images(ws: Workspace, size_mb: int, layout_dir: Path) -> dict:
    """Write every layer, config, manifest and index into one OCI layout (tags: <name>-<tag>)."""
    from concurrent.futures import ThreadPoolExecutor

    from helpers.images import MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST, Layout, \
        canonical_json, image_config

    lay = Layout(layout_dir)
    total = size_mb * MiB
    keys = sorted(LAYERS, key=lambda k: -LAYERS[k][1])
    infos: Dict[str, dict] = {}
    start = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 4)))
    try:
        futures = {k: pool.submit(write_layer, lay.blobs, k, LAYERS[k][0], max(4096, int(LAYERS[k][1] * total)),
                                  zlib.crc32(k.encode()) ^ size_mb) for k in keys}
        for k, f in futures.items():
            infos[k] = f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: only the layers being written finish
    log("layers written in %.0f s" % (time.monotonic() - start))

    def image(layers: List[str], plat: str) -> dict:
        os_, arch = plat.split("/")
        cfg = canonical_json(image_config((os_, arch), [infos[k]["diff_id"] for k in layers]))
        cd, cs = lay.add_blob(cfg)
        man = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
               "config": {"mediaType": MT_OCI_CONFIG, "digest": cd, "size": cs},
               "layers": [{"mediaType": MT_OCI_LAYER_GZIP, "digest": infos[k]["digest"], "size": infos[k]["size"]}
                          for k in layers]}
        md, ms = lay.add_blob(json.dumps(man, indent=2).encode())
        return {"mediaType": MT_OCI_MANIFEST, "digest": md, "size": ms,
                "platform": {"architecture": arch, "os": os_}}

    refs = []
    for repo, tag, spec in IMAGES + [DELTA_IMAGE]:
        if isinstance(spec, dict):
            children = [image(layers, plat) for plat, layers in spec.items()]
            raw = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": children}, indent=2).encode()
            d, s = lay.add_blob(raw)
            desc = {"mediaType": MT_OCI_INDEX, "digest": d, "size": s}
        else:
            desc = image(spec, "linux/amd64")
            desc.pop("platform")
        lay.tag("%s-%s" % (repo.split("/")[-1], tag), desc)
        refs.append({"repository": repo, "tag": tag, "digest": desc["digest"],
                     "layout_tag": "%s-%s" % (repo.split("/")[-1], tag), "v1": (repo, tag, spec) != DELTA_IMAGE})
    v1_layers = {k for _r, _t, spec in IMAGES
                 for k in (itertools.chain(*spec.values()) if isinstance(spec, dict) else spec)}
    return {
        "refs": refs,
        "layers": {k: {"kind": v["kind"], "size": v["size"], "digest": v["digest"]} for k, v in infos.items()},
        "v1_compressed_bytes": sum(infos[k]["size"] for k in v1_layers),
        "v1_random_bytes": sum(infos[k]["size"] for k in v1_layers if infos[k]["kind"] == "random"),
        "changed_layer": infos["c-app-1.1"]["digest"],
        "images": len(IMAGES),
    }


def seed_source(ws: Workspace, size_mb: int, data_dir: Optional[Path]):
    """A plain registry holding the image set; reused from --data-dir when it was made with the same size."""
    from helpers.images import push

    stamp = {"generator": GENERATOR_VERSION, "size_mb": size_mb}
    store = data_dir / ("source-%d" % size_mb) if data_dir else None
    if store is not None and (store / "seed.json").is_file():
        info = json.loads((store / "seed.json").read_text())
        if info.get("stamp") == stamp and (store / "registry").is_dir():
            reg = _registry_on(ws, store / "registry")
            log("reusing the image set in %s (%d MiB)" % (store, info["v1_compressed_bytes"] >> 20))
            return reg, info
        rmtree(store)
    log("seeding %d MiB of images (built once, reused by every repetition)" % size_mb)
    layout = ws.path("seed-layout-%d" % size_mb)
    info = seed_images(ws, size_mb, layout)
    if store is not None:
        (store / "registry").mkdir(parents=True)
        reg = _registry_on(ws, store / "registry")
    else:
        reg = ws.registry(accesslog=True)
    start = time.monotonic()
    for ref in info["refs"]:
        push(layout, ref["layout_tag"], reg, dest_ref="%s:%s" % (ref["repository"], ref["tag"]))
    log("pushed to the source registry %s in %.0f s" % (reg.host, time.monotonic() - start))
    rmtree(layout)
    info["stamp"] = stamp
    if store is not None:
        (store / "seed.json").write_text(json.dumps(info, indent=2))
    return reg, info


def _registry_on(ws: Workspace, storage: Path):
    """A registry (access log on) whose storage is a kept folder."""
    from helpers.registry import Registry
    base = ws.path("registries")
    base.mkdir(exist_ok=True)
    reg = Registry(base, kind="plain", accesslog=True)
    reg.data_dir.symlink_to(storage.resolve(), target_is_directory=True)
    ws.registries.append(reg)
    return reg.start()


def write_manifests(ws: Workspace, seed: dict) -> Dict[str, Path]:
    """The default manifest's files and tenants, with the local images instead of its own (no charts)."""
    import yaml

    folder = ws.path("manifest")
    shutil.copytree(ROOT / "manifests" / "telemetry-storage", folder / "telemetry-storage")
    default = yaml.safe_load((ROOT / "manifests" / "telemetry-storage.yaml").read_text())
    out = {}
    for version, delta in (("2026.11.0", False), ("2026.11.1", True)):
        doc = json.loads(json.dumps(default))
        doc["metadata"].update(name="bench-telemetry", version=version)
        images = []
        for ref in seed["refs"]:
            if ref["repository"] == DELTA_IMAGE[0]:
                if ref["tag"] != (DELTA_IMAGE[1] if delta else "1.0"):
                    continue
            elif not ref["v1"]:
                continue
            images.append({"ref": "docker.io/%s:%s" % (ref["repository"], ref["tag"])})
        doc["spec"]["images"] = images
        doc["spec"].pop("charts", None)
        path = folder / ("bench-%s.yaml" % version)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        out["v2" if delta else "v1"] = path
    return out


# ------------------------------------------------------------------------------------------------
# the operations and their baselines

class Suite:
    def __init__(self, ws: Workspace, args, size_mb: int, ops: Sequence[str], levels: Sequence[int] = (),
                 profile: Optional[str] = None) -> None:
        self.ws, self.args, self.size_mb, self.ops = ws, args, size_mb, list(ops)
        self.levels, self.profile_dir = list(levels), profile
        self.src = None
        self.ob = args.ob
        self.samples: Dict[str, Dict[str, list]] = {}
        self.checks: Dict[str, list] = {"warm_blob_fetches": [], "site_digests_agree": [], "cold_blob_fetches": [],
                                        "baseline_blob_fetches": []}
        self.extra: Dict[str, object] = {}

    # -- helpers
    def add(self, op: str, side: str, m: Measured, **extra) -> None:
        steps = script_steps(m.stderr)
        if steps:
            extra["steps"] = steps
        entry = m.to_json()
        entry.update(extra)
        self.samples.setdefault(op, {}).setdefault(side, []).append(entry)
        shown = dict(extra)
        if "steps" in shown:
            shown["steps"] = ",".join("%s:%.2f" % kv for kv in shown["steps"].items())
        log("  %-13s %-8s %7.2f s  peak RSS %6.1f MB%s" % (op, side, m.wall, m.peak_kb / 1024,
                                                         "".join("  %s=%s" % kv for kv in shown.items())))

    def skopeo_wrap(self, script: Path) -> List[str]:
        """bash SCRIPT in a private mount namespace with an empty tmpfs over skopeo's blob-info cache."""
        if self.args.private_cache:
            return ["unshare", "-m", "sh", "-c",
                    'mount -t tmpfs none %s && exec bash -euo pipefail "$0"' % SKOPEO_CACHE, str(script)]
        return ["bash", "-euo", "pipefail", str(script)]

    def script(self, name: str, steps: List[tuple]) -> Path:
        """A bash script of (label, command) steps; each step's wall time goes to stderr as '@@step LABEL T0 T1'."""
        path = self.ws.path("scripts", name + ".sh")
        path.parent.mkdir(exist_ok=True)
        body = []
        for label, cmd in steps:
            body += ["__t0=$EPOCHREALTIME", cmd, 'echo "@@step %s $__t0 $EPOCHREALTIME" >&2' % label]
        path.write_text("\n".join(body) + "\n")
        return path

    def ob_build(self, label: str, manifest: Path, out: Path, cache: Path, *extra) -> Measured:
        out.mkdir(parents=True, exist_ok=True)
        argv = [self.ob, "build", manifest, "--key", self.key, "--out", out, "--cache", cache,
                "--mirror", "docker.io=%s" % self.src.host, "--insecure-registry", self.src.host, "--quiet"] + list(extra)
        return run_measured(self.ws, label, argv)

    def archive_in(self, out: Path, delta: bool = False) -> Path:
        pattern = "*.delta.bundle.tar.zst" if delta else "*[0-9].bundle.tar.zst"
        found = sorted(out.glob(pattern))
        if len(found) != 1:
            raise BenchError("expected one archive in %s, found %s" % (out, [p.name for p in found]))
        return found[0]

    def extract_lines(self, archive: Path, dest: Path) -> List[str]:
        """The by-hand check: sidecar, then zstd -dc | tar -x, then sha256sum -c inside."""
        return [("sha256sum-sidecar", "cd %s && sha256sum -c --strict --quiet %s" % (q(archive.parent),
                                                                                    q(archive.name + ".sha256"))),
                ("zstd|tar", "mkdir -p %s && zstd -dcq %s | tar -x -C %s" % (q(dest), q(archive.name), q(dest))),
                ("sha256sum-SHA256SUMS", "cd %s && sha256sum -c --strict --quiet SHA256SUMS" % q(dest))]

    # -- setup
    def setup(self) -> None:
        ws = self.ws
        self.src, self.seed = seed_source(ws, self.size_mb, self.args.data_dir)
        self.manifests = write_manifests(ws, self.seed)
        keys = ws.path("keys")
        if not (keys / "bundle.key").exists():
            run_quiet(ws, [self.ob, "keygen", "--out", keys, "--quiet"])
        self.key, self.pub = keys / "bundle.key", keys / "bundle.pub"
        self.v1_refs = [r for r in self.seed["refs"] if r["v1"]]

    # -- one repetition of every operation, ours then the baseline
    def repetition(self, rep: int) -> None:
        ws, n = self.ws, self.size_mb
        d = ws.path("rep-%d-%d" % (n, rep))
        d.mkdir()
        cache, out = d / "cache", d / "out"
        need_archive = any(op in self.ops for op in ("verify", "install", "install_push", "warm_rebuild", "delta"))

        # build, cold: a fresh --cache; the baseline: skopeo copy --all per image, tar | zstd -T0, sha256sum
        if "build" in self.ops or need_archive:
            mark = self.src.mark()
            m = self.ob_build("build-ours-%d-%d" % (n, rep), self.manifests["v1"], out, cache)
            fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
            self.checks["cold_blob_fetches"].append(fetched)
            archive = self.archive_in(out)
            self.add("build", "ours", m, archive_mb=round(archive.stat().st_size / MiB, 1), blob_fetches=fetched)
        if "build" in self.ops:
            self.baseline_build(d, rep)

        # warm rebuild: the same command again (same --cache, same --out), nothing changed upstream;
        # the registry must serve no blob, and the archive must come out byte for byte the same
        if "warm_rebuild" in self.ops:
            before = sidecar(archive)
            mark = self.src.mark()
            m = self.ob_build("warm-ours-%d-%d" % (n, rep), self.manifests["v1"], out, cache)
            fetched = self.src.blob_fetches(self.src.requests_since(mark))
            self.checks["warm_blob_fetches"].append(len(fetched))
            same = sidecar(self.archive_in(out)) == before
            self.checks.setdefault("warm_same_bytes", []).append(same)
            self.add("warm_rebuild", "ours", m, blob_fetches=len(fetched), same_bytes=same)

        # delta after one layer changed vs the full build of that version, both from a copy of the warm cache
        if "delta" in self.ops:
            for side in ("ours", "full"):
                c = d / ("cache-" + side)
                subprocess.run(["cp", "-al", str(cache), str(c)], check=True)
                o = d / ("out-" + side)
                extra = ["--delta-from", str(archive)] if side == "ours" else []
                mark = self.src.mark()
                m = self.ob_build("delta-%s-%d-%d" % (side, n, rep), self.manifests["v2"], o, c, *extra)
                fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
                made = self.archive_in(o, delta=side == "ours")
                self.add("delta", "ours" if side == "ours" else "baseline", m,
                         archive_mb=round(made.stat().st_size / MiB, 2), blob_fetches=fetched)
                rmtree(c)
                rmtree(o)

        if "verify" in self.ops:
            m = run_measured(ws, "verify-ours-%d-%d" % (n, rep),
                             [self.ob, "verify", archive, "--trust", self.pub, "--quiet"])
            self.add("verify", "ours", m)
            x = d / "x-verify"
            m = run_measured(ws, "verify-base-%d-%d" % (n, rep),
                             ["bash", "-euo", "pipefail", self.script("verify", self.extract_lines(archive, x))])
            self.add("verify", "baseline", m)
            rmtree(x)

        if "install" in self.ops:
            kit = d / "kit"
            m = run_measured(ws, "install-ours-%d-%d" % (n, rep),
                             [self.ob, "install", archive, "--kit", kit, "--trust", self.pub, "--quiet"])
            self.add("install", "ours", m)
            rmtree(kit)
            x = d / "x-install"
            m = run_measured(ws, "install-base-%d-%d" % (n, rep),
                             ["bash", "-euo", "pipefail", self.script("install", self.extract_lines(archive, x) + [("sync", "sync")])])
            self.add("install", "baseline", m)
            rmtree(x)

        if "install_push" in self.ops:
            self.install_push(d, archive, rep)
        rmtree(d)

    def baseline_build(self, d: Path, rep: int) -> None:
        oci = d / "base" / "images"
        lines = [("mkdir", "mkdir -p %s" % q(d / "base"))]
        for r in self.v1_refs:
            lines.append(("skopeo", "skopeo copy --quiet --all --src-tls-verify=false --src-no-creds docker://%s/%s:%s oci:%s:%s"
                          % (self.src.host, r["repository"], r["tag"], q(oci), "docker.io/%s:%s" % (r["repository"], r["tag"]))))
        # the configs and tenant files travel too (a copy: they are a few KiB)
        lines.append(("cp", "cp -r %s %s" % (q(self.ws.path("manifest", "telemetry-storage")), q(d / "base" / "config"))))
        lines.append(("tar|zstd", "tar -c -C %s images config | zstd -T0 -3 -q > %s" % (q(d / "base"), q(d / "base.tar.zst"))))
        lines.append(("sha256sum", "sha256sum %s > %s" % (q(d / "base.tar.zst"), q(d / "base.tar.zst.sha256"))))
        mark = self.src.mark()
        m = run_measured(self.ws, "build-base-%d-%d" % (self.size_mb, rep), self.skopeo_wrap(self.script("build", lines)))
        fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
        self.checks["baseline_blob_fetches"].append(fetched)
        self.add("build", "baseline", m, archive_mb=round((d / "base.tar.zst").stat().st_size / MiB, 1),
                 blob_fetches=fetched)
        if rep == 0 and self.levels and "zstd_levels" not in self.extra:
            self.extra["zstd_levels"] = zstd_levels(self.ws, d / "base", self.levels)
        rmtree(d / "base")
        for f in ("base.tar.zst", "base.tar.zst.sha256"):
            (d / f).unlink()

    def install_push(self, d: Path, archive: Path, rep: int) -> None:
        ws = self.ws
        meta_refs = ["docker.io/%s:%s" % (r["repository"], r["tag"]) for r in self.v1_refs]
        expect = {"docker.io/%s:%s" % (r["repository"], r["tag"]): r["digest"] for r in self.v1_refs}
        # ours: verify + unpack + push by digest to a fresh site registry
        site = ws.registry()
        kit = d / "kit-push"
        m = run_measured(ws, "push-ours-%d-%d" % (self.size_mb, rep),
                         [self.ob, "install", archive, "--kit", kit, "--trust", self.pub, "--quiet",
                          "--registry", site.host, "--insecure-registry", site.host])
        ok_ours = site_digests(site, expect)
        ws.drop_registry(site)
        rmtree(kit)
        self.add("install_push", "ours", m, site_ok=ok_ours)
        # baseline: the extract-and-check pipeline, sync, then skopeo copy --all per image (fresh registry, fresh cache)
        site = ws.registry()
        x = d / "x-push"
        lines = self.extract_lines(archive, x) + [("sync", "sync")]
        for ref in meta_refs:
            lines.append(("skopeo", "skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false --dest-no-creds "
                          "oci:%s:%s docker://%s/%s" % (q(x / "images"), ref, site.host, ref)))
        m = run_measured(ws, "push-base-%d-%d" % (self.size_mb, rep), self.skopeo_wrap(self.script("push", lines)))
        ok_base = site_digests(site, expect)
        ws.drop_registry(site)
        rmtree(x)
        self.add("install_push", "baseline", m, site_ok=ok_base)
        self.checks["site_digests_agree"].append(ok_ours and ok_base)

    def run(self) -> dict:
        self.setup()
        for rep in range(self.args.repeat):
            log("size %d MB, repetition %d/%d" % (self.size_mb, rep + 1, self.args.repeat))
            self.repetition(rep)
        if self.profile_dir:
            self.extra["profile"] = self.profile()
        return self.result()

    def teardown(self) -> None:
        """The source registry goes (its storage stays when it lives in --data-dir); so does this size's data."""
        if self.src is not None:
            self.ws.drop_registry(self.src)
            self.src = None
        for leftover in self.ws.root.glob("rep-%d-*" % self.size_mb):
            rmtree(leftover)
        rmtree(self.ws.path("manifest"))

    # -- profiles of build and install (py-spy when installed, else cProfile of the main thread)
    def profile(self) -> dict:
        ws, out = self.ws, Path(self.profile_dir)
        out.mkdir(parents=True, exist_ok=True)
        d = ws.path("profile")
        d.mkdir()
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        result = {}
        for name in ("build", "install"):
            if name == "build":
                argv = ["build", self.manifests["v1"], "--key", self.key, "--out", d / "out", "--cache", d / "cache",
                        "--mirror", "docker.io=%s" % self.src.host, "--insecure-registry", self.src.host, "--quiet"]
            else:
                argv = ["install", self.archive_in(d / "out"), "--kit", d / "kit", "--trust", self.pub, "--quiet"]
            argv = [str(a) for a in argv]
            if os.path.exists(pyspy):
                raw = out / ("%s-%d.pyspy.txt" % (name, self.size_mb))
                cmd = [pyspy, "record", "--format", "raw", "--rate", "200", "--threads", "--idle", "--nonblocking",
                       "-o", str(raw), "--", self.ob] + argv
                m = run_measured(ws, "profile-%s" % name, cmd)
                result[name] = summarize_pyspy(raw, m.wall)
                result[name]["tool"] = "py-spy --idle --threads (200 Hz)"
            else:
                stats = out / ("%s-%d.cprofile" % (name, self.size_mb))
                m = run_measured(ws, "profile-%s" % name, [sys.executable, "-m", "cProfile", "-o", stats,
                                                           "-m", "bundler"] + argv)
                result[name] = summarize_cprofile(stats, m.wall)
            log("profile of %s written under %s" % (name, out))
        rmtree(d)
        return result

    def result(self) -> dict:
        ops = {}
        for op, sides in self.samples.items():
            entry = {}
            for side, samples in sides.items():
                entry[side] = {"samples": samples,
                               "median_s": round(statistics.median(s["wall_s"] for s in samples), 3),
                               "peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
                               "median_peak_rss_mb": round(statistics.median(s["peak_rss_mb"] for s in samples), 1)}
            ops[op] = entry
        # the warm rebuild is compared with the cold build of the same repetitions
        if "warm_rebuild" in ops and "build" in ops:
            ops["warm_rebuild"]["baseline"] = dict(ops["build"]["ours"], note="the cold build (ours) of the same run")
        for op, entry in ops.items():
            if "ours" in entry and "baseline" in entry and entry["baseline"]["median_s"] > 0:
                entry["ratio"] = round(entry["ours"]["median_s"] / entry["baseline"]["median_s"], 3)
        return {"size_mb": self.size_mb, "seed": {k: v for k, v in self.seed.items() if k != "stamp"},
                "ops": ops, "checks": self.checks, **self.extra}


def script_steps(stderr: str) -> Dict[str, float]:
    """Seconds per step label (summed) from the '@@step LABEL T0 T1' lines of a baseline script."""
    steps: Dict[str, float] = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "@@step":
            try:
                steps[parts[1]] = round(steps.get(parts[1], 0.0) + float(parts[3]) - float(parts[2]), 3)
            except ValueError:
                continue
    return steps


def sidecar(archive: Path) -> str:
    return Path(str(archive) + ".sha256").read_text().split()[0]


def q(path) -> str:
    import shlex
    return shlex.quote(str(path))


def site_digests(site, expect: Dict[str, str]) -> bool:
    """Every reference landed at SITE/<ref> with the upstream digest."""
    import http.client
    accept = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    for ref, digest in expect.items():
        repo, tag = ref.rsplit(":", 1)
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
        try:
            conn.request("HEAD", "/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": accept})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200 or resp.getheader("Docker-Content-Digest") != digest:
                return False
        finally:
            conn.close()
    return True


# ------------------------------------------------------------------------------------------------
# zstd levels on the gzip-layer-heavy set (what ZSTD_LEVEL should be)

def zstd_levels(ws: Workspace, folder: Path, levels: Sequence[int]) -> dict:
    import zstandard
    from bundler.seal.archive import ZSTD_JOB_SIZE, ZSTD_LEVEL, zstd_threads

    tar_path = ws.path("levels.tar")
    subprocess.run(["tar", "-c", "-f", str(tar_path), "-C", str(folder), "."], check=True)
    size = tar_path.stat().st_size
    with open(tar_path, "rb") as fh:  # into the page cache: every level reads from memory
        while fh.read(8 * MiB):
            pass
    best: Dict[int, dict] = {}
    for level in list(levels) + list(reversed(levels)):  # two rounds, opposite orders; the faster of each is kept
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=zstd_threads(),
                                                               job_size=ZSTD_JOB_SIZE, write_checksum=True)

        class Count:
            n = 0

            def write(self, data):
                Count.n += len(data)
                return len(data)
        sink = Count()
        cpu0, start = time.process_time(), time.monotonic()
        with open(tar_path, "rb") as fh:
            w = zstandard.ZstdCompressor(compression_params=params).stream_writer(sink, closefd=False)
            while True:
                data = fh.read(MiB)
                if not data:
                    break
                w.write(data)
            w.close()
        wall = time.monotonic() - start
        row = {"level": level, "wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu0, 2),
               "out_mb": round(Count.n / MiB, 1), "ratio": round(size / Count.n, 4),
               "saved_pct": round(100 * (1 - Count.n / size), 3), "mb_per_s": round(size / MiB / wall, 1)}
        if level not in best or row["wall_s"] < best[level]["wall_s"]:
            best[level] = row
    rows = [best[level] for level in levels]
    for row in rows:
        log("  zstd level %d: %.2f s, %.0f MB/s, %.3f%% smaller" % (row["level"], row["wall_s"], row["mb_per_s"],
                                                                    row["saved_pct"]))
    tar_path.unlink()
    return {"input_mb": round(size / MiB, 1), "threads": zstd_threads(), "job_size": ZSTD_JOB_SIZE,
            "current_level": ZSTD_LEVEL, "rows": rows}


# ------------------------------------------------------------------------------------------------
# profiles

def _frame_name(frame: str, line: bool = False) -> str:
    """'func (path/to/file.py:123)' -> 'func (dir/file.py)' (with ':123' when ``line``)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file, _, number = where.rpartition(":") if ":" in where else (where, "", "")
    parts = file.split("/")
    short = "/".join(parts[-2:]) if parts else file
    if line and number:
        short += ":" + number
    return "%s (%s)" % (name, short) if where else name


def summarize_pyspy(raw: Path, wall: float, top: int = 25) -> dict:
    selfc: Dict[str, int] = {}
    incl: Dict[str, int] = {}
    threads: Dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        total += n
        threads[thread] = threads.get(thread, 0) + n
        names = [_frame_name(f) for f in frames]
        leaf = _frame_name(frames[-1], line=True) if frames else "(idle)"
        selfc[leaf] = selfc.get(leaf, 0) + n
        for name in set(names):
            incl[name] = incl.get(name, 0) + n
    def rows(d):
        return [{"function": k, "samples": v, "pct": round(100.0 * v / total, 1)} for k, v in
                sorted(d.items(), key=lambda kv: -kv[1])[:top]] if total else []
    return {"wall_s": round(wall, 2), "samples": total, "raw": str(raw),
            "threads": rows(threads), "self": rows(selfc), "inclusive": rows(incl)}


def summarize_cprofile(stats_path: Path, wall: float, top: int = 25) -> dict:
    import pstats
    st = pstats.Stats(str(stats_path))
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]:
        rows.append({"function": "%s (%s:%d)" % (func, "/".join(file.split("/")[-2:]), line), "calls": nc,
                     "self_s": round(tt, 3), "cumulative_s": round(ct, 3)})
    return {"wall_s": round(wall, 2), "tool": "cProfile (main thread only)", "self": rows, "raw": str(stats_path)}


# ------------------------------------------------------------------------------------------------
# report

def machine_info(args) -> dict:
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    mem = ""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    try:
        import zstandard
        zver = zstandard.__version__
    except ImportError:
        zver = None
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bundler", "installer"])
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
        "python": platform.python_version(), "zstandard": zver,
        "zstd": out(["zstd", "--version"]).replace("*** ", "").split(",")[0],
        "skopeo": out(["skopeo", "--version"]), "tar": out(["tar", "--version"]).splitlines()[0] if out(["tar", "--version"]) else "",
        "offline_bundle": out([args.ob, "--version"]).split()[-1:] and out([args.ob, "--version"]).split()[-1],
        "commit": commit + (" (bundler/ or installer/ modified)" if dirty else ""),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "skopeo_blob_cache": "private tmpfs per run (unshare -m)" if args.private_cache else "the machine's (no unshare)",
        "children_from": "/proc/PID/task/*/children" if HAVE_CHILDREN_FILE else "/proc/*/stat (ppid scan)",
    }


LABELS = {
    "build": ("build (cold cache)", "skopeo copy --all ×N → oci: + tar | zstd -T0 -3 + sha256sum"),
    "verify": ("verify", "sha256sum -c sidecar + zstd -dc | tar -x + sha256sum -c SHA256SUMS"),
    "install": ("install (kit, fsync)", "the verify pipeline + sync"),
    "install_push": ("install + push to site", "the install pipeline + skopeo copy --all oci:→docker:// ×N"),
    "warm_rebuild": ("warm rebuild (nothing changed)", "the cold build (ours)"),
    "delta": ("delta build (one layer changed)", "full build of the same version (same warm cache)"),
}
WHY = {  # shown beside a missed target; from the profiles in bench/README.md "Where the time goes"
    "build": "the pull and the archive pass run one after the other (about half the wall time each), and the "
             "archive pass hashes every blob again although the download just verified it",
    "verify": "one Python thread reads, decompresses, parses and hashes in turn; nothing overlaps",
    "install": "one thread does zstd, sha256, write and an fsync per file in turn (a two-stage pipeline measured "
               "24% faster), plus about 0.25 s of imports the install path does not need",
    "install_push": "the push starts only after the whole unpack and re-reads every blob from the kit",
    "warm_rebuild": "a warm rebuild recompresses, rehashes and rewrites the whole archive (95% of its time): on "
                    "loopback that is half a cold build; only reusing the identical archive gets under 0.15x",
}


def fmt_ratio_verdict(ratio: Optional[float], target: float) -> str:
    if ratio is None:
        return "n/a"
    if ratio <= target:
        return "met (%.0f%% under)" % (100 * (1 - ratio / target))
    return "**missed by %.0f%%**" % (100 * (ratio / target - 1))


def evaluate(sizes: List[dict]) -> List[dict]:
    """Each target of issue 7 item 2: met or missed, and by how much."""
    verdicts = []
    first = sizes[0]
    for op, target in TARGETS.items():
        entry = first["ops"].get(op)
        if not entry or "ratio" not in entry:
            continue
        r = entry["ratio"]
        v = {"target": "%s ≤ %.2f×" % (op, target), "value": "%.2f×" % r, "met": r <= target,
             "by": fmt_ratio_verdict(r, target)}
        if op == "warm_rebuild":
            fetches = first["checks"]["warm_blob_fetches"]
            v["value"] += ", %s blob fetches" % ("/".join(map(str, fetches)) or "?")
            v["met"] = v["met"] and bool(fetches) and not any(fetches)
            if any(fetches):
                v["by"] += "; **fetched blobs**"
        if not v["met"] and op in WHY:
            v["why"] = WHY[op]
        verdicts.append(v)
    for op in ("build", "install"):
        peaks = [(s["size_mb"], s["ops"][op]["ours"]["peak_rss_mb"]) for s in sizes if op in s["ops"]]
        if not peaks:
            continue
        worst = max(p for _s, p in peaks)
        verdicts.append({"target": "peak RSS of %s < %d MB" % (op, RSS_LIMIT_MB),
                         "value": ", ".join("%.0f MB at %d MB" % (p, s) for s, p in peaks),
                         "met": worst < RSS_LIMIT_MB,
                         "by": ("met (%.0f MB to spare)" % (RSS_LIMIT_MB - worst)) if worst < RSS_LIMIT_MB
                         else "**missed by %.0f MB**" % (worst - RSS_LIMIT_MB)})
        if len(peaks) >= 2:
            (s1, p1), (s2, p2) = peaks[0], peaks[-1]
            growth = p2 / p1 - 1 if p1 else 0.0
            verdicts.append({"target": "peak RSS of %s flat from %d to %d MB (≤ +%d%%)" % (op, s1, s2, RSS_FLAT_GROWTH * 100),
                             "value": "%+.1f%%" % (100 * growth), "met": growth <= RSS_FLAT_GROWTH,
                             "by": "met" if growth <= RSS_FLAT_GROWTH else "**missed by %.0f points**"
                             % (100 * (growth - RSS_FLAT_GROWTH))})
        else:
            verdicts.append({"target": "peak RSS of %s flat when the set doubles" % op, "value": "not measured",
                             "met": None, "by": "run with --double (or run --size-mb 2X too)"})
    return verdicts


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = ["# Benchmark results", "",
             "Written by `bench/run.py` (%s). Medians of %d alternating repetitions; ratios are ours / baseline "
             "(lower is better). Peak RSS is the whole process tree (sum of VmRSS, polled every %d ms). "
             "How to run and what each line compares: [README.md](README.md)." % (
                 doc["finished"], doc["params"]["repeat"], int(SAMPLE_INTERVAL * 1000)), "",
             "Machine: %s cores (%s), %s RAM, kernel %s; Python %s, zstandard %s, %s, %s; offline-bundle %s at %s; "
             "load average at start %s." % (m["nproc"], m["cpu"], m["memory"], m["kernel"], m["python"], m["zstandard"],
                                            m["zstd"], m["skopeo"], m["offline_bundle"], m["commit"],
                                            " ".join(m["loadavg_start"])), ""]
    if doc["params"].get("note"):
        lines += ["> " + doc["params"]["note"], ""]
    lines += ["## Targets (issue 7 item 2)", "", "| target | measured | verdict | why (when missed) |", "|---|---|---|---|"]
    for v in doc["verdicts"]:
        verdict = {True: "met", False: "MISSED", None: "—"}[v["met"]]
        lines.append("| %s | %s | %s — %s | %s |" % (v["target"], v["value"], verdict, v["by"], v.get("why", "")))
    for s in doc["sizes"]:
        seed = s["seed"]
        lines += ["", "## %d MB image set" % s["size_mb"], "",
                  "%d images (one multi-arch index, two sharing a %d MiB base layer), %.0f MiB compressed, %.0f%% of it "
                  "random bytes (the rest text-like, gzip about 2.3×)." % (
                      seed["images"], seed["layers"]["base"]["size"] >> 20, seed["v1_compressed_bytes"] / MiB,
                      100.0 * seed["v1_random_bytes"] / seed["v1_compressed_bytes"]), "",
                  "| operation | ours (s) | baseline | baseline (s) | ratio | target | peak RSS ours / baseline (MB) |",
                  "|---|---:|---|---:|---:|---|---:|"]
        for op in OPS:
            e = s["ops"].get(op)
            if not e or "ours" not in e:
                continue
            label, base_label = (x.replace("|", "\\|") for x in LABELS[op])
            b = e.get("baseline")
            target = TARGETS.get(op)
            ratio = e.get("ratio")
            verdict = ("≤ %.2f×: %s" % (target, fmt_ratio_verdict(ratio, target))) if target and ratio is not None else "—"
            rss_b = "%.0f" % b["peak_rss_mb"] if b and op not in ("warm_rebuild",) else "—"
            lines.append("| %s | %.2f | %s | %s | %s | %s | %.0f / %s |" % (
                label, e["ours"]["median_s"], base_label, "%.2f" % b["median_s"] if b else "—",
                "%.2f×" % ratio if ratio is not None else "—", verdict, e["ours"]["peak_rss_mb"], rss_b))
        c = s["checks"]
        notes = []
        if c["cold_blob_fetches"]:
            notes.append("blob GETs per cold build: ours %s, skopeo %s" % (
                "/".join(map(str, c["cold_blob_fetches"])), "/".join(map(str, c["baseline_blob_fetches"])) or "—"))
        if c["warm_blob_fetches"]:
            notes.append("blob GETs per warm rebuild: %s" % "/".join(map(str, c["warm_blob_fetches"])))
        if c["site_digests_agree"]:
            notes.append("site digests equal upstream on both sides: %s" % "/".join(
                "yes" if x else "NO" for x in c["site_digests_agree"]))
        if "delta" in s["ops"]:
            d = s["ops"]["delta"]
            notes.append("delta archive %.2f MB vs full %.1f MB" % (
                statistics.median(x["archive_mb"] for x in d["ours"]["samples"]),
                statistics.median(x["archive_mb"] for x in d["baseline"]["samples"])))
        if notes:
            lines += [""] + ["- " + n for n in notes]
        if "zstd_levels" in s:
            z = s["zstd_levels"]
            lines += ["", "zstd levels on this set's tar (%.0f MB, %d threads, job size %d MiB; the archive uses "
                      "level %d):" % (z["input_mb"], z["threads"], z["job_size"] >> 20, z["current_level"]), "",
                      "| level | wall (s) | MB/s | smaller by |", "|---:|---:|---:|---:|"]
            for r in z["rows"]:
                lines.append("| %d | %.2f | %.0f | %.3f%% |" % (r["level"], r["wall_s"], r["mb_per_s"], r["saved_pct"]))
    lines += ["", "Every sample is in [latest.json](latest.json) (or the file given with `--out`)."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------

def check_tools(args) -> None:
    missing = [t for t in ("skopeo", "zstd", "tar", "sha256sum", "docker-registry", "unshare", "cp", "sync")
               if not shutil.which(t)]
    if missing:
        raise BenchError("missing programs: %s (apt-get install -y docker-registry skopeo zstd)" % ", ".join(missing))
    if not os.access(args.ob, os.X_OK):
        raise BenchError("%s is not an executable offline-bundle (pass --ob PATH)" % args.ob)


def check_space(parent: str, sizes: Sequence[int], data_dir: Optional[Path]) -> None:
    # live at once: source registry, cache, archive, warm/delta archive, baseline OCI + tar.zst or kit + site
    need = (6 * max(sizes) + 1024) * MiB
    if data_dir:
        need += sum(sizes) * MiB
    free = shutil.disk_usage(parent).free
    if free < need:
        raise BenchError("not enough free space in %s: about %d MiB needed, %d MiB free (use --workdir elsewhere or "
                         "a smaller --size-mb)" % (parent, need >> 20, free >> 20))


def main(argv=None) -> int:
    default_ob = Path(sys.executable).parent / "offline-bundle"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size-mb", type=int, default=1500, help="compressed size of the image set (MiB)")
    p.add_argument("--repeat", type=int, default=3, help="alternating repetitions of every pair")
    p.add_argument("--double", action="store_true",
                   help="also run at 2x --size-mb (build and install only) to show peak RSS stays flat")
    p.add_argument("--double-ops", default="build,install", help="operations run at 2x with --double")
    p.add_argument("--ops", default=",".join(OPS), help="operations to run (comma-separated: %s)" % ", ".join(OPS))
    p.add_argument("--out", default=str(ROOT / "bench" / "latest.json"), help="JSON output")
    p.add_argument("--markdown", default=str(ROOT / "bench" / "RESULTS.md"), help="Markdown table output ('' for none)")
    p.add_argument("--levels", default="1,3,6", help="zstd levels to measure on the set's tar ('' to skip)")
    p.add_argument("--profile", nargs="?", const=str(ROOT / "bench" / "results"), default=None, metavar="DIR",
                   help="also profile one build and one install (py-spy if installed, else cProfile) into DIR")
    p.add_argument("--workdir", default=os.environ.get("TMPDIR") or "/tmp", help="parent of the work folder")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep the seeded source registry here and reuse it on later runs of the same size")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, scripts) for inspection")
    p.add_argument("--ob", default=str(default_ob), help="the offline-bundle executable")
    p.add_argument("--note", default="", help="a line to put at the top of RESULTS.md")
    args = p.parse_args(argv)
    if args.size_mb < 20:
        p.error("--size-mb must be at least 20")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    double_ops = [o.strip() for o in args.double_ops.split(",") if o.strip()]
    bad = [o for o in ops + double_ops if o not in OPS]
    if bad:
        p.error("unknown operation(s) %s; choose from %s" % (", ".join(bad), ", ".join(OPS)))
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if args.data_dir:
        args.data_dir = args.data_dir.resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    sizes = [args.size_mb] + ([2 * args.size_mb] if args.double else [])

    def on_term(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    ws = None
    doc = {"params": {"size_mb": args.size_mb, "repeat": args.repeat, "double": args.double, "ops": ops,
                      "double_ops": double_ops if args.double else [], "levels": args.levels, "note": args.note},
           "started": datetime.datetime.now().isoformat(timespec="seconds"), "complete": False, "sizes": []}
    try:
        check_tools(args)
        os.makedirs(args.workdir, exist_ok=True)
        check_space(args.workdir, sizes, args.data_dir)
        ws = Workspace(args.workdir, args.keep)
        from helpers.images import _unshare_ok
        args.private_cache = _unshare_ok()
        if not args.private_cache:
            log("warning: cannot unshare a mount namespace: skopeo will use the machine's blob cache")
        doc["machine"] = machine_info(args)
        log("work folder %s; sizes %s MB; %d repetitions" % (ws.root, sizes, args.repeat))
        for i, size in enumerate(sizes):
            # levels and profiles are measured once, at the first size
            suite = Suite(ws, args, size, ops if i == 0 else double_ops, levels=args.levels if i == 0 else [],
                          profile=args.profile if i == 0 else None)
            try:
                doc["sizes"].append(suite.run())
            except BaseException:
                if suite.samples:  # keep what was measured before the failure
                    doc["sizes"].append(dict(suite.result(), partial=True))
                raise
            finally:
                suite.teardown()
            write_json(args.out, doc)
        doc["complete"] = True
        doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        doc["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        doc["verdicts"] = evaluate(doc["sizes"])
        write_json(args.out, doc)
        if args.markdown:
            Path(args.markdown).write_text(markdown(doc))
        sys.stdout.write(markdown(doc))
        log("wrote %s%s" % (args.out, " and %s" % args.markdown if args.markdown else ""))
        return 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    except BenchError as exc:
        log("error: %s" % exc)
        return 1
    except Exception as exc:  # a bug or an unexpected tool failure: say so, with the traceback
        import traceback
        traceback.print_exc()
        log("error: %s: %s" % (type(exc).__name__, str(exc)[-1500:]))
        return 1
    finally:
        if ws is not None:
            ws.close()
        if doc["sizes"] and not doc["complete"]:
            write_json(args.out, doc)
            log("partial results in %s" % args.out)


def write_json(path: str, doc: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = "%s.tmp" % path
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
