"""Running a command and measuring it: wall clock and the peak RSS of its whole process tree (from /proc)."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bench.config import BenchError, PROXY_VARS, SAMPLE_INTERVAL, log

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
        from tests.helpers.registry import start_registry
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
        self.wall, self.peak_kb, self.rc = wall, peak_kb, rc
        self.polls, self.max_procs, self.stderr = polls, max_procs, stderr

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
