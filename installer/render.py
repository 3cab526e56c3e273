"""Phase 4: site outputs under KIT/deploy/<name>/<version>/<site>/ (and secrets under KIT/secrets/).

- compose/: the bundle's compose files with every image the bundle carries rewritten to the site
  (SITE[/PREFIX]/<source host>/<path>@sha256:..., or with --docker and no --registry the loaded tag)
  and relative mounts (../config/x) pointing into the installed version, so `docker compose -f` works
  from the deploy folder;
- values/<chart>.yaml: per chart, the base values the bundle carries (the seed's settings) with the
  chart's image value paths set to the site's pinned references — JSON, which is YAML and which the
  standard library can write exactly;
- COMMANDS.txt: the exact commands that deploy these outputs.
The bundle's own tree is never changed: outputs are written to a temp folder and renamed into place.
"""

import json
import os
import re
from typing import Dict, List, Optional

from .errors import InvalidInput
from .fsutil import fsync_dir, write_atomic
from .kit import make_read_only, remove_tree
from .meta import Meta
from .reference import parse, site_repository

_IMAGE_LINE = re.compile(r"^(\s*(?:-\s+)?image:\s*)([\"']?)([^\"'#\s]+)\2(\s*(?:#.*)?)$")
_RELATIVE_MOUNT = re.compile(r"^(\s*-\s*[\"']?)\.\./")


class SiteRefs:
    """How each bundled image is named on one site."""

    def __init__(self, meta: Meta, host: Optional[str], prefix: str, strip: bool) -> None:
        self.by_repository: Dict[str, dict] = {}
        for image in meta.images:
            ref = parse(image.ref)
            if host:
                repo = "/".join(p for p in (host, site_repository(ref, prefix, strip)) if p)
                pinned = "%s@%s" % (repo, image.digest)
                registry, path = host + ("/" + prefix if prefix else ""), site_repository(ref, "", strip)
            else:  # --docker only: the tag Docker loaded it under
                repo = ref.repository
                pinned = "%s:%s" % (ref.repository, ref.tag) if ref.tag else "%s@%s" % (ref.repository, image.digest)
                registry, path = ref.host, ref.path
            self.by_repository[str(ref)] = {"pinned": pinned, "repository": repo, "tag": ref.tag,
                                            "digest": image.digest, "registry": registry, "path": path,
                                            "site_mode": bool(host)}

    def lookup(self, text: str) -> Optional[dict]:
        try:
            ref = parse(text)
        except InvalidInput:
            return None
        return self.by_repository.get(str(ref))


def rewrite_compose(text: str, refs: SiteRefs, version_dir: str, where: str) -> str:
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        match = _IMAGE_LINE.match(body)
        if match:
            site = refs.lookup(match.group(3))
            if site is None:
                raise InvalidInput("%s:%d: the image %s is not in the bundle" % (where, number, match.group(3)))
            body = "%s%s%s%s%s" % (match.group(1), match.group(2), site["pinned"], match.group(2), match.group(4))
        elif _RELATIVE_MOUNT.match(body):
            body = _RELATIVE_MOUNT.sub(lambda m: m.group(1) + version_dir + "/", body, count=1)
        out.append(body + end)
    return "".join(out)


def _set(values: dict, dotted: str, value) -> None:
    node = values
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    last = node.get(parts[-1])
    if isinstance(value, dict) and isinstance(last, dict):
        last.update(value)
    else:
        node[parts[-1]] = value


def chart_values(base: dict, images: List[dict], refs: SiteRefs, chart: str) -> dict:
    values = json.loads(json.dumps(base))
    for spec in images:
        site = refs.lookup(spec["ref"])
        if site is None:
            raise InvalidInput("chart %s: the image %s named for %s is not in the bundle" % (chart, spec["ref"], spec["values"]))
        tag_at_digest = ("%s@%s" % (site["tag"], site["digest"]) if site["tag"] else "@" + site["digest"]) if site["site_mode"] else site["tag"]
        style = spec.get("style", "repository-tag")
        if style == "image":
            _set(values, spec["values"], site["pinned"])
        elif style == "registry-repository-tag":
            _set(values, spec["values"], {"registry": site["registry"], "repository": site["path"], "tag": tag_at_digest})
        else:
            _set(values, spec["values"], {"repository": site["repository"], "tag": tag_at_digest})
    return values


def site_name(registry: Optional[str]) -> str:
    return registry.strip().strip("/").replace(":", "_").replace("/", "_") if registry else "docker"


def render(kit, meta: Meta, version_dir: str, registry: Optional[str], prefix_host: Optional[str], prefix: str,
           strip: bool, extra: Optional[callable] = None, tls_dir: Optional[str] = None) -> dict:
    """Write the site outputs; returns what was written (paths relative to the kit)."""
    site = site_name(registry)
    refs = SiteRefs(meta, prefix_host, prefix, strip)
    final = os.path.join(kit.deploy, meta.name, meta.version, site)
    tmp = final + ".tmp-%d" % os.getpid()
    remove_tree(tmp)
    os.makedirs(tmp)
    written: List[str] = []
    compose = sorted(p for p in meta.members if p.startswith("compose/") and p.endswith((".yaml", ".yml")))
    for path in compose:
        with open(os.path.join(version_dir, path), encoding="utf-8") as fh:
            text = rewrite_compose(fh.read(), refs, version_dir, path)
        _write(tmp, path, text.encode())
        written.append(path)
    commands = []
    for chart in meta.charts:
        base = {}
        if chart.values:
            with open(os.path.join(version_dir, chart.values), encoding="utf-8") as fh:
                base = json.load(fh)
        values = chart_values(base, chart.images, refs, chart.name)
        out = "values/%s.yaml" % chart.name
        _write(tmp, out, (json.dumps(values, indent=2, sort_keys=True) + "\n").encode())
        written.append(out)
        source = ("oci://%s/%s --version %s" % (registry.strip("/"), "charts/" + chart.name, chart.version)
                  if registry else os.path.join(version_dir, chart.path))
        commands.append("helm upgrade --install %s %s --namespace observability --create-namespace -f %s"
                        % (chart.name, source, os.path.join(final, out)))
    env = "TELEMETRY_TLS_DIR=%s TELEMETRY_TOKEN_DIR=%s " % (
        tls_dir or os.path.join(kit.secrets, "tls"), os.path.join(kit.secrets, "token"))
    for path in compose:
        commands.append("%sdocker compose -f %s up -d" % (env, os.path.join(final, path)))
    if extra is not None:
        more_files, more_commands = extra(tmp, final)
        written += more_files
        commands = more_commands + commands
    _write(tmp, "COMMANDS.txt", ("".join(c + "\n" for c in commands)).encode())
    written.append("COMMANDS.txt")
    make_read_only(tmp)
    old = final + ".old-%d" % os.getpid()
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(os.path.dirname(final))
    remove_tree(old)
    return {"site": site, "folder": os.path.relpath(final, kit.root), "files": sorted(written), "commands": commands}


def _write(root: str, rel: str, data: bytes) -> None:
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, data, mode=0o444)
