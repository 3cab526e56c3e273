"""Summaries of py-spy and cProfile runs: where the time goes."""

from pathlib import Path
from typing import Dict

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
