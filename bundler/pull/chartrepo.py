"""HTTP chart repositories as an untrusted source: every byte counted, every redirect judged.

A chart repository (or whoever sits between us and it) may answer an endless body, a body larger
than it declares, a redirect from https to plain http or to another host, or a loop of redirects.
What this module guarantees, in the order it is checked on each request:
(1) the URL is http(s), carries no credentials (user:password@ would become an Authorization
    header and end up in bundle.json), and is plain http only for a host named --insecure-registry;
(2) redirects are followed here, at most ``LIMITS.redirects`` of them, each target checked as in (1):
    https -> http is refused unless the target host is named insecure;
(3) nothing adds credentials: the session ignores the environment and ~/.netrc (trust_env off) and
    keeps no cookies, and no Authorization header is ever set, so none can follow a redirect;
(4) a declared Content-Length over the cap is refused before reading, and the bytes are counted
    anyway (a declared length is never trusted); a compressed transfer encoding is refused, since
    it would be a second, uncapped decompression;
(5) bodies stream to disk (the index to a temporary file, a chart archive into the blob cache,
    hashed while written); past a cap the request stops with RegistryError (exit 7).
"""

import http.cookiejar
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Iterator, Optional, Sequence, Type

from installer.errors import BundleError, RegistryError

if TYPE_CHECKING:  # imported when first used: requests is not loaded by builds without HTTP chart repositories
    import requests

MiB = 1024 * 1024
CHUNK = MiB
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class ChartLimits:
    """Every cap on what a chart source may make the build read (as python-tuf's ngclient config).

    Helm itself refuses a chart that unpacks to more than 100 MiB or holds a file over 5 MiB, so
    nothing past these caps could be a chart Helm would install.
    """

    index_bytes: int = 64 * MiB      # index.yaml: the largest public repositories' indexes are tens of MiB
    # archive_bytes: a chart .tgz as served (or an OCI chart layer): gzip does not grow past Helm's 100 MiB
    archive_bytes: int = 100 * MiB
    unpacked_bytes: int = 256 * MiB  # decompressed bytes scanned for Chart.yaml: a gzip bomb stops here
    chart_yaml_bytes: int = 1 * MiB  # Chart.yaml itself
    redirects: int = 5               # hops followed for one request


LIMITS = ChartLimits()


def _host(parts: urllib.parse.SplitResult) -> str:
    """host[:port] without any user:password@ (which must never reach a message)."""
    return parts.netloc.rpartition("@")[2]


def shown_url(url: str) -> str:
    """A URL as it may appear in a message or bundle.json: any credentials replaced."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + _host(parts)))


class ChartRepoClient:
    """GETs for chart repositories through the rules above; one requests session per build."""

    def __init__(self, registry_ca: Optional[str], insecure: Sequence[str]) -> None:
        self.registry_ca = registry_ca
        self.insecure = set(insecure)
        self._session: Optional["requests.Session"] = None

    def _http(self) -> "requests.Session":
        if self._session is None:
            import requests
            import urllib3

            # A host named --insecure-registry is the user's informed choice: no warning on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            session = requests.Session()
            session.trust_env = False  # (3) no proxies, CA bundle or ~/.netrc credentials from the environment
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # (3) no cookies
            self._session = session
        return self._session

    def check_url(self, url: str, where: str, error: Type[BundleError] = RegistryError, via: str = ""
                  ) -> urllib.parse.SplitResult:
        """(1) for the manifest's own URL (``error`` InvalidInput) and, with ``via``, for each redirect."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise error("%s: %s is not an http(s) URL" % (where, ascii(shown_url(url))[:200]))
        if parts.username is not None or parts.password is not None:
            raise error("%s: %s carries credentials (user:password@); chart repositories are read without "
                        "them, refused" % (where, shown_url(url)))
        host = _host(parts)
        if parts.scheme == "http" and host not in self.insecure and parts.hostname not in self.insecure:
            what = "%s redirected to plain HTTP at %s" % (via, host) if via else "%s is plain HTTP" % url
            raise RegistryError("%s: %s; refused (name %s with --insecure-registry if that is intended)"
                                % (where, what, host))
        return parts

    def open(self, url: str, where: str) -> "requests.Response":
        """(2) GET ``url`` following redirects here; the unread 200 response (streaming)."""
        import requests

        first, previous = url, ""
        for _hop in range(LIMITS.redirects + 1):
            parts = self.check_url(url, where, via=shown_url(previous) if previous else "")
            verify = False if _host(parts) in self.insecure else (self.registry_ca or True)
            try:
                resp = self._http().get(url, stream=True, timeout=60, verify=verify, allow_redirects=False,
                                        headers={"Accept-Encoding": "identity"})
            except requests.exceptions.SSLError as exc:
                raise RegistryError("%s: cannot verify the TLS certificate of %s; pass --registry-ca FILE"
                                    % (where, _host(parts))) from exc
            except requests.exceptions.RequestException as exc:
                raise RegistryError("%s: cannot reach %s (%s)" % (where, _host(parts), type(exc).__name__)) from exc
            if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                resp.close()
                previous, url = url, urllib.parse.urljoin(url, resp.headers["Location"])
                continue
            if resp.status_code != 200:
                resp.close()
                raise RegistryError("%s: %s answered HTTP %d" % (where, shown_url(url), resp.status_code))
            return resp
        raise RegistryError("%s: %s redirected more than %d times; refused"
                            % (where, shown_url(first), LIMITS.redirects))

    def chunks(self, url: str, where: str, cap: int, what: str) -> Iterator[bytes]:
        """(4) The body of GET ``url`` in chunks, at most ``cap`` bytes or RegistryError."""
        import requests

        def too_big() -> RegistryError:
            return RegistryError("%s: %s is larger than %d MiB, more than %s may be; refused"
                                 % (where, shown_url(url), cap // MiB, what))

        resp = self.open(url, where)
        try:
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise too_big()
            encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise RegistryError("%s: %s was sent with Content-Encoding %s, which was not asked for; refused"
                                    % (where, shown_url(url), ascii(encoding)[:40]))
            seen = 0
            try:
                for chunk in resp.iter_content(CHUNK):
                    seen += len(chunk)
                    if seen > cap:
                        raise too_big()
                    yield chunk
            except requests.exceptions.RequestException as exc:
                raise RegistryError("%s: the connection to %s failed while reading %s (%s)"
                                    % (where, _host(urllib.parse.urlsplit(url)), shown_url(url),
                                       type(exc).__name__)) from exc
        finally:
            resp.close()

    def spool(self, url: str, where: str, cap: int, what: str) -> BinaryIO:
        """(5) The body in an anonymous temporary file (gone when closed), rewound."""
        out = tempfile.TemporaryFile()
        try:
            for chunk in self.chunks(url, where, cap, what):
                out.write(chunk)
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return out
