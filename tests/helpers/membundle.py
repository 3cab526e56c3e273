"""Bundles built in-process from an in-memory source registry (helpers/memregistry.py), for unit tests of push,
pull and the install phases: no registry process, no subprocess, a build of a few images in well under a second.

    source = MemRegistry("src.test")
    app = source.seed_image("team/app", "1.0", [b"layer"])
    archive = build_bundle(source, tmp_path, key, images=["src.test/team/app:1.0"])
    result, inst = install_into(archive, tmp_path / "kit", pub)  # no registry: result.path, result.meta
"""

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import pytest
from bundler.build import build
from bundler.stage.stage import SourceOptions
from installer.install import DeployOptions, Installer, InstallResult

from .memregistry import MemRegistry

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def chart_tgz(name: str, version: str) -> bytes:
    """A minimal Helm chart archive (Chart.yaml and values.yaml, no templates), byte-reproducible."""
    files = {"%s/Chart.yaml" % name: ("apiVersion: v2\nname: %s\nversion: %s\ndescription: a test chart\n"
                                      % (name, version)).encode(),
             "%s/values.yaml" % name: b"{}\n"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def seed_chart(registry: MemRegistry, repo: str, name: str, version: str) -> str:
    """Push a chart as Helm does (config + chart layer, tagged with the version); its manifest digest."""
    tgz = chart_tgz(name, version)
    config = json.dumps({"apiVersion": "v2", "name": name, "version": version}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": registry.put_blob(repo, config), "size": len(config)},
        "layers": [{"mediaType": HELM_CHART, "digest": registry.put_blob(repo, tgz), "size": len(tgz)}],
    }, sort_keys=True).encode()
    return registry.put_manifest(repo, manifest, OCI_MANIFEST, version.replace("+", "_"))


def manifest_yaml(folder: Path, name: str, version: str, images: Sequence[Union[str, Dict[str, object]]] = (),
                  charts: Sequence[Tuple[str, str]] = ()) -> Path:
    """A bundle manifest with one small file, these images (a reference, or an entry with its options, e.g.
    ``{"ref": ..., "signed-by": "cosign.pub", "referrers": False}``) and these OCI charts (ref, version)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.yaml").write_text("listen: 9090\n")
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: %s" % name,
             '  version: "%s"' % version, '  created: "2026-11-26T00:00:00Z"', "spec:", "  files:",
             "    - source: app.yaml", "      target: config/app.yaml"]
    if images:
        lines.append("  images:")
        for entry in images:
            entry = {"ref": entry} if isinstance(entry, str) else entry
            lines.append("    - ref: %s" % entry["ref"])
            lines += ["      %s: %s" % (k, json.dumps(v)) for k, v in entry.items() if k != "ref"]
    if charts:
        lines.append("  charts:")
        for ref, chart_version in charts:
            lines += ["    - ref: %s" % ref, '      version: "%s"' % chart_version]
    path = folder / "bundle.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def build_bundle(source: MemRegistry, folder: Path, key: Path, images: Sequence[Union[str, Dict[str, object]]] = (),
                 charts: Sequence[Tuple[str, str]] = (), name: str = "demo", version: str = "1.0.0",
                 sbom: bool = True) -> Path:
    """Build a signed bundle whose images and charts come from ``source`` (named insecure); the archive path.
    No credentials of the machine's reach the build: an empty Docker config, no BUNDLE_REGISTRY_* variables.
    ``sbom`` False: as --no-sbom."""
    m = manifest_yaml(folder / "src", name, version, images, charts)
    opts = SourceOptions(cache_dir=str(folder / "cache"), insecure=(source.host,), show_progress=False,
                         transport=source, sbom=sbom)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(folder / "no-docker-config"))
        for variable in ("BUNDLE_REGISTRY_USER", "BUNDLE_REGISTRY_PASSWORD", "BUNDLE_REGISTRY_HOSTS"):
            mp.delenv(variable, raising=False)
        result = build(str(m), str(key), str(folder / "out"), opts=opts)
    return Path(result["archive"])


def install_into(archive: Path, kit: Path, pub: Path,
                 deploy: Optional[DeployOptions] = None) -> Tuple[InstallResult, Installer]:
    """Install in-process (the CLI's install without its argument parsing); (result, the Installer)."""
    inst = Installer(str(archive), str(kit), trust=[str(pub)], show_progress=False, deploy=deploy)
    return inst.run(), inst


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()

