"""Chart fixtures: charts made on disk, packaged and served with the real helm binary.

- `make_chart(dir, name, version, images=...)`: a chart whose Deployment runs the given images;
- `serve_repo(folder)`: `helm package` + `helm repo index`, served by `python3 -m http.server` on loopback;
- `push_oci(tgz, registry)`: `helm push` into a test registry (plain HTTP).
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from .procs import free_port, stop_process


def helm_bin() -> str:
    path = shutil.which("helm")
    assert path, "helm is not on PATH (scripts/setup.sh installs it into .tools/bin)"
    return path


def helm(args: List[str], home: Path, cwd: Optional[Path] = None) -> str:
    env = dict(os.environ, HELM_CONFIG_HOME=str(home), HELM_CACHE_HOME=str(home), HELM_DATA_HOME=str(home))
    proc = subprocess.run([helm_bin()] + args, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert proc.returncode == 0, "helm %s failed: %s" % (" ".join(args), proc.stderr)
    return proc.stdout


def make_chart(folder: Path, name: str, version: str, images: Dict[str, str], app_version: str = "1.0",
               init_images: Dict[str, str] = None) -> Path:
    """A chart with one Deployment; ``images`` maps a values key to an image reference."""
    root = folder / name
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: %s\nversion: %s\nappVersion: \"%s\"\n"
                                     "description: a test chart\n" % (name, version, app_version))
    values, containers = [], []
    for key, ref in sorted(images.items()):
        repo, _, tag = ref.rpartition(":")
        values.append("%s:\n  image:\n    repository: %s\n    tag: \"%s\"\n" % (key, repo, tag))
        containers.append('        - name: %s\n'
                          '          image: "{{ .Values.%s.image.repository }}:{{ .Values.%s.image.tag }}"\n'
                          % (key.lower(), key, key))
    inits = []
    for key, ref in sorted((init_images or {}).items()):
        inits.append('        - name: %s\n          image: "%s"\n' % (key.lower(), ref))
    (root / "values.yaml").write_text("".join(values) or "{}\n")
    body = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
            "  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n    spec:\n"
            "      containers:\n%s" % (name, name, "".join(containers)))
    if inits:
        body += "      initContainers:\n" + "".join(inits)
    (root / "templates" / "deployment.yaml").write_text(body)
    return root


class ChartRepo:
    def __init__(self, folder: Path, proc, port: int) -> None:
        self.folder = folder
        self.proc = proc
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.host = "127.0.0.1:%d" % port

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def package(chart_dir: Path, out: Path, home: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    helm(["package", str(chart_dir), "-d", str(out)], home)
    return next(out.glob("%s-*.tgz" % chart_dir.name))


def serve_repo(folder: Path, home: Path) -> ChartRepo:
    """index.yaml for every .tgz in ``folder`` (with digests), served over plain HTTP on loopback."""
    port = free_port()
    helm(["repo", "index", str(folder), "--url", "http://127.0.0.1:%d" % port], home)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/index.yaml" % port, timeout=1).read()
            break
        except OSError:
            time.sleep(0.02)
    return ChartRepo(folder, proc, port)


def push_oci(tgz: Path, registry, repo_prefix: str, home: Path) -> str:
    out = helm(["push", str(tgz), "oci://%s/%s" % (registry.host, repo_prefix), "--plain-http"], home)
    return out
