"""Registry credentials, given only to the host actually contacted (docs/SECURITY.md, "Registries" in docs/FORMAT.md).

- Docker's config.json (`$DOCKER_CONFIG/config.json`, else ~/.docker/config.json): `auths`,
  `credHelpers`, `credsStore`, for the host actually contacted (a mirror, never the original).
- BUNDLE_REGISTRY_USER / BUNDLE_REGISTRY_PASSWORD: at install only for the --registry host; at
  build only for hosts listed in BUNDLE_REGISTRY_HOSTS.
Secrets are returned to the caller and never logged or put in a message.
"""

import base64
import json
import os
import subprocess
from typing import Any, Dict, Iterable, Optional, Tuple

from installer.errors import UsageError

Credentials = Optional[Tuple[str, str]]
HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def _config_path() -> str:
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(folder, "config.json")


def _load_config() -> Dict[str, Any]:
    path = _config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # from None: a JSON error carries the whole file (.doc), and the file holds registry passwords.
        raise UsageError("cannot read the Docker config %s (not JSON?)" % path) from None
    return doc if isinstance(doc, dict) else {}


def _keys_for(host: str) -> Iterable[str]:
    yield host
    yield "https://" + host
    yield "http://" + host
    yield "https://%s/v1/" % host
    yield "https://%s/v2/" % host
    if host in HUB_KEYS:
        yield from HUB_KEYS


def _from_helper(helper: str, host: str) -> Credentials:
    exe = "docker-credential-" + helper
    try:
        proc = subprocess.run([exe, "get"], input=host.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
    except FileNotFoundError as exc:
        raise UsageError("the Docker config names the credential helper %s, which is not installed" % exe) from exc
    except subprocess.TimeoutExpired:
        # from None: the timeout carries what the helper printed so far (.stdout), which may be a secret.
        raise UsageError("the credential helper %s did not answer within 30 s" % exe) from None
    if proc.returncode != 0:
        return None  # "credentials not found" is the helper's normal answer for other hosts
    try:
        doc = json.loads(proc.stdout)
        return doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        # from None: a JSON error carries the helper's whole answer (.doc), which holds the secret.
        raise UsageError("the credential helper %s answered something that is not credentials" % exe) from None


def from_docker_config(host: str) -> Credentials:
    config = _load_config()
    helpers = config.get("credHelpers") or {}
    for key in _keys_for(host):
        if isinstance(helpers, dict) and key in helpers:
            return _from_helper(helpers[key], host)
    auths = config.get("auths") or {}
    for key in _keys_for(host):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                # from None: a decode error carries the decoded "user:password" bytes (.object, shown by repr).
                raise UsageError("the Docker config has an unreadable auth entry for %s" % key) from None
            return user, secret
        if entry.get("username") and entry.get("password"):
            return entry["username"], entry["password"]
    if config.get("credsStore"):
        return _from_helper(config["credsStore"], host)
    return None


def _from_env() -> Credentials:
    user = os.environ.get("BUNDLE_REGISTRY_USER")
    password = os.environ.get("BUNDLE_REGISTRY_PASSWORD")
    return (user, password) if user and password is not None else None


def for_build(host: str) -> Credentials:
    """Build side: the environment only for hosts listed in BUNDLE_REGISTRY_HOSTS, else Docker's config."""
    listed = (os.environ.get("BUNDLE_REGISTRY_HOSTS") or "").replace(",", " ").split()
    if host in listed and _from_env():
        return _from_env()
    return from_docker_config(host)


def for_install(host: str) -> Credentials:
    """Install side (the --registry host only): the environment, else Docker's config."""
    return _from_env() or from_docker_config(host)
