"""The registry client (installer/site/registry.py) over an in-memory registry: the API, auth, TLS and
plain-HTTP rules, redirects, resumable downloads, checked uploads, and what the retry policy does with each
fault. The same client against the real registry: tests/integration/test_registry_client.py."""

import hashlib
import io

import pytest
from tests.helpers.memregistry import (MemRegistry, Sleeps, corrupt, cut, delay, digest_header, quick_policy, reset,
                                       status, timeout, truncate, untrusted)

from installer.errors import ContentMismatch, InvalidInput, RegistryError
from installer.site.registry import Registry

DATA = bytes(range(256)) * 1200  # 300 KiB
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def client(reg: MemRegistry, sleeps: Sleeps, **kw) -> Registry:
    kw.setdefault("insecure", not reg.tls)
    return Registry(reg.host, transport=reg, policy=quick_policy(sleeps), **kw)


@pytest.fixture
def sleeps():
    return Sleeps()


# --- scheme and TLS ------------------------------------------------------------------------------

def test_a_host_named_insecure_gets_https_when_it_speaks_tls_else_http(sleeps):
    plain, tls = MemRegistry("plain.test"), MemRegistry("tls.test", tls=True)
    assert client(plain, sleeps, insecure=True).scheme() == "http"
    assert client(tls, sleeps, insecure=True).scheme() == "https"
    assert client(MemRegistry("other.test"), sleeps, insecure=False).scheme() == "https"  # never probed
    assert [s.scheme for s in plain.log] == ["https"] and [s.scheme for s in tls.log] == ["https"]
    assert sleeps.calls == []


def test_https_to_a_plain_registry_not_named_insecure_is_refused_at_once(sleeps):
    reg = MemRegistry("plain.test")
    with pytest.raises(RegistryError) as caught:
        client(reg, sleeps, insecure=False).get_manifest("team/app", "1")
    assert caught.value.message == ("plain.test does not speak TLS; if it is a plain-HTTP registry, name it with "
                                    "--insecure-registry plain.test")
    assert len(reg.log) == 1 and sleeps.calls == []


def test_a_certificate_that_does_not_verify_is_refused_at_once_with_the_way_out(sleeps):
    reg = MemRegistry("tls.test", tls=True)
    reg.fail(untrusted())
    with pytest.raises(RegistryError) as caught:
        client(reg, sleeps, insecure=False).head_manifest("team/app", "1")
    assert "cannot verify the TLS certificate of tls.test" in caught.value.message
    assert "--registry-ca FILE" in caught.value.message and "--insecure-registry tls.test" in caught.value.message
    assert len(reg.log) == 1 and sleeps.calls == []


# --- manifests ------------------------------------------------------------------------------------

def test_manifests_by_tag_and_digest_exactly_as_served(sleeps):
    reg = MemRegistry()
    img = reg.seed_image("team/app", "1.0", [b"layer one\n"])
    c = client(reg, sleeps)
    assert c.get_manifest("team/app", "1.0") == (img.data, img.media_type, img.digest)
    assert c.get_manifest("team/app", img.digest)[2] == img.digest
    assert c.head_manifest("team/app", "1.0") == img.digest
    assert c.head_manifest("team/app", "2.0") is None
    with pytest.raises(RegistryError, match="not found: GET registry.test/v2/team/app/manifests/2.0"):
        c.get_manifest("team/app", "2.0")


def test_a_manifest_whose_bytes_are_not_its_digest_is_refused(sleeps):
    reg = MemRegistry()
    img = reg.seed_image("team/app", "1.0", [b"layer\n"])
    reg.fail(corrupt(3), method="GET", path=r"/manifests/")
    c = client(reg, sleeps)
    with pytest.raises(ContentMismatch, match="served a manifest whose sha256 is"):
        c.get_manifest("team/app", img.digest)
    with pytest.raises(ContentMismatch, match="Docker-Content-Digest says %s but the bytes hash to" % img.digest):
        c.get_manifest("team/app", "1.0")
    assert sleeps.calls == []  # other bytes are not a transient failure


def test_a_docker_content_digest_that_is_not_a_digest_is_refused(sleeps):
    reg = MemRegistry()
    reg.seed_image("team/app", "1.0", [b"layer\n"])
    reg.fail(digest_header("sha256:../../../etc/passwd"), method="HEAD")
    with pytest.raises(RegistryError, match="Docker-Content-Digest header"):
        client(reg, sleeps).head_manifest("team/app", "1.0")


