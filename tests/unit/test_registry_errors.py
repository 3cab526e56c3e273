"""Issue 12, item 2: the registry's own error in the one-line error, and no retry of an answer that will not change.

Against the in-memory registry (tests/helpers/memregistry.py), counting the requests each answer costs: a 4xx
other than 408 and 429 is asked once; a 500 whose body names the request as invalid (distribution's answer to a
repository name its storage cannot hold) is asked once; 408, 429, 503 and a plain 500 are retried with the
policy's waits. Every message carries the registry's ``code: message``, escaped. The real registry's answer to
such names: tests/integration/test_registry_client.py."""

import hashlib
import io
import json

import pytest
from tests.helpers.memregistry import MemRegistry, Sleeps, quick_policy, status

from installer.errors import RegistryError
from installer.site.registry import Registry

MANIFESTS = r"/manifests/"
DATA = b"a layer\n" * 64
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def error(code: str, message: str, **detail) -> bytes:
    entry = {"code": code, "message": message}
    if detail:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


DISTRIBUTION_500 = error("UNKNOWN", "unknown error", DriverName="filesystem",
                         Path="/docker/registry/v2/repositories/127.0.0.1:5000/acme/app/_manifests/tags/1.0/current/link")


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def reg():
    r = MemRegistry("site.test")
    r.seed_image("team/app", "1.0", [b"layer\n"])
    return r


def client(reg: MemRegistry, sleeps: Sleeps) -> Registry:
    return Registry(reg.host, insecure=True, transport=reg, policy=quick_policy(sleeps))


def fails(call):
    with pytest.raises(RegistryError) as caught:
        call()
    assert caught.value.exit_code == 7
    return caught.value.message


# --- answers that will not change: asked once ---------------------------------------------------------

@pytest.mark.parametrize("code, body, expected", [
    (400, error("NAME_INVALID", "invalid repository name"),
     "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 400: NAME_INVALID: invalid repository name"),
    (403, error("DENIED", "requested access to the resource is denied"),
     "site.test refused access (GET site.test/v2/team/app/manifests/1.0: HTTP 403; DENIED: requested access to the "
     "resource is denied)"),
    (404, error("NAME_UNKNOWN", "repository name not known to registry"),
     "not found: GET site.test/v2/team/app/manifests/1.0 (NAME_UNKNOWN: repository name not known to registry)"),
    (405, error("UNSUPPORTED", "The operation is unsupported."),
     "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 405: UNSUPPORTED: The operation is unsupported."),
    (409, error("CONFLICT", "immutable tag"),
     "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 409: CONFLICT: immutable tag"),
    (413, b"Request Entity Too Large", "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 413"),  # not JSON
    (500, error("NAME_INVALID", "invalid repository name"),
     "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 500: NAME_INVALID: invalid repository name"),
    (500, error("UNKNOWN", "filesystem: invalid path"),
     "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 500: UNKNOWN: filesystem: invalid path"),
    (500, DISTRIBUTION_500, "GET site.test/v2/team/app/manifests/1.0 failed with HTTP 500: UNKNOWN: unknown error"),
])
def test_an_answer_that_will_not_change_is_asked_once_and_shows_the_registrys_words(reg, sleeps, code, body,
                                                                                   expected):
    reg.fail(status(code, body=body, headers={"Content-Type": "application/json"}), method="GET", path=MANIFESTS)
    message = fails(lambda: client(reg, sleeps).get_manifest("team/app", "1.0"))
    assert message == expected
    assert len(reg.requests("GET", MANIFESTS)) == 1 and sleeps.calls == []


@pytest.mark.parametrize("code", [400, 403, 404, 405, 409, 410, 411, 412, 413, 414, 415, 416, 422])
def test_no_4xx_but_408_and_429_is_retried(reg, sleeps, code):
    """(401 is the auth exchange's: installer/site/auth.py, tests/unit/test_registry_api.py.)"""
    reg.fail(status(code), method="PUT", path=r"/blobs/uploads/")
    message = fails(lambda: client(reg, sleeps).upload_blob("team/app", DIGEST, len(DATA), lambda: io.BytesIO(DATA)))
    assert "INJECTED: fault injected by the test" in message
    assert len(reg.requests("PUT", r"/blobs/uploads/")) == 1 and sleeps.calls == []
    assert not reg.has_blob("team/app", DIGEST)


def test_a_push_refused_for_its_name_is_not_retried_and_says_why(sleeps):
    """What distribution 2.8 answers a POST for a repository whose name has a ':' (a 500), had the plan-time
    check (installer/site/push.py check_site_names) not refused the name first."""
    reg = MemRegistry("site.test")
    reg.fail(status(500, body=DISTRIBUTION_500, headers={"Content-Type": "application/json"}), method="POST")
    message = fails(lambda: client(reg, sleeps).upload_blob("127.0.0.1:5000/acme/app", DIGEST, len(DATA),
                                                            lambda: io.BytesIO(DATA)))
    assert message == ("POST site.test/v2/127.0.0.1:5000/acme/app/blobs/uploads/ failed with HTTP 500: UNKNOWN: "
                       "unknown error")
    assert len(reg.requests("POST")) == 1 and sleeps.calls == []


