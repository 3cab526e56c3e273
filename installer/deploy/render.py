"""Phase 4: site outputs under KIT/deploy/<name>/<version>/<site>/ (and secrets under KIT/secrets/).

- compose/: the bundle's compose files with every image the bundle carries rewritten to the site
  (SITE[/PREFIX]/<source host>/<path>@sha256:..., named by installer/format/reference.py as the push names
  it, or with --docker and no --registry the loaded image ID)
  and relative mounts (../config/x) pointing into the installed version, so `docker compose -f` works
  from the deploy folder;
- values/<chart>.yaml: per chart, the base values the bundle carries with the chart's image value
  paths set to the site's pinned references (installer/format/chartvalues.py) — JSON, which is YAML
  and which the standard library can write exactly;
- COMMANDS.txt: the exact commands that deploy these outputs, every argument shell-quoted, charts and
  images named by digest (a tag on the site may belong to, or be moved by, another bundle): helm into
  the namespace of the bundle's `deploy` section, compose with the environment variables it names
  set to the site's TLS and token folders (installer/format/deployspec.py; docs/FORMAT.md says what
  a bundle without a `deploy` section gets).
Files of the installed version are read without following links and no larger than their signed size.
The bundle's own tree is never changed: outputs are written to a temp folder and renamed into place.
"""

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from installer.errors import InvalidInput
from installer.fsutil import fsync_dir, read_installed, write_atomic
from installer.kit.layout import Kit, make_read_only, remove_tree
from installer.format.chartvalues import PlacedImage, chart_values
from installer.format.deployspec import SECRETS_GID, DeploySpec, namespace_of
from installer.format.model import BundleHead, Chart
from installer.format.reference import chart_repository, parse, site_reference, site_repository

_IMAGE_LINE = re.compile(r"^(\s*(?:-\s+)?image:\s*)([\"']?)([^\"'#\s]+)\2(\s*(?:#.*)?)$")
_RELATIVE_MOUNT = re.compile(r"^(\s*-\s*[\"']?)\.\./")


@dataclass(frozen=True)
class DeployCommand:
    """One deploy command: an argument list (never a shell string) and the environment it runs with."""

    argv: List[str]
    env: Mapping[str, str] = field(default_factory=dict)  # the compose variables of the deploy section


@dataclass(frozen=True)
class Rendered:
    """What phase 4 wrote for one site under KIT/deploy/<name>/<version>/<site>/."""

    site: str                   # the folder's name: the --registry value made a file name, or "docker"
    folder: str                 # relative to the kit
    files: List[str]            # relative to ``folder``, sorted
    commands: List[str]         # the lines of COMMANDS.txt
    argv: List[DeployCommand]   # the same commands, as argument lists


# Files and commands the caller adds to a site's outputs: (temp folder, final folder) -> (files, commands).
Extra = Callable[[str, str], Tuple[List[str], List[DeployCommand]]]


class SiteRefs:
    """How each bundled image is named on one site: always by digest (a tag can be moved by others).

    With a site registry: SITE/repo@<manifest digest>. With --docker only: the loaded image's ID (its config
    digest, which phase 3 proved Docker holds), since loaded images have no registry digest and their tags
    can be re-pointed by any later `docker load` or `docker tag`."""

    def __init__(self, meta: BundleHead, host: Optional[str], prefix: str, strip: bool,
                 loaded_ids: Optional[Dict[str, str]] = None) -> None:
        self.by_repository: Dict[str, PlacedImage] = {}
        for image in meta.images:
            ref = parse(image.ref)
            if host:
                on_site = site_repository(ref, prefix, strip)
                repo, pinned = site_reference(host, on_site), site_reference(host, on_site, digest=image.digest)
                registry, path = host + ("/" + prefix if prefix else ""), site_repository(ref, "", strip)
            else:  # --docker only: the ID of the image Docker loaded
                repo = ref.repository
                pinned = (loaded_ids or {}).get(image.ref) or "%s@%s" % (ref.repository, image.digest)
                registry, path = ref.host, ref.path
            self.by_repository[str(ref)] = PlacedImage(pinned, repo, ref.tag, image.digest, registry, path,
                                                       by_digest=bool(host))

    def lookup(self, text: str) -> Optional[PlacedImage]:
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
            body = "%s%s%s%s%s" % (match.group(1), match.group(2), site.pinned, match.group(2), match.group(4))
        elif _RELATIVE_MOUNT.match(body):
            body = _RELATIVE_MOUNT.sub(lambda m: m.group(1) + version_dir + "/", body, count=1)
        out.append(body + end)
    return "".join(out)


def site_name(registry: Optional[str]) -> str:
    """The deploy/ folder name for a site: the --registry value with ':' and '/' turned into '_', or "docker"."""
    return registry.strip().strip("/").replace(":", "_").replace("/", "_") if registry else "docker"


