"""At build time, render every chart with its image values pointing at the bundle and list what else it runs.

A chart whose templates name a container image the bundle does not carry would make the air-gapped
site try to pull from the internet. With `helm` on PATH the build renders each chart (`helm template`)
with the values the installer will write (images pinned by digest), collects every container,
initContainer and ephemeralContainer image of every pod template, and refuses (exit 3) those not in
the bundle. Without helm the check is skipped, and the build result says so.
"""

import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

from installer.errors import InternalError, InvalidInput
from installer.format.chartvalues import PlacedImage, chart_values
from installer.format.reference import parse

from bundler.pull.charts import PulledChart
from bundler.pull.images import BlobCache, PulledImage

# What `helm template` may print for one chart. Kubernetes keeps no object over 1.5 MiB (etcd's request
# limit); 64 MiB is far beyond any real chart and keeps a hostile one's output off our memory.
MAX_RENDERED_BYTES = 64 * 1024 * 1024
RENDER_SECONDS = 120

POD_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class _Canonical:
    """Image lookups for the check: the canonical reference, pinned by the bundle's digest."""

    def __init__(self, images: Sequence[PulledImage]) -> None:
        self.by_ref: Dict[str, PlacedImage] = {}
        for image in images:
            ref = image.ref
            self.by_ref[str(ref)] = PlacedImage("%s@%s" % (ref.repository, image.top.digest), ref.repository, ref.tag,
                                                image.top.digest, ref.host, ref.path, by_digest=True)

    def lookup(self, text: str) -> Optional[PlacedImage]:
        return self.by_ref.get(str(parse(text)))


def pod_images(doc: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(field, container name, image) for every container of the pod template a rendered object holds."""
    path = POD_PATHS.get(doc.get("kind", ""))
    node: object = doc
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return []
    out = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in node.get(field) or []:
            if isinstance(container, dict) and container.get("image"):
                # str(): the name is whatever the template rendered, and only ever shown with %s
                out.append((field, str(container.get("name", "?")), str(container["image"])))
    return out


def _rendered(helm: str, chart: PulledChart, tgz: str, values_path: str, env: Dict[str, str], namespace: str
              ) -> Iterator[object]:
    """The documents `helm template` renders for one chart into ``namespace``, parsed from a temporary file."""
    with tempfile.TemporaryFile() as out:
        _render([helm, "template", chart.name, tgz, "-f", values_path, "--namespace", namespace],
                chart.name, env, out)
        out.seek(0)
        try:
            yield from yaml.safe_load_all(io.TextIOWrapper(out, encoding="utf-8", errors="replace"))
        except (yaml.YAMLError, RecursionError) as exc:
            raise InvalidInput("chart %s renders YAML that cannot be read (%s)"
                               % (chart.name, type(exc).__name__)) from exc


def _render(argv: List[str], name: str, env: Dict[str, str], out: IO[bytes]) -> None:
    """Run helm with its output copied into ``out`` under MAX_RENDERED_BYTES and RENDER_SECONDS: a chart
    from an untrusted repository can render without end, and must fill neither our memory nor the disk."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        stdout = proc.stdout
        if stdout is None:  # stdout=PIPE always gives one
            proc.kill()
            proc.wait()
            raise InternalError("helm's output pipe for chart %s is missing" % name)
        timed_out: List[bool] = []

        def time_out() -> None:
            timed_out.append(True)
            proc.kill()

        timer = threading.Timer(RENDER_SECONDS, time_out)
        timer.start()
        written = 0
        try:
            for chunk in iter(lambda: stdout.read(1 << 20), b""):
                written += len(chunk)
                if written > MAX_RENDERED_BYTES:
                    proc.kill()
                    raise InvalidInput("chart %s renders more than %d MiB of manifests; refused"
                                       % (name, MAX_RENDERED_BYTES >> 20))
                out.write(chunk)
        finally:
            timer.cancel()
            stdout.close()
            proc.wait()
        if timed_out:
            raise InvalidInput("chart %s takes more than %d s to render; refused" % (name, RENDER_SECONDS))
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read(64 * 1024).decode("utf-8", "replace").strip().splitlines()
            errors = [ln for ln in lines if ln.startswith("Error:")] or lines or ["helm failed"]  # not helm's hints
            raise InvalidInput("chart %s does not render with its values: %s" % (name, errors[-1]))


def check_charts(charts: Sequence[PulledChart], images: Sequence[PulledImage], cache: BlobCache, namespace: str
                 ) -> Dict[str, str]:
    """{chart: "ok" | "skipped: why"}; raises InvalidInput listing every image a chart runs that is not bundled.

    ``namespace`` is the one the installer deploys into (the manifest's spec.deploy, installer/format/deployspec.py)."""
    helm = shutil.which("helm")
    if not charts:
        return {}
    if helm is None:
        return {c.name: "skipped: helm is not on PATH" for c in charts}
    refs = _Canonical(images)
    bundled = {(str(parse(i.pinned).repository), i.digest) for i in refs.by_ref.values()}
    problems: List[str] = []
    results: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="offline-bundle-helm-") as tmp:
        env = dict(os.environ, HELM_CONFIG_HOME=tmp, HELM_CACHE_HOME=tmp, HELM_DATA_HOME=tmp)
        for chart in charts:
            base = json.loads(chart.values) if chart.values is not None else {}
            values = chart_values(base, chart.entry.images, refs.lookup, chart.name)
            values_path = os.path.join(tmp, chart.name + ".values.json")
            with open(values_path, "w", encoding="utf-8") as fh:
                json.dump(values, fh)
            for doc in _rendered(helm, chart, cache.path(chart.tgz_digest), values_path, env, namespace):
                if not isinstance(doc, dict):
                    continue
                for field, name, image in pod_images(doc):
                    try:
                        ref = parse(image)
                    except InvalidInput:
                        problems.append("chart %s: %s %s, %s %s: %r is not an image reference"
                                        % (chart.name, doc.get("kind"), doc.get("metadata", {}).get("name"), field,
                                           name, image))
                        continue
                    if (ref.repository, ref.digest) not in bundled:
                        problems.append("chart %s: %s %s, %s %s runs %s, which is not in the bundle (add it to "
                                        "spec.images and to the chart's images: value paths)"
                                        % (chart.name, doc.get("kind"), doc.get("metadata", {}).get("name"), field,
                                           name, image))
            results[chart.name] = "ok"
    if problems:
        raise InvalidInput("charts run images the bundle does not carry", sorted(set(problems)))
    return results