def test_a_manifest_larger_than_the_cap_is_refused(sleeps):
    reg = MemRegistry()
    reg.put_manifest("team/app", b'{"schemaVersion": 2, "pad": "' + b"x" * (4 << 20) + b'"}',
                     "application/vnd.oci.image.manifest.v1+json", "big")
    with pytest.raises(RegistryError, match="more than a manifest may be"):
        client(reg, sleeps).get_manifest("team/app", "big")


def test_a_schema1_manifest_is_refused(sleeps):
    reg = MemRegistry()
    reg.put_manifest("team/old", b'{"schemaVersion": 1, "name": "team/old"}',
                     "application/vnd.docker.distribution.manifest.v1+prettyjws", "1")
    with pytest.raises(InvalidInput, match="schema 1"):
        client(reg, sleeps).get_manifest("team/old", "1")


# --- uploads ----------------------------------------------------------------------------------------

def test_monolithic_and_chunked_uploads_are_byte_exact(sleeps):
    reg = MemRegistry()
    c = client(reg, sleeps)
    c.upload_blob("team/one", DIGEST, len(DATA), lambda: io.BytesIO(DATA))
    c.upload_blob("team/two", DIGEST, len(DATA), lambda: io.BytesIO(DATA), chunk_size=64 * 1024)
    assert reg.blob(DIGEST) == DATA and reg.has_blob("team/one", DIGEST) and reg.has_blob("team/two", DIGEST)
    patches = reg.requests("PATCH")
    assert [p.header("Content-Range") for p in patches] == ["%d-%d" % (o, min(o + 65535, len(DATA) - 1))
                                                           for o in range(0, len(DATA), 65536)]
    assert all("_state=" in p.target for p in patches)  # the Location's query is kept
    assert [p.body_size for p in reg.requests("PUT")] == [len(DATA), 0]
    assert c.blob_exists("team/two", DIGEST) and not c.blob_exists("team/three", DIGEST)


def test_a_blob_that_is_not_its_digest_never_completes_an_upload(sleeps):
    reg = MemRegistry()
    other = DATA[:-1] + b"\x00"
    with pytest.raises(ContentMismatch, match="no longer has that sha256"):
        client(reg, sleeps).upload_blob("team/app", DIGEST, len(other), lambda: io.BytesIO(other))
    [put] = reg.requests("PUT")
    assert put.status == 0  # the body refused to finish: no answer, nothing stored
    assert not reg.has_blob("team/app", DIGEST) and sleeps.calls == []


def test_cross_repository_mount(sleeps):
    reg = MemRegistry()
    c = client(reg, sleeps)
    c.upload_blob("a/one", DIGEST, len(DATA), lambda: io.BytesIO(DATA))
    assert c.mount_blob("b/two", DIGEST, "a/one") is None
    assert reg.has_blob("b/two", DIGEST)
    location = c.mount_blob("b/two", "sha256:" + "0" * 64, "a/one")
    assert isinstance(location, str) and "/v2/b/two/blobs/uploads/" in location


def test_put_manifest_checks_what_the_registry_stored(sleeps):
    reg = MemRegistry()
    src = MemRegistry("src.test")
    img = src.seed_image("team/app", "1", [b"layer\n"])
    c = client(reg, sleeps)
    for digest in img.blobs:
        data = src.blob(digest)
        c.upload_blob("team/app", digest, len(data), lambda data=data: io.BytesIO(data))
    assert c.put_manifest("team/app", img.digest, img.data, img.media_type) == img.digest
    reg.fail(digest_header("sha256:" + "1" * 64), method="PUT", path=r"/manifests/1$")
    with pytest.raises(ContentMismatch, match="stored team/app/1 as sha256:1111"):
        c.put_manifest("team/app", "1", img.data, img.media_type)


def test_a_manifest_before_its_blobs_is_refused_by_the_registry(sleeps):
    reg = MemRegistry()
    img = MemRegistry("src.test").seed_image("team/app", "1", [b"layer\n"])
    with pytest.raises(RegistryError, match="failed with HTTP 400: MANIFEST_BLOB_UNKNOWN: blob unknown to registry: "
                                            "sha256:"):
        client(reg, sleeps).put_manifest("team/app", img.digest, img.data, img.media_type)


# --- downloads --------------------------------------------------------------------------------------

@pytest.fixture
def blob_reg():
    reg = MemRegistry()
    reg.put_blob("team/app", DATA)
    return reg


def download(c: Registry, size: int = len(DATA)) -> bytes:
    out = io.BytesIO()
    c.download_blob("team/app", DIGEST, size, out)
    return out.getvalue()