def shell_line(command: DeployCommand) -> str:
    """One command as a shell line: every argument quoted, so a path with spaces or `$(...)` stays one inert word."""
    env = ["%s=%s" % (k, shlex.quote(v)) for k, v in sorted(command.env.items())]
    return " ".join(env + [shlex.quote(a) for a in command.argv])


def helm_command(chart: Chart, host: Optional[str], prefix: str, version_dir: str, values: str,
                 namespace: str) -> DeployCommand:
    """helm upgrade --install, the chart named by digest on the site (or the bundle's own archive)."""
    if host:
        source = "oci://" + site_reference(host, chart_repository(prefix, chart.name), digest=chart.oci.digest)
    else:
        source = os.path.join(version_dir, *chart.path.split("/"))
    return DeployCommand(["helm", "upgrade", "--install", chart.name, source, "--namespace", namespace,
                          "--create-namespace", "-f", values])


def compose_env(deploy: Optional[DeploySpec], folders: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """The variables the deploy section names for compose, each set to the site folder it points at
    (``folders``: tls, token and s3 -> their paths; secrets-gid -> the group that may read them, or None when
    no group may, and then the variable is left unset for compose to refuse by name); none without a
    deploy section."""
    if deploy is None:
        return {}
    return {name: value for name, value in ((n, folders.get(f)) for n, f in deploy.env) if value is not None}


def render(kit: Kit, meta: BundleHead, version_dir: str, registry: Optional[str], prefix_host: Optional[str],
           prefix: str, strip: bool, extra: Optional[Extra] = None, tls_dir: Optional[str] = None,
           loaded_ids: Optional[Dict[str, str]] = None, secrets_gid: Optional[int] = None) -> Rendered:
    """Write the site outputs; returns what was written (paths relative to the kit) and the commands."""
    site = site_name(registry)
    refs = SiteRefs(meta, prefix_host, prefix, strip, loaded_ids)
    final = os.path.join(kit.deploy, meta.name, meta.version, site)
    tmp = final + ".tmp-%d" % os.getpid()
    for folder in (os.path.dirname(os.path.dirname(final)), os.path.dirname(final)):  # deploy/<name>/<version>
        kit.make_dir(folder, 0o755, enforce=False)  # made here, or a real folder of ours: never a link
    remove_tree(tmp)
    os.makedirs(tmp, mode=0o755)
    written: List[str] = []
    namespace = namespace_of(meta.deploy, meta.name)
    compose = sorted(p for p in meta.sizes if p.startswith("compose/") and p.endswith((".yaml", ".yml")))
    for path in compose:
        text = _member_text(version_dir, path, meta.sizes[path])
        _write(tmp, path, rewrite_compose(text, refs, version_dir, path).encode())
        written.append(path)
    commands: List[DeployCommand] = []
    for chart in meta.charts:
        base = json.loads(_member_text(version_dir, chart.values, meta.sizes[chart.values])) if chart.values else {}
        if not isinstance(base, dict):
            raise InvalidInput("%s is not a JSON object" % chart.values)
        out = "values/%s.yaml" % chart.name
        _write(tmp, out, (json.dumps(chart_values(base, chart.images, refs.lookup, chart.name), indent=2,
                                     sort_keys=True) + "\n").encode())
        written.append(out)
        commands.append(helm_command(chart, prefix_host, prefix, version_dir, os.path.join(final, out),
                                     namespace))
    env = compose_env(meta.deploy, {"tls": tls_dir or os.path.join(kit.secrets, "tls"),
                                    "token": os.path.join(kit.secrets, "token"),
                                    "s3": os.path.join(kit.secrets, "s3"),
                                    SECRETS_GID: None if secrets_gid is None else str(secrets_gid)})
    for path in compose:
        commands.append(DeployCommand(["docker", "compose", "-f", os.path.join(final, path), "up", "-d"], env))
    if extra is not None:
        more_files, more_commands = extra(tmp, final)
        written += more_files
        commands = more_commands + commands
    lines = [shell_line(c) for c in commands]
    _write(tmp, "COMMANDS.txt", ("".join(line + "\n" for line in lines)).encode())
    written.append("COMMANDS.txt")
    make_read_only(tmp)
    old = final + ".old-%d" % os.getpid()
    if os.path.lexists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(os.path.dirname(final))
    remove_tree(old)
    return Rendered(site, os.path.relpath(final, kit.root), sorted(written), lines, commands)


def _member_text(version_dir: str, path: str, size: int) -> str:
    """A file of the installed version, read without following a link and no larger than its signed size."""
    try:
        return read_installed(version_dir, path, size).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("%s is not UTF-8 text" % path) from exc


def _write(root: str, rel: str, data: bytes) -> None:
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_atomic(path, data, mode=0o444)
