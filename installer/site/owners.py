"""Which bundle name owns each tag the kit has moved on a site (issue 10, point 2).

A key is trusted for bundle *names*. Pushing by digest changes nothing anyone relies on, but moving a tag
changes what every reader of that tag gets: so the kit records, per site, which bundle name moved each
tag last (KIT/.state/owners.json), and a bundle may move a tag another name owns only when its signer is
trusted for that name too. Otherwise the install is refused (exit 4) before anything is written, naming
both bundles. Sites are the registry host (with port) and "docker" for the local engine; a tag is written
`repository:tag` as it is on that site.

What this cannot see: tags moved by another kit or by hand on the same registry. The site registry's own
access control is the boundary there (docs/SECURITY.md).
"""

from typing import Dict, List, Optional

from installer.errors import TrustError
from installer.format.model import BundleHead
from installer.site.push import parse_site, planned_tags, site_repositories
from installer.format.reference import parse, site_reference
from installer.trust.store import TrustedKey

DOCKER_SITE = "docker"


def registry_tags(meta: BundleHead, registry: str, strip: bool) -> Dict[str, str]:
    """{"repository:tag": digest} that phase 6 points on the site registry named by --registry."""
    _host, prefix = parse_site(registry)
    return {"%s:%s" % (repo, tag): digest for repo, tag, digest, _mt in planned_tags(meta, prefix, strip)}


def docker_tags(meta: BundleHead, registry: Optional[str], strip: bool) -> Dict[str, str]:
    """{"repository:tag": image ref} that --docker gives the loaded images in the local engine."""
    out = {}
    repos = {}
    host, prefix = parse_site(registry) if registry else (None, "")
    if host:
        repos = site_repositories(meta, prefix, strip)
    for image in meta.images:
        ref = parse(image.ref)
        if not ref.tag:
            continue
        out["%s:%s" % (ref.repository, ref.tag)] = image.ref
        if host:
            out[site_reference(host, repos[image.ref], ref.tag)] = image.ref
    return out


def site_key(registry: str) -> str:
    return parse_site(registry)[0].lower()


def conflicts(owned: Dict[str, Dict[str, str]], tags: Dict[str, str], name: str, signer: TrustedKey,
              where: str) -> List[str]:
    """One line per tag owned by another bundle name that ``signer`` is not trusted for."""
    problems = []
    for tag in sorted(tags):
        owner = owned.get(tag)
        if owner is None or owner.get("name") == name:
            continue
        if signer.scope_problem(owner["name"]):
            problems.append("%s%s belongs to bundle %s (version %s); the signer of %s, %s, is not trusted for %s"
                            % (where, tag, owner["name"], owner.get("version", "?"), name, signer.fingerprint,
                               owner["name"]))
    return problems


def refuse(problems: List[str], name: str, version: str) -> None:
    if problems:
        raise TrustError("%s %s may not move tags that belong to other bundles; nothing was changed"
                         % (name, version), problems)


def claims(tags: Dict[str, str], meta: BundleHead, bundle_id: str) -> Dict[str, Dict[str, str]]:
    return {tag: {"name": meta.name, "version": meta.version, "bundle_id": bundle_id} for tag in tags}
