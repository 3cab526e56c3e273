"""foreign-layers: include: fetch a foreign (non-distributable) layer from the URLs its descriptor names.

Windows base layers are served by their publisher (mcr.microsoft.com), not by the registry that holds the
manifest. The URLs come from the manifest, so they are hostile until checked: each goes through
chartrepo.ChartRepoClient's rules (http(s) only, https unless the host is named insecure, no credentials in the URL
and none sent — no registry token, no netrc, no cookies —, checked redirects), the body is capped at the size the
descriptor declares, and the bytes become a cache entry only when they hash to the descriptor's digest.
"""

from typing import TYPE_CHECKING, List

from installer.errors import ContentMismatch, RegistryError
from installer.format.oci import Descriptor

from bundler.pull.chartrepo import ChartRepoClient, shown_url

if TYPE_CHECKING:
    from bundler.pull.images import BlobCache

MAX_URLS = 8  # tried in order; a descriptor naming more is read for its first eight


def layer_urls(layer: Descriptor) -> List[str]:
    urls = layer.urls if isinstance(layer.urls, list) else []
    return [u for u in urls if isinstance(u, str) and len(u) <= 2048][:MAX_URLS]


def fetch_foreign_layer(web: ChartRepoClient, cache: "BlobCache", layer: Descriptor, where: str) -> None:
    """Put ``layer`` into ``cache`` from the first of its URLs that serves exactly its bytes."""
    urls = layer_urls(layer)
    if not urls:
        raise RegistryError("%s: the foreign layer %s names no URL to fetch it from (foreign-layers: include); "
                            "use foreign-layers: skip" % (where, layer.digest))
    problems = []

    def check(digest: str, size: int) -> None:
        if digest != layer.digest or size != layer.size:
            raise ContentMismatch("served %d bytes hashing to %s, not the %d bytes of %s"
                                  % (size, digest, layer.size, layer.digest))

    for url in urls:
        try:
            cache.put_stream(web.chunks(url, where, layer.size, "this foreign layer (its declared size)"), check)
            return
        except (RegistryError, ContentMismatch) as exc:
            problems.append("%s: %s" % (shown_url(url), str(exc).replace(where + ": ", "")))
    raise RegistryError("%s: the foreign layer %s could not be fetched from its URLs (%s)"
                        % (where, layer.digest, "; ".join(problems)))

