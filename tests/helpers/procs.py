"""Process and port helpers: free loopback ports, children that die with the test, stopping by PID, polling."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import List


def wait_for(predicate, proc, timeout: float, step: float) -> bool:
    """Poll ``predicate`` until it holds (True), ``proc`` exits or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(step)
    return False


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (callers retry on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orphan_safe(argv: List[str]) -> List[str]:
    """Prefix argv so the child gets SIGTERM if the test process dies (setpriv --pdeathsig).

    Only from the main thread: Linux sends the parent-death signal when the *thread* that forked
    exits, and a helper thread ending must not take a registry or dockerd with it.
    """
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "TERM", "--"] + list(argv)
    return list(argv)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal one child process by its PID, wait for it, SIGKILL if it does not go. Never a broad kill."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
