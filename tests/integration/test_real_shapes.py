"""Issue 12 end to end with the real registry, skopeo and openssl: images in the shapes real producers write
(helpers/producers.py: buildx with attestations, a Docker Official Images index, a Docker schema 2 list, podman's
dual-compression index, a zstd image, a Windows list with foreign layers, cosign signature and attestation tags,
an OCI 1.1 referrer behind the fallback tag) go through `offline-bundle build` from a TLS registry with basic auth
and `install --registry` into a second registry; skopeo reads every kept digest back unchanged, and the upstream
cosign signature is checked on the site by docs/VERIFY.md's own commands (curl, sha256sum, openssl)."""

import http.server
import importlib.util
import json
import subprocess
import threading
from pathlib import Path

import pytest
from tests.helpers import producers as P
from tests.helpers.images import skopeo_inspect_raw
from tests.helpers.registry import start_registry

from installer.format.model import fallback_tag

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("verify_md", REPO / "scripts" / "verify_md.py")
verify_md = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_md)

ALLOW_ALL = ["^https?://"]


class ForeignServer:
    """The publisher of foreign layers (mcr.microsoft.com's role): serves blobs at /blobs/<digest> over plain
    HTTP on loopback and records every request's headers."""

    def __init__(self) -> None:
        self.blobs = {}
        self.seen = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                server.seen.append((self.path, dict(self.headers)))
                data = server.blobs.get(self.path.rsplit("/", 1)[-1])
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The source registry (TLS, basic auth, foreign URLs allowed as Docker Hub does) with every shape pushed,
    the foreign-layer server, the cosign keys; what was pushed, by name."""
    base = tmp_path_factory.mktemp("shapes")
    foreign = ForeignServer()
    src = start_registry(base / "src", kind="basic", urls_allow=ALLOW_ALL)
    client = src.client()
    ec, ed = P.keys()
    shapes = {}
    shapes["buildx"] = P.buildx_index("buildx", ("linux/amd64", "linux/arm64", "linux/s390x"))
    shapes["official"] = P.official_image_index()
    shapes["docker"] = P.docker_list()
    shapes["podman"] = P.podman_dual()
    shapes["zstd"] = P.zstd_image()
    shapes["windows"], mcr_layer = P.windows_list()
    shapes["wininclude"], own_layer = P.windows_list("include", b"a foreign layer this test serves\n",
                                                     "http://%s/blobs/" % foreign.host)
    foreign.blobs[P.sha(P.gz(b"a foreign layer this test serves\n"))] = own_layer
    shapes["sbom"] = P.image("linux/amd64", "with-sbom")
    for name, art in shapes.items():
        art.push(client, "acme/%s" % name, "1.0")
    # cosign: the buildx index signed (ECDSA, cosign's default) and attested; the zstd image signed with Ed25519
    sig = P.cosign_signature(shapes["buildx"].digest, [ec], identity="docker.io/acme/buildx")
    att = P.cosign_attestation(shapes["buildx"].digest, ec)
    sig.push(client, "acme/buildx", P.cosign_tag(shapes["buildx"].digest, "sig"))
    att.push(client, "acme/buildx", P.cosign_tag(shapes["buildx"].digest, "att"))
    zsig = P.cosign_signature(shapes["zstd"].digest, [ed], identity="docker.io/acme/zstd")
    zsig.push(client, "acme/zstd", P.cosign_tag(shapes["zstd"].digest, "sig"))
    # an OCI 1.1 referrer, as oras attaches it to a registry without the referrers API: the fallback tag index
    sbom = P.oci_referrer(shapes["sbom"])
    sbom.push(client, "acme/sbom")
    P.fallback_index([sbom]).push(client, "acme/sbom", fallback_tag(shapes["sbom"].digest))
    keys = base / "cosign"
    keys.mkdir()
    (keys / "ec.pub").write_bytes(P.public_pem(ec))
    (keys / "ed.pub").write_bytes(P.public_pem(ed))
    yield {"src": src, "foreign": foreign, "shapes": shapes, "sig": sig, "att": att, "zsig": zsig, "sbom": sbom,
           "keys": keys, "mcr_layer": mcr_layer, "own_layer": own_layer, "base": base}
    foreign.stop()
    src.stop()


def source_env(world, tmp_path):
    src = world["src"]
    return {"DOCKER_CONFIG": str(tmp_path / "no-docker-config"), "BUNDLE_REGISTRY_USER": src.username,
            "BUNDLE_REGISTRY_PASSWORD": src.password, "BUNDLE_REGISTRY_HOSTS": src.host}


def build(ob, world, folder: Path, key: Path, images) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ec.pub", "ed.pub"):
        (folder / name).write_bytes((world["keys"] / name).read_bytes())
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: shapes", '  version: "1.0.0"',
             '  created: "2026-11-30T00:00:00Z"', "spec:", "  images:"]
    for entry in images:
        lines.append("    - ref: %s" % entry.pop("ref"))
        lines += ["      %s: %s" % (k, json.dumps(v)) for k, v in entry.items()]
    (folder / "bundle.yaml").write_text("\n".join(lines) + "\n")
    src = world["src"]
    r = ob("build", folder / "bundle.yaml", "--key", key, "--out", folder / "out", "--cache", folder / "cache",
           "--mirror", "docker.io=%s" % src.host, "--registry-ca", src.ca_file,
           "--insecure-registry", world["foreign"].host, "--json", env=source_env(world, folder))
    assert r.rc == 0, r
    return r


@pytest.fixture(scope="module")
def bundle(ob, world, keydir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes-bundle")
    images = [{"ref": "acme/buildx:1.0", "signed-by": "ec.pub"},
              {"ref": "acme/official:1.0"}, {"ref": "acme/docker:1.0"}, {"ref": "acme/podman:1.0"},
              {"ref": "acme/zstd:1.0", "signed-by": "ed.pub"}, {"ref": "acme/windows:1.0"},
              {"ref": "acme/wininclude:1.0", "foreign-layers": "include"}, {"ref": "acme/sbom:1.0"},
              {"ref": "acme/buildx-subset:1.0", "platforms": ["linux/amd64", "linux/s390x"]}]
    world["shapes"]["buildx"].push(world["src"].client(), "acme/buildx-subset", "1.0")
    r = build(ob, world, folder, keydir / "ed" / "bundle.key", images)
    archive = Path(r.json["result"]["archive"])
    v = ob("verify", archive, "--trust", keydir / "ed" / "bundle.pub", "--json")
    assert v.rc == 0, v
    meta = {i["ref"]: i for i in ob("inspect", archive, "--trust", keydir / "ed" / "bundle.pub", "--json")
            .json["result"]["images"]}
    return archive, meta, r, v


def test_every_shape_is_bundled_with_what_travels_beside_it(world, bundle):
    archive, meta, build_result, verified = bundle
    shapes = world["shapes"]
    buildx = meta["docker.io/acme/buildx:1.0"]
    assert buildx["digest"] == shapes["buildx"].digest
    assert {(r["kind"], r["digest"], r["tag"]) for r in buildx["referrers"]} == {
        ("signature", world["sig"].digest, P.cosign_tag(shapes["buildx"].digest, "sig")),
        ("attestation", world["att"].digest, P.cosign_tag(shapes["buildx"].digest, "att"))}
    [g] = buildx["signatures"]
    assert (g["digest"], g["signature"], g["algorithm"]) == (shapes["buildx"].digest, world["sig"].digest,
                                                             "ecdsa-p256")
    [z] = meta["docker.io/acme/zstd:1.0"]["signatures"]
    assert (z["algorithm"], z["signature"]) == ("ed25519", world["zsig"].digest)
    [r] = meta["docker.io/acme/sbom:1.0"]["referrers"]
    assert (r["digest"], r["found"], r["kind"]) == (world["sbom"].digest, "fallback-tag", "sbom")
    # buildx attestations: the whole index keeps them; the subset keeps its two platforms' ones
    kept = [m["platform"] for m in meta["docker.io/acme/buildx-subset:1.0"]["manifests"]]
    assert kept == ["linux/amd64", "unknown/unknown", "linux/s390x", "unknown/unknown"]
    # foreign layers: skipped by default (listed, the manifest unchanged), included when asked
    [skipped] = meta["docker.io/acme/windows:1.0"]["skipped_layers"]
    assert skipped["digest"] == P.sha(world["mcr_layer"])
    assert "skipped_layers" not in meta["docker.io/acme/wininclude:1.0"]
    assert any("foreign layer" in w and "acme/windows" in w for w in build_result.json["result"]["warnings"])
    # the foreign server got the layer once, with no credentials of the source registry
    hits = [h for p, h in world["foreign"].seen if p.endswith(P.sha(world["own_layer"]))]
    assert hits and all("Authorization" not in h and "Cookie" not in h for h in hits)
    # verify re-checked both upstream signatures from the archive
    assert {(s["ref"], s["checked"]) for s in verified.json["result"]["upstream_signatures"]} == {
        ("docker.io/acme/buildx:1.0", "now and at build time"), ("docker.io/acme/zstd:1.0", "now and at build time")}


def test_inspect_text_shows_signatures_referrers_and_skipped_layers(ob, bundle, keydir):
    archive = bundle[0]
    r = ob("inspect", archive, "--trust", keydir / "ed" / "bundle.pub")
    assert r.rc == 0, r
    assert "signed by SHA256:" in r.out and "cosign signature of" in r.out
    assert "referrer sha256:" in r.out and "attestation" in r.out
    assert "foreign layer sha256:" in r.out and "mcr.microsoft.com" in r.out


@pytest.fixture(scope="module")
def installed(ob, bundle, keydir, tmp_path_factory):
    base = tmp_path_factory.mktemp("shapes-site")
    site = start_registry(base / "site", kind="plain", urls_allow=ALLOW_ALL)
    r = ob("install", bundle[0], "--kit", base / "kit", "--trust", keydir / "ed" / "bundle.pub", "--registry",
           site.host, "--insecure-registry", site.host, "--json")
    assert r.rc == 0, r
    yield site, r, base
    site.stop()


def test_the_site_serves_every_kept_digest_and_referrer_unchanged(world, bundle, installed):
    site, r, _ = installed
    meta = bundle[1]
    for ref, image in meta.items():
        repo = "docker.io/" + ref.split("/", 1)[1].rsplit(":", 1)[0]
        digests = [image["digest"]] + [m["digest"] for m in image["manifests"]] + [
            x["digest"] for x in image.get("referrers", [])]
        for digest in digests:
            raw = skopeo_inspect_raw("%s@%s" % (repo, digest), site)
            assert P.sha(raw) == digest, (ref, digest)
    buildx = world["shapes"]["buildx"]
    raw = skopeo_inspect_raw("docker.io/acme/buildx:%s" % P.cosign_tag(buildx.digest, "sig"), site)
    assert raw == world["sig"].data
    # the OCI 1.1 referrer: distribution 2.8 has no referrers API, so the fallback tag index lists it
    index = json.loads(skopeo_inspect_raw("docker.io/acme/sbom:%s" % fallback_tag(world["shapes"]["sbom"].digest),
                                          site))
    assert [d["digest"] for d in index["manifests"]] == [world["sbom"].digest]
    deploy = r.json["result"]["deploy"]
    assert deploy["tags_moved"] >= len(meta) + 4


@pytest.mark.parametrize("algorithm, ref, pub", [("ecdsa-p256", "buildx", "ec.pub"), ("ed25519", "zstd", "ed.pub")])
def test_the_upstream_signature_on_the_site_verifies_with_the_commands_of_verify_md(world, installed, tmp_path,
                                                                                   algorithm, ref, pub):
    site = installed[0]
    digest = world["shapes"][ref].digest
    work = tmp_path / "check"
    work.mkdir()
    (work / "cosign.pub").write_bytes((world["keys"] / pub).read_bytes())
    script = verify_md.cosign_procedure(algorithm)
    env = {"SITE": "http://" + site.host, "REPO": "docker.io/acme/" + ref, "DIGEST": digest, "PATH": "/usr/bin:/bin"}
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ("Verified OK" if algorithm == "ecdsa-p256" else "Signature Verified Successfully") in p.stdout
    assert digest in p.stdout
    # and a signature over another digest fails the same commands
    env["DIGEST"] = world["shapes"]["docker"].digest
    bad = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0


def test_a_site_that_refuses_foreign_urls_is_named_with_the_setting_that_allows_them(ob, keydir, world, tmp_path):
    folder = tmp_path / "win"
    r = build(ob, world, folder, keydir / "ed" / "bundle.key", [{"ref": "acme/windows:1.0"}])
    archive = r.json["result"]["archive"]
    site = start_registry(tmp_path / "site", kind="plain", accesslog=True)  # distribution's default: no URL
    try:
        i = ob("install", archive, "--kit", tmp_path / "kit", "--trust", keydir / "ed" / "bundle.pub",
               "--registry", site.host, "--insecure-registry", site.host)
        puts = [q for q in site.requests() if q.method == "PUT" and "/manifests/" in q.path]
    finally:
        site.stop()
    assert i.rc == 7, i
    assert "validation.manifests.urls.allow" in i.err and "Traceback" not in i.err
    assert "MANIFEST_BLOB_UNKNOWN" in i.err  # the registry's own words (point 2)
    assert len(puts) == 1, puts  # its 500 names the request as invalid: asked once, not retried


def test_signed_by_with_the_wrong_key_refuses_the_build_naming_the_image(ob, keydir, world, tmp_path):
    folder = tmp_path / "wrong"
    folder.mkdir()
    for name in ("ec.pub", "ed.pub"):
        (folder / name).write_bytes((world["keys"] / name).read_bytes())
    (folder / "bundle.yaml").write_text(
        "apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: wrong\n  version: \"1.0.0\"\n"
        "spec:\n  images:\n    - ref: acme/buildx:1.0\n      signed-by: ed.pub\n")
    src = world["src"]
    r = ob("build", folder / "bundle.yaml", "--key", keydir / "ed" / "bundle.key", "--out", folder / "out",
           "--cache", folder / "cache", "--mirror", "docker.io=%s" % src.host, "--registry-ca", src.ca_file,
           env=source_env(world, folder))
    assert r.rc == 4, r
    assert "acme/buildx:1.0" in r.err and "no valid signature" in r.err and "ed.pub" in r.err
    assert not (folder / "out").exists() or not list((folder / "out").glob("*.bundle.tar.zst"))


# --- issue 12 point 8: install --docker with the real engine (Docker 20.10: no zstd) -----------------------

def test_install_docker_loads_what_runs_skips_what_cannot_and_prefers_gzip_on_an_old_engine(ob, world, keydir,
                                                                                          tmp_path):
    from tests.helpers.dockerd import start_dockerd

    client = world["src"].client()
    artifact = P.oci_referrer(world["shapes"]["sbom"], "application/vnd.example.config+json", b'{"a":1}', "a.json")
    artifact.push(client, "acme/artifact", "1.0")
    r = build(ob, world, tmp_path / "b", keydir / "ed" / "bundle.key",
              [{"ref": "acme/buildx:1.0"}, {"ref": "acme/podman:1.0"}, {"ref": "acme/official:1.0"},
               {"ref": "acme/artifact:1.0"}])
    archive = r.json["result"]["archive"]
    shapes = world["shapes"]
    with start_dockerd() as d:
        i = ob("install", archive, "--kit", tmp_path / "kit", "--trust", keydir / "ed" / "bundle.pub", "--docker",
               "--platform", "linux/amd64", "--json", env=d.env)
        assert i.rc == 0, i
        docker = i.json["result"]["docker"]
        assert docker["engine"].startswith("20.10")
        loaded = {x["ref"]: x["id"] for x in docker["images"]}

        def config_of(art):
            return json.loads(art.data)["config"]["digest"]
        assert loaded == {
            "docker.io/acme/buildx:1.0": config_of(shapes["buildx"].child("linux/amd64")),
            # podman's index lists the gzip manifest and its zstd sibling: Docker 20.10 gets the gzip one
            "docker.io/acme/podman:1.0": config_of(shapes["podman"].child("linux/amd64")),
            "docker.io/acme/official:1.0": config_of(shapes["official"].child("linux/amd64"))}
        [skipped] = docker["skipped"]
        assert skipped["ref"] == "docker.io/acme/artifact:1.0" and "artifact" in skipped["reason"]
        ids = subprocess.run(["docker", "-H", d.host, "images", "-q", "--no-trunc"], capture_output=True,
                             text=True, check=True).stdout.split()
        assert set(loaded.values()) <= set(ids)
        text = ob("status", "--kit", tmp_path / "kit")
        assert text.rc == 0, text
    from installer.kit.layout import Kit

    owned = [tag for site in Kit(str(tmp_path / "kit")).owners().values() for tag in site]
    assert any("acme/buildx" in tag for tag in owned)
    assert not any("acme/artifact" in tag for tag in owned)  # skipped: given no Docker tag, so none is claimed


def test_install_docker_refuses_zstd_only_images_on_docker_20_before_the_kit_changes(ob, world, keydir, tmp_path):
    from tests.helpers.dockerd import start_dockerd

    r = build(ob, world, tmp_path / "b", keydir / "ed" / "bundle.key", [{"ref": "acme/zstd:1.0"}])
    archive = r.json["result"]["archive"]
    kit = tmp_path / "kit"
    with start_dockerd() as d:
        i = ob("install", archive, "--kit", kit, "--trust", keydir / "ed" / "bundle.pub", "--docker",
               "--platform", "linux/amd64", env=d.env)
    assert i.rc == 10, i
    assert "zstd" in i.err and "20.10" in i.err and "23.0 or later" in i.err and "Traceback" not in i.err
    assert not (kit / "bundles" / "shapes").exists()  # nothing promoted, no current version
    assert not (kit / "current").exists() or not any((kit / "current").iterdir())
