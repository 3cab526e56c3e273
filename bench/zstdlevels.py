"""How the archive's zstd level trades size for time on this workload."""

import subprocess
import time
from pathlib import Path
from typing import Dict, Sequence

from bench.config import MiB, log
from bench.measure import Workspace

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
