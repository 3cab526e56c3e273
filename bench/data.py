"""The workload: a realistic image set generated locally (layers of text, binaries and random data) and
seeded into a source registry, and the manifests that bundle it."""

import hashlib
import itertools
import json
import os
import random
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional

from bench.config import GENERATOR_VERSION, MiB, ROOT, log
from bench.measure import Workspace, rmtree

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
    from tests.helpers.images import _pad, _tar_header
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

    from tests.helpers.images import MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST, Layout, \
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
    from tests.helpers.images import push

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
    from tests.helpers.registry import Registry
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
