"""Stand-ins for a manifest's images and charts, served by a real local registry and chart repository.

No network here: the demo and the tests build the default manifest through `--mirror docker.io=<this
registry>` and `--mirror https://<chart repo>=http://<this chart server>/<name>`. Each image reference
gets a small multi-platform image (amd64, arm64, arm/v7) whose only layer says what it stands in for,
so platform selection and derived indexes are exercised as with the real images. Each chart gets a
stand-in of the same name and version whose Deployment takes its images from the value paths the
manifest names, so `helm template` and the build's image check behave as with the real charts.
"""

import os
import sys
from pathlib import Path
from typing import Dict, List

import yaml

from installer.format.reference import parse

from .images import RandomLayer, make_index, push
from .registry import start_registry

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7"))
STANDIN_MTIME = 1795651200  # 2026-11-26T00:00:00Z, the default manifest's `created`


def manifest_charts(manifest: Path) -> List[dict]:
    doc = yaml.safe_load(Path(manifest).read_text())
    return [c for c in (doc.get("spec") or {}).get("charts") or [] if c.get("repo")]


def _image_expr(path: str, style: str) -> str:
    v = ".Values." + path
    if style == "image":
        return "{{ %s }}" % v
    if style == "registry-repository-tag":
        return "{{ %s.registry }}/{{ %s.repository }}:{{ %s.tag }}" % (v, v, v)
    return "{{ %s.repository }}:{{ %s.tag }}" % (v, v)


def _default_values(images: List[dict]) -> dict:
    values: dict = {}
    for spec in images:
        ref = parse(spec["ref"])
        style = spec.get("style", "repository-tag")
        if style == "image":
            leaf = str(ref)
        elif style == "registry-repository-tag":
            leaf = {"registry": ref.host, "repository": ref.path, "tag": ref.tag}
        else:
            leaf = {"repository": ref.repository, "tag": ref.tag}
        node = values
        parts = spec["values"].split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(leaf, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(leaf)
        else:
            node[parts[-1]] = leaf
    return values


def make_standin_chart(folder: Path, chart: dict) -> Path:
    """A chart named and versioned like ``chart`` whose Deployment runs the images at its value paths."""
    root = folder / chart["name"]
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: %s\nversion: %s\ndescription: stand-in for %s/%s, "
                                     "made offline for the offline-bundle demo and tests\n"
                                     % (chart["name"], chart["version"], chart["repo"], chart["name"]))
    (root / "values.yaml").write_text(yaml.safe_dump(_default_values(chart.get("images") or []), sort_keys=True))
    containers = "".join('        - name: c%d\n          image: "%s"\n'
                         % (i, _image_expr(s["values"], s.get("style", "repository-tag")))
                         for i, s in enumerate(chart.get("images") or []))
    (root / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n    spec:\n"
        "      containers:\n%s" % (chart["name"], chart["name"], containers))
    for path in [root] + sorted(root.rglob("*")):  # helm package keeps file times: fixed ones, a reproducible chart
        os.utime(path, (STANDIN_MTIME, STANDIN_MTIME))
    return root


def repo_folder(url: str) -> str:
    """https://prometheus-community.github.io/helm-charts -> prometheus-community."""
    return url.split("://", 1)[1].split("/", 1)[0].split(".", 1)[0]


def serve_charts(folder: Path, charts: List[dict], home: Path):
    """Package stand-ins per repository folder; one HTTP server for all; returns (server, mirror args)."""
    from .charts import helm, package
    from .procs import free_port

    port = free_port()
    repos = {}
    for chart in charts:
        sub = repo_folder(chart["repo"])
        src = make_standin_chart(folder / "src" / sub, chart)
        package(src, folder / "served" / sub, home)
        repos[chart["repo"].rstrip("/")] = sub
    for sub in set(repos.values()):
        helm(["repo", "index", str(folder / "served" / sub), "--url", "http://127.0.0.1:%d/%s" % (port, sub)], home)
    import subprocess
    import urllib.request
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                             str(folder / "served")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=1).read()
            break
        except OSError:
            import time
            time.sleep(0.02)
    args = ["--insecure-registry", "127.0.0.1:%d" % port]
    for url, sub in sorted(repos.items()):
        args += ["--mirror", "%s=http://127.0.0.1:%d/%s" % (url, port, sub)]
    return proc, args


def manifest_refs(manifest: Path) -> List[str]:
    doc = yaml.safe_load(Path(manifest).read_text())
    return [i["ref"] for i in (doc.get("spec") or {}).get("images") or [] if i.get("source") != "docker-daemon"]


def seed(registry, layout_dir: Path, refs: List[str]) -> Dict[str, str]:
    """Push a stand-in for every reference (host docker.io only); returns ref -> index digest."""
    out = {}
    for i, text in enumerate(refs):
        ref = parse(text)
        if ref.host != "docker.io":
            raise ValueError("stand-ins are made for docker.io references only, not %s" % ref)
        note = ("stand-in for %s, built offline for the offline-bundle demo and tests\n" % ref).encode()
        tag = "standin-%d" % i
        info = make_index(layout_dir, tag, platforms=PLATFORMS, shared_base=RandomLayer.mb(0.25, seed=11),
                          layers=[{"etc/standin/README": note}])
        out[str(ref)] = push(layout_dir, tag, registry, "%s:%s" % (ref.path, ref.tag or "latest"))
        assert out[str(ref)] == info.digest
    return out


def serve(folder: Path, manifest: Path) -> None:
    """Start a source and a site registry, seed the source, write folder/standin.env, wait for SIGTERM."""
    import signal
    import time

    from .procs import stop_process

    folder.mkdir(parents=True, exist_ok=True)
    source = start_registry(folder / "source", kind="plain")
    site = start_registry(folder / "site", kind="plain")
    charts = None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        seed(source, folder / "layout", manifest_refs(manifest))
        charts, chart_args = serve_charts(folder / "charts", manifest_charts(manifest), folder / "helm-home")
        args = ["--mirror", "docker.io=%s" % source.host, "--insecure-registry", source.host] + chart_args
        (folder / "standin.env").write_text("SOURCE=%s\nSITE=%s\nBUILD_ARGS=\"%s\"\n"
                                            % (source.host, site.host, " ".join(args)))
        while not stop:
            time.sleep(0.2)
    finally:
        if charts is not None:
            stop_process(charts)
        site.stop()
        source.stop()


if __name__ == "__main__":  # python -m tests.helpers.standin FOLDER [MANIFEST], from the repository root
    if len(sys.argv) < 2:
        sys.exit("usage: python -m tests.helpers.standin FOLDER [MANIFEST]: serve stand-ins for MANIFEST's images "
                 "and charts (the demo's 'internet') and an empty site registry; writes FOLDER/standin.env")
    serve(Path(sys.argv[1]).resolve(),
          Path(sys.argv[2]) if len(sys.argv) > 2 else Path("manifests") / "telemetry-storage.yaml")
