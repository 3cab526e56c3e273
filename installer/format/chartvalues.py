"""A chart's values with its images pointed somewhere: the rule both the builder and the installer apply.

A chart entry names, for each image it runs, the dotted values path that holds it and a style
(`spec.charts[].images` in the manifest, `charts[].images` in bundle.json):

  repository-tag            {repository: REPO, tag: TAG[@DIGEST]}
  registry-repository-tag   {registry: HOST[/PREFIX], repository: PATH, tag: TAG[@DIGEST]}
  image                     "REPO@DIGEST" (or an image ID)

The builder (`helm template` check, bundler/stage/helmcheck.py) points them at the canonical
references pinned by the bundle's digests; the installer (installer/deploy/render.py) at the site.
"""

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from installer.errors import InvalidInput
from installer.format.model import ChartImage

STYLES = ("repository-tag", "registry-repository-tag", "image")


@dataclass(frozen=True)
class PlacedImage:
    """Where one bundled image is taken from: by a registry and digest, or (``by_digest`` false) by a loaded ID."""

    pinned: str       # REPO@DIGEST, or a Docker image ID
    repository: str   # the full repository (host and path)
    tag: Optional[str]
    digest: str
    registry: str     # host[/prefix]
    path: str         # the repository path under ``registry``
    by_digest: bool

    @property
    def tag_at_digest(self) -> Optional[str]:
        """The `tag` value: TAG@DIGEST (or @DIGEST) where the image is pulled by digest, else the plain tag."""
        if not self.by_digest:
            return self.tag
        return "%s@%s" % (self.tag, self.digest) if self.tag else "@" + self.digest


def set_path(values: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set a dotted path, making objects on the way; an object value is merged into an object already there."""
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


def chart_values(base: Mapping[str, Any], images: Sequence[ChartImage],
                 lookup: Callable[[str], Optional[PlacedImage]], chart: str) -> Dict[str, Any]:
    """A deep copy of ``base`` with every image value path of ``images`` set for ``lookup``'s placement."""
    values: Dict[str, Any] = json.loads(json.dumps(base))
    for spec in images:
        site = lookup(spec.ref)
        if site is None:
            raise InvalidInput("chart %s: the image %s named for %s is not in the bundle"
                               % (chart, spec.ref, spec.values))
        if spec.style == "image":
            set_path(values, spec.values, site.pinned)
        elif spec.style == "registry-repository-tag":
            set_path(values, spec.values, {"registry": site.registry, "repository": site.path,
                                           "tag": site.tag_at_digest})
        else:
            set_path(values, spec.values, {"repository": site.repository, "tag": site.tag_at_digest})
    return values
