"""Who we are to one registry host: the WWW-Authenticate challenge, bearer tokens per scope, basic credentials.

- Bearer: on a challenge, a token is asked of the token service the registry names (``realm``), for the
  scopes of the request (pull; pull+push; pull on a mount source) plus any the challenge adds, and kept per
  scope until 10 s before it expires. The token service gets our basic credentials only over TLS or when it
  is a host named insecure; a plain-HTTP token service elsewhere is refused.
- Basic: sent to the registry host only (never to another host a redirect names), only over TLS or to a
  host named insecure, and only after the registry asked for it; refused twice means wrong credentials.
- Credentials (from installer/site/credentials.py) are never logged and never put in a message.
"""

import base64
import json
import threading
import time
import urllib.parse
from typing import Callable, Dict, Optional, Sequence, Tuple

from installer.errors import RegistryError
from installer.site import errorbody

Credentials = Optional[Tuple[str, str]]
# (scheme, netloc, target, headers) -> (status, body): one small GET, retried by the caller's policy
Fetch = Callable[[str, str, str, Dict[str, str]], Tuple[int, bytes]]


def parse_www_authenticate(value: str) -> Tuple[str, Dict[str, str]]:
    """'Bearer realm="...",service="...",scope="..."' -> ('bearer', {...})."""
    scheme, _, rest = value.strip().partition(" ")
    params: Dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip().lower()
        j = eq + 1
        if j < len(rest) and rest[j] == '"':
            end = j + 1
            out = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                out.append(rest[end])
                end += 1
            params[key] = "".join(out)
            i = end + 1
        else:
            end = rest.find(",", j)
            end = len(rest) if end < 0 else end
            params[key] = rest[j:end].strip()
            i = end + 1
    return scheme.lower(), params


class Auth:
    """The Authorization state of one registry host. Thread-safe."""

    def __init__(self, host: str, credentials: Credentials, plain_allowed: Callable[[str], bool]) -> None:
        self.host = host
        self._credentials = credentials
        self._plain_allowed = plain_allowed
        self._tokens: Dict[Tuple[str, ...], Tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._basic_ok = False

    def __repr__(self) -> str:
        return "Auth(%s, credentials=%s)" % (self.host, "yes" if self._credentials else "no")

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    def _basic(self) -> str:
        assert self._credentials is not None
        user, secret = self._credentials
        return "Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()

    def may_send_basic(self, scheme: str, netloc: str) -> bool:
        return self._credentials is not None and (scheme == "https" or self._plain_allowed(netloc))

    def header(self, scopes: Tuple[str, ...]) -> Optional[str]:
        """The Authorization header for a request to the registry host with these scopes, if we have one."""
        with self._lock:
            token = self._tokens.get(scopes)
        if token and token[1] > time.time():
            return "Bearer " + token[0]
        if self._basic_ok and self._credentials:
            return self._basic()
        return None

    def challenged(self, challenge: str, scopes: Tuple[str, ...], scheme: str, netloc: str, fetch: Fetch) -> None:
        """The registry answered 401 with ``challenge``: get what the next attempt needs, or refuse."""
        kind, params = parse_www_authenticate(challenge)
        if kind == "bearer":
            with self._lock:
                self._tokens.pop(scopes, None)
            self._fetch_token(params, scopes, fetch)
        elif kind == "basic":
            if not self._credentials:
                raise RegistryError("%s needs credentials and none were found (docker login, or BUNDLE_REGISTRY_USER "
                                    "and BUNDLE_REGISTRY_PASSWORD where they apply)" % self.host)
            if not self.may_send_basic(scheme, netloc):
                raise RegistryError("%s asks for a password over plain HTTP; refused (name it with --insecure-registry "
                                    "to allow that)" % self.host)
            if self._basic_ok:
                raise RegistryError("authentication to %s failed: the credentials were refused" % self.host)
            self._basic_ok = True
        else:
            raise RegistryError("%s asks for an unsupported authentication scheme %r" % (self.host, kind))

    def token_request(self, params: Dict[str, str], scopes: Sequence[str]) -> Tuple[str, str, str, Dict[str, str]]:
        """(scheme, netloc, target, headers) of the GET that asks the token service for ``scopes``."""
        realm = params.get("realm")
        if not realm:
            raise RegistryError("%s asked for a bearer token without naming a token service" % self.host)
        url = urllib.parse.urlsplit(realm)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise RegistryError("%s named an unusable token service" % self.host)
        if url.scheme == "http" and not self._plain_allowed(url.netloc):
            raise RegistryError("%s sends us to a plain-HTTP token service at %s; name it with --insecure-registry "
                                "if that is intended" % (self.host, url.netloc))
        query = [("service", params["service"])] if params.get("service") else []
        wanted = list(scopes)
        if params.get("scope"):
            wanted += [s for s in params["scope"].split(" ") if s not in wanted]
        query += [("scope", s) for s in wanted]
        target = (url.path or "/") + "?" + urllib.parse.urlencode(query) + ("&" + url.query if url.query else "")
        headers: Dict[str, str] = {}
        if self.may_send_basic(url.scheme, url.netloc):
            headers["Authorization"] = self._basic()
        return url.scheme, url.netloc, target, headers

    def _fetch_token(self, params: Dict[str, str], scopes: Tuple[str, ...], fetch: Fetch) -> None:
        status, body = fetch(*self.token_request(params, scopes))
        if status == 401:
            raise RegistryError("authentication to %s failed: the token service refused the credentials%s"
                                % (self.host, "" if self._credentials else " (no credentials were found for it)"))
        if status != 200:
            said = errorbody.said(body)
            raise RegistryError("the token service of %s answered HTTP %d%s" % (self.host, status,
                                                                              " (%s)" % said if said else ""))
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as exc:
            raise RegistryError("the token service of %s answered something that is not a token" % self.host) from exc
        if not isinstance(token, str) or not token:
            raise RegistryError("the token service of %s answered without a token" % self.host)
        with self._lock:
            self._tokens[scopes] = (token, time.time() + max(ttl - 10, 1))