@pytest.mark.parametrize("fault", [cut(100_000), truncate(100_000)])
def test_a_download_cut_short_resumes_where_it_stopped(blob_reg, sleeps, fault):
    blob_reg.fail(fault, method="GET", path=r"/blobs/", nth=1)
    assert download(client(blob_reg, sleeps)) == DATA
    gets = blob_reg.requests("GET", r"/blobs/")
    assert [(g.status, g.header("Range")) for g in gets] == [(200, None), (206, "bytes=100000-")]
    assert sleeps.calls == [0.5]


def test_a_download_that_keeps_being_cut_is_exit_7_after_six_attempts(blob_reg, sleeps):
    blob_reg.fail(cut(1000), method="GET", path=r"/blobs/")
    with pytest.raises(RegistryError) as caught:
        download(client(blob_reg, sleeps))
    assert caught.value.message.startswith("cannot download %s from registry.test: connection lost after" % DIGEST)
    assert len(blob_reg.requests("GET", r"/blobs/")) == 6 and sleeps.calls == [0.5, 1.0, 2.0, 4.0, 8.0]
    ranges = [g.header("Range") for g in blob_reg.requests("GET", r"/blobs/")]
    assert ranges == [None] + ["bytes=%d-" % (1000 * n) for n in range(1, 6)]  # each attempt got 1000 more


def test_bytes_that_are_not_the_digest_are_refused_not_retried(blob_reg, sleeps):
    blob_reg.fail(corrupt(5), method="GET", path=r"/blobs/")
    with pytest.raises(ContentMismatch, match="the registry served other bytes"):
        download(client(blob_reg, sleeps))
    assert len(blob_reg.requests("GET", r"/blobs/")) == 1 and sleeps.calls == []


def test_more_bytes_than_declared_are_refused(blob_reg, sleeps):
    with pytest.raises(ContentMismatch, match="sent more than the 1000 bytes the manifest declares"):
        download(client(blob_reg, sleeps), size=1000)


def test_5xx_429_resets_and_timeouts_are_retried_with_the_policys_waits(blob_reg, sleeps):
    blob_reg.fail(status(503), method="GET", path=r"/blobs/", nth=1)
    blob_reg.fail(status(429, retry_after=7), method="GET", path=r"/blobs/", nth=2)
    blob_reg.fail(reset(), method="GET", path=r"/blobs/", nth=3)
    blob_reg.fail(timeout(), method="GET", path=r"/blobs/", nth=4)
    blob_reg.fail(status(429, retry_after=3600), method="GET", path=r"/blobs/", nth=5)
    assert download(client(blob_reg, sleeps)) == DATA
    assert sleeps.calls == [0.5, 7.0, 2.0, 4.0, 60.0]


def test_a_status_not_retried_fails_at_once(blob_reg, sleeps):
    blob_reg.fail(status(403), method="GET", path=r"/blobs/")
    with pytest.raises(RegistryError, match=r"registry.test refused access \(GET registry.test/v2/team/app/blobs/"):
        download(client(blob_reg, sleeps))
    assert sleeps.calls == [] and len(blob_reg.log) == 2  # the scheme probe, then the GET


def test_a_slow_answer_is_waited_for(blob_reg, sleeps):
    blob_reg.fail(delay(0.2), method="GET", path=r"/blobs/")
    assert download(client(blob_reg, sleeps)) == DATA and sleeps.calls == []


# --- auth ---------------------------------------------------------------------------------------------

def test_bearer_tokens_per_scope_cached_and_asked_again_once_expired(sleeps):
    reg = MemRegistry(auth="bearer")
    reg.seed_image("team/app", "1", [b"layer\n"])
    c = client(reg, sleeps, insecure_hosts=[reg.token_host], credentials=(reg.username, reg.password))
    c.get_manifest("team/app", "1")
    asked = len(reg.token_requests)
    c.get_manifest("team/app", "1")
    assert len(reg.token_requests) == asked  # cached
    reg.expire_tokens()
    c.get_manifest("team/app", "1")
    assert len(reg.token_requests) > asked  # asked again
    c.upload_blob("team/app", DIGEST, len(DATA), lambda: io.BytesIO(DATA))
    assert ("user", "repository:team/app:pull,push") in reg.token_requests
    token_calls = reg.requests(path=r"^/token\?")
    assert token_calls and all(t.authorization.startswith("Basic ") for t in token_calls)
    assert all(s.authorization is None or s.authorization.startswith("Bearer ") for s in reg.log
               if s.netloc == reg.host)  # the password goes to the token service only


