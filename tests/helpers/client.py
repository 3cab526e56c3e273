"""A minimal Distribution API client (requests-based) for assertions and hand-made uploads.

It is a test oracle and seeding tool, not the product's client: one retry after a 401, tokens cached per scope.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import requests

if TYPE_CHECKING:
    from .registry import Registry


_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
])


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryError(Exception):
    def __init__(self, resp: requests.Response) -> None:
        super().__init__("%s %s -> %d %s" % (resp.request.method, resp.request.url, resp.status_code, resp.text[:500]))
        self.response = resp
        self.status = resp.status_code


class RegistryClient:
    """Talks to a test registry with the Distribution API, handling basic and bearer challenges.

    Intentionally simple (one retry after a 401, tokens cached per scope): it is a test oracle and
    seeding tool, not the product's client.
    """

    def __init__(self, registry: Registry, username: Optional[str], password: Optional[str]) -> None:
        self.registry = registry
        self.base = registry.url
        self.username, self.password = username, password
        self.session = requests.Session()
        # trust_env=False: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on dev machines) would otherwise
        # override session.verify, and *_PROXY must never divert loopback test traffic
        self.session.trust_env = False
        self.session.verify = registry.verify()
        self._auth_header: Optional[str] = None
        self._tokens: Dict[str, str] = {}

    def _authorize(self, challenge: str) -> Optional[str]:
        scheme = challenge.split(" ", 1)[0].lower()
        params = dict(_CHALLENGE_RE.findall(challenge))
        if scheme == "basic":
            if self.username is None:
                return None
            return "Basic " + base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        if scheme == "bearer":
            scope = params.get("scope", "")
            if scope in self._tokens:
                return "Bearer " + self._tokens[scope]
            q = {"service": params.get("service", "")}
            if scope:
                q["scope"] = scope
            auth = (self.username, self.password) if self.username else None
            r = self.session.get(params["realm"], params=q, auth=auth, timeout=30)
            if r.status_code != 200:
                raise RegistryError(r)
            body = r.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
            return "Bearer " + self._tokens[scope]
        return None

    def request(self, method: str, path_or_url: str, ok=(200, 201, 202, 204, 206, 307), **kw) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        headers = dict(kw.pop("headers", {}) or {})
        kw.setdefault("timeout", 60)
        kw.setdefault("allow_redirects", False)
        if self._auth_header:
            headers.setdefault("Authorization", self._auth_header)
        r = self.session.request(method, url, headers=headers, **kw)
        if r.status_code == 401 and "WWW-Authenticate" in r.headers:
            value = self._authorize(r.headers["WWW-Authenticate"])
            if value:
                if value.startswith("Basic"):
                    self._auth_header = value
                headers["Authorization"] = value
                data = kw.get("data")
                if hasattr(data, "seek"):
                    data.seek(0)
                r = self.session.request(method, url, headers=headers, **kw)
        if ok and r.status_code not in ok:
            raise RegistryError(r)
        return r

    # -- conveniences
    def manifest(self, repo: str, ref: str, accept: str = ACCEPT_ALL) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest as the registry serves it."""
        r = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": accept})
        return r.content, r.headers.get("Content-Type", ""), sha256_digest(r.content)

    def has_manifest(self, repo: str, ref: str) -> bool:
        r = self.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref), ok=None, headers={"Accept": ACCEPT_ALL})
        return r.status_code == 200

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=data,
                         headers={"Content-Type": media_type})
        return r.headers.get("Docker-Content-Digest") or sha256_digest(data)

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=None).status_code == 200

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.request("GET", "/v2/%s/blobs/%s" % (repo, digest), allow_redirects=True)
        return r.content

    def upload_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=); returns the digest."""
        digest = sha256_digest(data)
        if self.has_blob(repo, digest):
            return digest
        r = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        loc = urllib.parse.urljoin(self.base + "/", r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        self.request("PUT", loc + sep + "digest=" + digest, data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def tags(self, repo: str) -> List[str]:
        r = self.request("GET", "/v2/%s/tags/list" % repo)
        return r.json().get("tags") or []

    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest))
