"""installer.site.registry against the real registry: chunked uploads, token refresh, mounts, its errors."""

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.images import make_image, push
from tests.helpers.registry import start_registry

from installer.errors import RegistryError
from installer.site.registry import Registry
from installer.site.retry import RetryPolicy


def test_chunked_upload_is_byte_exact(tmp_path):
    reg = start_registry(tmp_path / "r", kind="plain", accesslog=True)
    try:
        data = os.urandom(300_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client = Registry(reg.host, insecure=True)
        client.upload_blob("chunky/repo", digest, len(data), lambda: io.BytesIO(data), chunk_size=64 * 1024)
        patches = [r for r in reg.requests() if r.method == "PATCH"]
        assert len(patches) == 5  # 300 000 bytes in 64 KiB chunks
        out = io.BytesIO()
        client.download_blob("chunky/repo", digest, len(data), out)
        assert out.getvalue() == data
        assert client.blob_exists("chunky/repo", digest)
    finally:
        reg.stop()


def test_cross_repository_mount(tmp_path):
    reg = start_registry(tmp_path / "r", kind="plain")
    try:
        data = b"shared layer bytes" * 1000
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client = Registry(reg.host, insecure=True)
        client.upload_blob("a/one", digest, len(data), lambda: io.BytesIO(data))
        assert client.mount_blob("b/two", digest, "a/one") is None  # mounted, no upload needed
        assert client.blob_exists("b/two", digest)
        missing = "sha256:" + "0" * 64
        assert isinstance(client.mount_blob("b/two", missing, "a/one"), str)  # an upload location instead
    finally:
        reg.stop()


def test_tokens_are_asked_per_scope_and_refreshed_when_they_expire(tmp_path):
    reg = start_registry(tmp_path / "r", kind="token")
    try:
        lay = tmp_path / "lay"
        img = make_image(lay, "t", [{"x": b"token refresh\n"}])
        push(lay, "t", reg, "team/app:1")
        reg.token_server.ttl = 11  # our client treats tokens as expiring 10 s early: fresh for about 1 s
        client = Registry(reg.host, ca_file=reg.ca_file, credentials=(reg.username, reg.password))
        client.get_manifest("team/app", "1")
        first = len(reg.token_requests)
        client.get_manifest("team/app", "1")
        assert len(reg.token_requests) == first  # cached while fresh
        time.sleep(1.5)
        client.get_manifest("team/app", "1")
        assert len(reg.token_requests) == first + 1  # asked again once expired
        data = b"pushed with a push-scoped token"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.upload_blob("team/app", digest, len(data), lambda: io.BytesIO(data))
        assert any("push" in scope for user, scope in reg.token_requests if user == reg.username)
        assert img.digest
    finally:
        reg.stop()


def test_progress_is_shown_on_a_terminal_only(ob, key, tmp_path):
    reg = start_registry(tmp_path / "r", kind="plain")
    try:
        lay = tmp_path / "lay"
        make_image(lay, "t", [{"big.bin": os.urandom(2 << 20)}])
        push(lay, "t", reg, "prom/prometheus:v3.5.0")
        (tmp_path / "m.yaml").write_text(
            'apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata: {name: p, version: "1.0.0"}\n'
            "spec:\n  images:\n    - ref: prom/prometheus:v3.5.0\n")
        cli = Path(sys.executable).parent / "offline-bundle"
        args = [str(cli), "build", str(tmp_path / "m.yaml"), "--key", str(key), "--mirror", "docker.io=%s" % reg.host,
                "--insecure-registry", reg.host]
        piped = subprocess.run(args + ["--out", str(tmp_path / "o1"), "--cache", str(tmp_path / "c1")],
                               capture_output=True, text=True)
        assert piped.returncode == 0 and "pull docker.io/prom/prometheus:v3.5.0" not in piped.stderr
        tty = subprocess.run(["script", "-qec", " ".join(args + ["--out", str(tmp_path / "o2"), "--cache",
                                                                 str(tmp_path / "c2")]), "/dev/null"],
                             capture_output=True, text=True)
        assert tty.returncode == 0, tty.stdout[-2000:]
        assert "pull docker.io/prom/prometheus:v3.5.0" in tty.stdout  # tqdm's bar, through the pseudo-terminal
    finally:
        reg.stop()


def test_a_plain_http_registry_must_be_named_insecure(ob, key, tmp_path):
    reg = start_registry(tmp_path / "r", kind="plain")
    try:
        (tmp_path / "m.yaml").write_text(
            'apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata: {name: p, version: "1.0.0"}\n'
            "spec:\n  images:\n    - ref: prom/prometheus:v3.5.0\n")
        started = time.time()
        r = ob("build", tmp_path / "m.yaml", "--key", key, "--out", tmp_path / "o", "--mirror",
               "docker.io=%s" % reg.host)
        assert r.rc == 7 and "--insecure-registry %s" % reg.host in r.err
        assert time.time() - started < 10  # refused at once, not after a round of retries
    finally:
        reg.stop()


def test_the_real_registrys_errors_are_shown_and_those_that_will_not_change_are_asked_once(tmp_path):
    """Issue 12, item 2, against distribution 2.8 itself: its 404 and its 500s for names it cannot take (a ':'
    in the name: its storage refuses the path; more than 255 characters: the name is refused) carry a body the
    client shows and does not retry; a HEAD's 500 has no body, so the client cannot tell and retries it."""
    reg = start_registry(tmp_path / "r", kind="plain", accesslog=True)
    waits: list = []
    client = Registry(reg.host, insecure=True, policy=RetryPolicy(sleep=waits.append))
    data = b"a layer\n"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    long_name = "team/" + "a" * 260
    try:
        cases = [
            (lambda: client.get_manifest("team/app", "1.0"),
             "not found: GET %s/v2/team/app/manifests/1.0 (MANIFEST_UNKNOWN: manifest unknown)" % reg.host),
            (lambda: client.get_manifest("127.0.0.1:5000/acme/app", "1.0"),
             "GET %s/v2/127.0.0.1:5000/acme/app/manifests/1.0 failed with HTTP 500: UNKNOWN: unknown error" % reg.host),
            (lambda: client.upload_blob("127.0.0.1:5000/acme/app", digest, len(data), lambda: io.BytesIO(data)),
             "POST %s/v2/127.0.0.1:5000/acme/app/blobs/uploads/ failed with HTTP 500: UNKNOWN: unknown error"
             % reg.host),
            (lambda: client.upload_blob(long_name, digest, len(data), lambda: io.BytesIO(data)),
             "POST %s/v2/%s/blobs/uploads/ failed with HTTP 500: UNKNOWN: unknown error" % (reg.host, long_name)),
        ]
        for call, message in cases:
            mark = reg.mark()
            with pytest.raises(RegistryError) as caught:
                call()
            assert caught.value.message == message
            asked = [r for r in reg.requests_since(mark) if r.path != "/v2/"]
            assert len(asked) == 1, asked  # asked once: the answer will not change
        assert waits == []
        mark = reg.mark()
        with pytest.raises(RegistryError) as caught:
            client.head_manifest("127.0.0.1:5000/acme/app", "1.0")
        assert caught.value.message == "%s is not reachable or keeps failing: %s answered HTTP 500" % (reg.host,
                                                                                                     reg.host)
        assert len([r for r in reg.requests_since(mark) if r.method == "HEAD"]) == 6 and len(waits) == 5
    finally:
        reg.stop()