def test_anonymous_pull_from_a_bearer_registry(sleeps):
    reg = MemRegistry(auth="bearer", anonymous_pull=True)
    img = reg.seed_image("team/app", "1", [b"layer\n"])
    c = client(reg, sleeps, insecure_hosts=[reg.token_host])
    assert c.head_manifest("team/app", "1") == img.digest
    assert reg.token_requests and all(user is None for user, _ in reg.token_requests)


def test_wrong_or_missing_credentials_are_exit_7_and_never_shown(sleeps):
    reg = MemRegistry(auth="bearer")
    reg.seed_image("team/app", "1", [b"layer\n"])
    with pytest.raises(RegistryError) as caught:
        client(reg, sleeps, insecure_hosts=[reg.token_host], credentials=("user", "wrong-pass-xyz")).get_manifest(
            "team/app", "1")
    assert caught.value.message == "authentication to registry.test failed: the token service refused the credentials"
    with pytest.raises(RegistryError, match=r"refused the credentials \(no credentials were found for it\)"):
        client(reg, sleeps, insecure_hosts=[reg.token_host]).get_manifest("team/app", "1")
    assert sleeps.calls == []


def test_a_plain_http_token_service_not_named_insecure_is_refused(sleeps):
    reg = MemRegistry(auth="bearer")
    with pytest.raises(RegistryError, match="sends us to a plain-HTTP token service at auth.registry.test"):
        client(reg, sleeps, credentials=(reg.username, reg.password)).head_manifest("team/app", "1")
    assert reg.requests(path=r"^/token") == []


def test_basic_auth_over_tls(sleeps):
    reg = MemRegistry("tls.test", tls=True, auth="basic")
    img = reg.seed_image("team/app", "1", [b"layer\n"])
    assert client(reg, sleeps, credentials=(reg.username, reg.password)).head_manifest("team/app", "1") == img.digest
    with pytest.raises(RegistryError) as caught:
        client(reg, sleeps, credentials=("user", "wrong-pass-xyz")).head_manifest("team/app", "1")
    assert caught.value.message == "authentication to tls.test failed: the credentials were refused"
    with pytest.raises(RegistryError, match="tls.test needs credentials and none were found"):
        client(reg, sleeps).head_manifest("team/app", "1")


def test_basic_auth_over_plain_http_only_to_a_host_named_insecure(sleeps):
    reg = MemRegistry("plain.test", auth="basic")
    img = reg.seed_image("team/app", "1", [b"layer\n"])
    assert client(reg, sleeps, credentials=(reg.username, reg.password)).head_manifest("team/app", "1") == img.digest
    assert any(s.authorization and s.authorization.startswith("Basic ") for s in reg.log)


def test_credentials_never_follow_a_redirect_to_another_host(sleeps):
    reg = MemRegistry("plain.test", auth="basic", blob_redirect="storage.test")
    reg.put_blob("team/app", DATA)
    c = client(reg, sleeps, credentials=(reg.username, reg.password), insecure_hosts=["plain.test", "storage.test"])
    assert download(c) == DATA
    [stored] = [s for s in reg.log if s.netloc == "storage.test"]
    assert stored.authorization is None
    assert any(s.authorization for s in reg.log if s.netloc == "plain.test")


def test_a_redirect_to_plain_http_elsewhere_is_refused(sleeps):
    reg = MemRegistry("tls.test", tls=True, blob_redirect="http://storage.test")
    reg.put_blob("team/app", DATA)
    with pytest.raises(RegistryError, match="tls.test redirected to plain HTTP at storage.test; refused"):
        download(client(reg, sleeps))
    assert [s for s in reg.log if s.netloc == "storage.test"] == []


def test_the_registry_not_answering_at_all_is_exit_7_after_the_retries(sleeps):
    reg = MemRegistry("site.test")
    c = Registry("elsewhere.test", insecure=True, transport=reg, policy=quick_policy(sleeps))
    with pytest.raises(RegistryError, match="elsewhere.test is not reachable or keeps failing: .*Connection refused"):
        c.head_manifest("team/app", "1")
    assert sleeps.calls == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_endless_redirects_stop_after_six_hops(blob_reg, sleeps):
    blob_reg.fail(status(302, headers={"Location": "/v2/team/app/blobs/%s?again" % DIGEST}), method="GET",
                  path=r"/blobs/")
    with pytest.raises(RegistryError, match="registry.test redirected too many times"):
        download(client(blob_reg, sleeps))
    assert len(blob_reg.requests("GET", r"/blobs/")) == 6 and sleeps.calls == []
