"""Stand-in images for a manifest's references, served by a real local registry.

No network here: the demo and the tests build the default manifest through `--mirror docker.io=<this
registry>`. Each reference gets a small multi-platform image (amd64, arm64, arm/v7) whose only layer
says what it stands in for, so platform selection and derived indexes are exercised as with the
real images.
"""

import sys
from pathlib import Path
from typing import Dict, List

import yaml

from installer.reference import parse

from .images import RandomLayer, make_index, push
from .registry import start_registry

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7"))


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

    folder.mkdir(parents=True, exist_ok=True)
    source = start_registry(folder / "source", kind="plain")
    site = start_registry(folder / "site", kind="plain")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        seed(source, folder / "layout", manifest_refs(manifest))
        (folder / "standin.env").write_text("SOURCE=%s\nSITE=%s\n" % (source.host, site.host))
        while not stop:
            time.sleep(0.2)
    finally:
        site.stop()
        source.stop()


if __name__ == "__main__":  # python -m helpers.standin FOLDER MANIFEST (from tests/)
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
