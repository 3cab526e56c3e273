"""Docker loading against a fake engine on a unix socket: fault injection only (the real engine is tested
in tests/integration/test_images_install.py). Errors inside the load stream, and an image ID that is not
the config digest, are exit 10."""

import json

import pytest

from installer.site.dockerload import Docker
from installer.errors import DeployError
from tests.helpers.fakeengine import fake_engine


def test_an_error_inside_the_load_stream_is_exit_10(tmp_path):
    server = fake_engine(tmp_path / "d.sock", [{"stream": "Loading layer"},
                                               {"errorDetail": {"message": "no space"},
                                                "error": "write /var/lib/docker: no space"}], "x")
    try:
        with pytest.raises(DeployError) as info:
            Docker(str(tmp_path / "d.sock")).load(iter([b"\0" * 1024]))
        assert info.value.exit_code == 10 and "no space" in info.value.message
    finally:
        server.shutdown()


def test_a_missing_engine_is_exit_10(tmp_path):
    with pytest.raises(DeployError) as info:
        Docker(str(tmp_path / "none.sock")).ping()
    assert info.value.exit_code == 10 and "Docker engine" in info.value.message


@pytest.mark.parametrize("text, parsed", [("20.10.24", (20, 10)), ("23.0.1", (23, 0)), ("24.0.7-1", (24, 0)),
                                          ("27.3.1+dfsg", (27, 3)), ("master-dockerproject-2024", None), ("", None)])
def test_engine_versions_are_read_as_docker_writes_them(text, parsed):
    from installer.site.dockerload import engine_version

    assert engine_version(text) == parsed


def test_a_docker_23_engine_gets_the_first_manifest_for_its_platform_even_with_zstd_layers(tmp_path, keydir):
    """The choice among a dual-compression index's siblings depends on the engine (the real engine here is 20.10:
    tests/integration/test_real_shapes.py shows it gets the gzip one)."""
    from tests.helpers import producers as P
    from tests.helpers.membundle import build_bundle
    from tests.helpers.memregistry import MemRegistry
    from installer.site.dockerload import DockerLoad
    from installer.trust.store import load_trust_paths
    from installer.trust.verify import verify_file

    src = MemRegistry("src.test")
    dual = P.podman_dual("engine")
    # zstd first this time (buildx's --output compression=zstd,force-compression with a gzip sibling after)
    dual.children = [dual.child("linux/amd64", "zstd"), dual.child("linux/amd64")]
    doc = {"schemaVersion": 2, "mediaType": P.OCI_INDEX, "manifests": [
        dict(c.descriptor(), platform=P.platform_obj("linux/amd64")) for c in dual.children]}
    dual.data = P.go_json(doc)
    dual.push(src, "acme/app", "1.0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
        archive = build_bundle(src, tmp_path, keydir / "ed" / "bundle.key", images=["src.test/acme/app:1.0"])
    tree = tmp_path / "tree"
    import subprocess
    tree.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(tree)], check=True)
    meta = verify_file(str(archive), load_trust_paths([str(keydir / "ed" / "bundle.pub")]),
                       show_progress=False).head.meta
    for version, want in (("24.0.7", "zstd"), ("20.10.24", "")):
        server = fake_engine(tmp_path / ("d%s.sock" % version[:2]), [], "x", version)
        try:
            loader = DockerLoad(str(tree), meta, "linux/amd64",
                                docker=Docker(str(tmp_path / ("d%s.sock" % version[:2]))))
            [choice], skipped = loader.plan()
            assert loader.engine() == version and skipped == []
            assert choice.config == json.loads(dual.child("linux/amd64", want).data)["config"]["digest"]
        finally:
            server.shutdown()
