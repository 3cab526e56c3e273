"""A private Docker engine (Debian ``docker.io`` 20.10 ``dockerd``) per test or per session.

Everything it owns lives in one short temp folder (a unix socket path must stay under 108 bytes):
``/tmp/obd-XXXX/{docker.sock,data,exec,dockerd.pid,daemon.json,dockerd.log}``. It is started with
no bridge and no iptables, its own containerd namespace and an empty ``daemon.json``, so it can run
beside a system dockerd (or another test's) without sharing state. Stopped with SIGTERM by PID.

Example::

    from tests.helpers.dockerd import start_dockerd
    with start_dockerd() as d:
        d.client.images.load(open(archive, "rb").read())
        run_cmd(["docker", "-H", d.host, "images"])        # the CLI, against this engine only
        d.env  # {"DOCKER_HOST": "unix:///tmp/obd-.../docker.sock"} for subprocesses

Notes: 127.0.0.0/8 registries are always insecure to dockerd, so CA errors can't be
tested through it; ``docker load`` wants the docker-archive format (``images.make_docker_archive``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from .procs import orphan_safe, stop_process

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


def dockerd_available() -> bool:
    return os.path.exists(DOCKERD) and os.geteuid() == 0


class DockerdError(RuntimeError):
    pass


class Dockerd:
    """A running private dockerd; use ``start_dockerd``."""

    def __init__(self, storage_driver: Optional[str] = None, base: str = "/tmp") -> None:
        # short: mkdtemp under /tmp, never under pytest's long tmp_path
        self.dir = Path(tempfile.mkdtemp(prefix="obd-", dir=base))
        self.sock = self.dir / "docker.sock"
        self.data_root = self.dir / "data"
        self.exec_root = self.dir / "exec"
        self.pidfile = self.dir / "dockerd.pid"
        self.log_path = self.dir / "dockerd.log"
        self.requested_driver = storage_driver
        self.storage_driver: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self._client = None
        if len(str(self.sock)) > 100:
            raise DockerdError("socket path too long for a unix socket: %s" % self.sock)

    @property
    def host(self) -> str:
        """For ``docker -H`` and DOCKER_HOST."""
        return "unix://%s" % self.sock

    @property
    def env(self) -> dict:
        return {"DOCKER_HOST": self.host}

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def client(self):
        """A ``docker.DockerClient`` on this engine (API version negotiated: 20.10 speaks 1.41)."""
        if self._client is None:
            import docker
            self._client = docker.DockerClient(base_url=self.host, version="auto", timeout=120)
        return self._client

    def start(self, timeout: float = 30.0) -> "Dockerd":
        drivers = [self.requested_driver] if self.requested_driver else ["overlay2", "vfs"]
        errors = []
        for driver in drivers:
            if self._start_one(driver, timeout):
                self.storage_driver = driver
                return self
            errors.append("%s: %s" % (driver, self.log_path.read_text(errors="replace")[-1500:]))
            self._stop_process()
            # a failed overlay2 attempt may leave a half-made data root behind
            shutil.rmtree(self.data_root, ignore_errors=True)
            shutil.rmtree(self.exec_root, ignore_errors=True)
        self.cleanup()
        raise DockerdError("dockerd did not start:\n" + "\n".join(errors))

    def _start_one(self, driver: str, timeout: float) -> bool:
        (self.dir / "daemon.json").write_text("{}")   # ignore /etc/docker/daemon.json
        ns = "obt-" + self.dir.name[4:]
        argv = [DOCKERD, "--host", self.host, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--config-file", str(self.dir / "daemon.json"),
                "--storage-driver", driver, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--ip-masq=false", "--userland-proxy=false",
                # own containerd namespaces: a system containerd (if any) is shared, its state is not
                "--containerd-namespace", ns, "--containerd-plugins-namespace", ns + "-plugins"]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(orphan_safe(argv), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.sock.exists() and self._ping():
                return True
            time.sleep(0.05)
        return False

    def _ping(self) -> bool:
        import http.client
        import socket

        class UnixConn(http.client.HTTPConnection):
            def __init__(self, path):
                super().__init__("localhost", timeout=2)
                self._path = path

            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(2)
                self.sock.connect(self._path)

        try:
            conn = UnixConn(str(self.sock))
            conn.request("GET", "/_ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def info(self) -> dict:
        return self.client.info()

    def _stop_process(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        if self.proc is not None:
            stop_process(self.proc, timeout=20)  # dockerd stops its containerd too: give it time
            self.proc = None

    def cleanup(self) -> None:
        # data-root may hold overlay mounts left behind by a killed daemon: unmount before rmtree
        mounts = []
        try:
            with open("/proc/self/mounts") as f:
                for line in f:
                    mp = line.split()[1].replace("\\040", " ")
                    if mp.startswith(str(self.dir) + "/"):
                        mounts.append(mp)
        except OSError:
            pass
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self, keep_dir: bool = False) -> None:
        """SIGTERM by PID, wait (SIGKILL after 20 s), remove the folder unless keep_dir."""
        self._stop_process()
        if not keep_dir:
            self.cleanup()

    def __enter__(self) -> "Dockerd":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_dockerd(storage_driver: Optional[str] = None, timeout: float = 30.0) -> Dockerd:
    """Start a private dockerd (overlay2, falling back to vfs); a context manager too."""
    return Dockerd(storage_driver).start(timeout)
