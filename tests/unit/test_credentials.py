"""Credentials come from Docker's config for the host contacted; the environment only where the README allows."""

import base64
import json
import os
import stat

import pytest

from installer.site import credentials
from installer.site.auth import parse_www_authenticate


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for var in ("BUNDLE_REGISTRY_USER", "BUNDLE_REGISTRY_PASSWORD", "BUNDLE_REGISTRY_HOSTS"):
        monkeypatch.delenv(var, raising=False)

    def write(doc):
        (tmp_path / "config.json").write_text(json.dumps(doc))
    return write


def _auth(user, pw):
    return base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def test_auths_entry_for_the_contacted_host(docker_config):
    docker_config({"auths": {"mirror.local:5000": {"auth": _auth("u", "p:with:colons")},
                             "https://index.docker.io/v1/": {"auth": _auth("hub", "hubpw")}}})
    assert credentials.for_build("mirror.local:5000") == ("u", "p:with:colons")
    assert credentials.for_build("registry-1.docker.io") == ("hub", "hubpw")
    assert credentials.for_build("other.local") is None


def test_credential_helpers(docker_config, tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\nif [ "$host" = "helped.local" ]; then '
                      'echo \'{"Username":"hu","Secret":"hs"}\'; else echo "not found" >&2; exit 1; fi\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(helper.parent) + os.pathsep + os.environ["PATH"])
    docker_config({"credHelpers": {"helped.local": "fake"}, "credsStore": "fake"})
    assert credentials.for_build("helped.local") == ("hu", "hs")
    assert credentials.for_build("elsewhere.local") is None  # the store says "not found"


def test_environment_credentials_are_scoped(docker_config, monkeypatch):
    docker_config({})
    monkeypatch.setenv("BUNDLE_REGISTRY_USER", "envuser")
    monkeypatch.setenv("BUNDLE_REGISTRY_PASSWORD", "envpw")
    # build: only for hosts listed in BUNDLE_REGISTRY_HOSTS
    assert credentials.for_build("a.local") is None
    monkeypatch.setenv("BUNDLE_REGISTRY_HOSTS", "a.local, b.local:5000")
    assert credentials.for_build("a.local") == ("envuser", "envpw")
    assert credentials.for_build("b.local:5000") == ("envuser", "envpw")
    assert credentials.for_build("c.local") is None
    # install: the caller asks only for the --registry host
    assert credentials.for_install("site.local") == ("envuser", "envpw")


def test_unreadable_config_is_a_usage_error(docker_config, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(credentials.UsageError):
        credentials.for_build("x")


@pytest.mark.parametrize("header,kind,params", [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"',
     "bearer",
     {"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:a/b:pull"}),
    ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
    ('Bearer realm="http://127.0.0.1:1/t",service=svc,error="insufficient_scope"', "bearer",
     {"realm": "http://127.0.0.1:1/t", "service": "svc", "error": "insufficient_scope"}),
    ('Bearer realm="a\\"b"', "bearer", {"realm": 'a"b'}),
])
def test_www_authenticate(header, kind, params):
    assert parse_www_authenticate(header) == (kind, params)