# --- answers that may change: retried -----------------------------------------------------------------

@pytest.mark.parametrize("fault, waits", [
    (status(503), [0.5]),
    (status(503, body=error("UNAVAILABLE", "service unavailable")), [0.5]),
    (status(429, retry_after=5, body=error("TOOMANYREQUESTS", "slow down")), [5.0]),
    (status(429), [0.5]),
    (status(408), [0.5]),
    (status(500, body=error("UNKNOWN", "unknown error")), [0.5]),  # says nothing about the request: may pass
    (status(502, body=b"<html>Bad Gateway</html>"), [0.5]),
    (status(504), [0.5]),
])
def test_an_answer_that_may_change_is_retried(reg, sleeps, fault, waits):
    reg.fail(fault, method="GET", path=MANIFESTS, nth=1)
    assert client(reg, sleeps).get_manifest("team/app", "1.0")[2] == reg.tags("team/app")["1.0"]
    assert len(reg.requests("GET", MANIFESTS)) == 2 and sleeps.calls == waits


def test_a_head_has_no_body_to_tell_so_its_500_is_retried(reg, sleeps):
    reg.fail(status(500, body=DISTRIBUTION_500), method="HEAD", path=MANIFESTS)
    message = fails(lambda: client(reg, sleeps).head_manifest("team/app", "1.0"))
    assert message == "site.test is not reachable or keeps failing: site.test answered HTTP 500"
    assert len(reg.requests("HEAD", MANIFESTS)) == 6


@pytest.mark.parametrize("fault, said", [
    (status(503, body=error("UNAVAILABLE", "the storage is in maintenance")),
     "HTTP 503 (UNAVAILABLE: the storage is in maintenance)"),
    (status(429, retry_after=1, body=error("TOOMANYREQUESTS", "pull rate limit reached")),
     "HTTP 429 (TOOMANYREQUESTS: pull rate limit reached)"),
    (status(500), "HTTP 500 (INJECTED: fault injected by the test)"),
    (status(502, body=b"<html>Bad Gateway</html>"), "HTTP 502"),
])
def test_an_answer_that_keeps_coming_is_given_up_after_six_with_the_registrys_words(reg, sleeps, fault, said):
    reg.fail(fault, method="GET", path=MANIFESTS)
    message = fails(lambda: client(reg, sleeps).get_manifest("team/app", "1.0"))
    assert message == "site.test is not reachable or keeps failing: site.test answered " + said
    assert len(reg.requests("GET", MANIFESTS)) == 6 and len(sleeps.calls) == 5


# --- what is shown: escaped, capped -------------------------------------------------------------------

def test_a_hostile_error_is_escaped_and_capped_in_the_message(reg, sleeps):
    body = error("DENIED\x1b]0;owned\x07", "\x1b[1A\x1b[2K\rinstalled demo 1.0.0\u202e " + "x" * 5000)
    reg.fail(status(403, body=body), method="GET", path=MANIFESTS)
    message = fails(lambda: client(reg, sleeps).get_manifest("team/app", "1.0"))
    assert "DENIED\\x1b]0;owned\\x07: \\x1b[1A\\x1b[2K\\x0dinstalled demo 1.0.0\\u202e x" in message
    assert all(0x20 <= ord(c) < 0x7f for c in message) and len(message) < 600
    assert "\n" not in message


def test_the_token_services_error_is_shown(sleeps):
    reg = MemRegistry(auth="bearer")
    reg.fail(status(400, body=error("INVALID_SCOPE", "scope repository:team/app:pull is not allowed")),
             path=r"^/token")
    c = Registry(reg.host, insecure=True, insecure_hosts=[reg.token_host], transport=reg,
                 policy=quick_policy(sleeps), credentials=(reg.username, reg.password))
    message = fails(lambda: c.get_manifest("team/app", "1"))
    assert message == ("the token service of registry.test answered HTTP 400 (INVALID_SCOPE: scope "
                       "repository:team/app:pull is not allowed)")
    assert len(reg.requests(path=r"^/token")) == 1 and sleeps.calls == []


def test_a_token_service_that_keeps_failing_is_retried_then_shown(sleeps):
    reg = MemRegistry(auth="bearer")
    reg.fail(status(503, body=error("UNAVAILABLE", "auth backend down")), path=r"^/token")
    c = Registry(reg.host, insecure=True, insecure_hosts=[reg.token_host], transport=reg,
                 policy=quick_policy(sleeps), credentials=(reg.username, reg.password))
    message = fails(lambda: c.get_manifest("team/app", "1"))
    assert message.endswith("answered HTTP 503 (UNAVAILABLE: auth backend down)")
    assert len(reg.requests(path=r"^/token")) >= 6
