"""rollback and gc on a real kit and a real site registry."""

import os

import pytest
from conftest import write_manifest
from tests.helpers.images import make_image, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry


@pytest.fixture
def two_versions(ob, key, tmp_path):
    """1.0.0 and 2.0.0 of one bundle whose image tag moved in between."""
    src_reg = start_registry(tmp_path / "src", kind="plain")
    site = start_registry(tmp_path / "site", kind="plain")
    lay = tmp_path / "lay"
    a = make_image(lay, "a", [{"v": b"one\n"}])
    b = make_image(lay, "b", [{"v": b"two\n"}])
    archives = {}
    for version, tag in (("1.0.0", "a"), ("2.0.0", "b")):
        push(lay, tag, src_reg, "team/app:stable")
        m = write_manifest(tmp_path / ("m" + version), version=version, tenants=False,
                           extra="  images:\n    - ref: docker.io/team/app:stable\n")
        r = ob("build", m, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / ("c" + version),
               "--mirror", "docker.io=%s" % src_reg.host, "--insecure-registry", src_reg.host, "--json")
        assert r.rc == 0, r
        archives[version] = r.json["result"]["archive"]
    yield archives, site, a.digest, b.digest
    site.stop()
    src_reg.stop()


def install(ob, archive, kit, pub, site):
    return ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host, "--insecure-registry",
              site.host, "--json")


def test_rollback_switches_current_and_moves_tags_back(ob, two_versions, pub, tmp_path):
    archives, site, first, second = two_versions
    kit = tmp_path / "kit"
    assert install(ob, archives["1.0.0"], kit, pub, site).rc == 0
    assert install(ob, archives["2.0.0"], kit, pub, site).rc == 0
    assert skopeo_inspect_digest("docker.io/team/app:stable", site) == second
    r = ob("rollback", "demo", "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 0, r
    assert r.json["result"]["current"] == "1.0.0" and r.json["result"]["previous"] == "2.0.0"
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"
    assert skopeo_inspect_digest("docker.io/team/app:stable", site) == first
    assert r.json["result"]["sites"][0]["tags_moved"] == 1
    status = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]
    assert status["current"] == "1.0.0" and status["last"]["outcome"] == "rolled-back"
    assert status["highest_current"] == "2.0.0"
    # forward again: 2.0.0 is already installed, so this is a switch back and a tag move, no unpacking
    again = install(ob, archives["2.0.0"], kit, pub, site)
    assert again.rc == 0 and again.json["result"]["outcome"] == "already-installed"
    assert skopeo_inspect_digest("docker.io/team/app:stable", site) == second


def test_rollback_with_nothing_before_is_a_usage_error(ob, two_versions, pub, tmp_path):
    archives, site, _, _ = two_versions
    kit = tmp_path / "kit"
    assert install(ob, archives["1.0.0"], kit, pub, site).rc == 0
    r = ob("rollback", "demo", "--kit", kit, "--trust", pub)
    assert r.rc == 2 and "nothing to roll back" in r.err
    assert ob("rollback", "other", "--kit", kit, "--trust", pub).rc == 2


def test_rollback_reports_what_it_could_not_revert(ob, two_versions, pub, tmp_path):
    archives, site, _, _ = two_versions
    kit = tmp_path / "kit"
    assert install(ob, archives["1.0.0"], kit, pub, site).rc == 0
    assert install(ob, archives["2.0.0"], kit, pub, site).rc == 0
    site.stop()  # the site registry is down
    r = ob("rollback", "demo", "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 10 and "could not revert" in r.json["error"]["message"]
    assert any(p.startswith("tags on %s" % site.host) for p in r.json["error"]["problems"])
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"  # the switch stands


def test_gc_removes_old_versions_but_never_the_current_one(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        m = write_manifest(tmp_path / ("m" + version), version=version, files={"cfg/app.yaml": version.encode()})
        archive = ob("build", m, "--key", key, "--out", tmp_path / "out", "--json").json["result"]["archive"]
        assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    assert ob("rollback", "demo", "--kit", kit, "--trust", pub).rc == 0  # current is now 1.1.0
    r = ob("gc", "--kit", kit, "--keep", "1", "--json")
    assert r.rc == 0, r
    assert r.json["result"]["removed"] == ["demo 1.0.0"]  # 1.2.0 is the newest, 1.1.0 is current
    assert sorted(os.listdir(kit / "bundles" / "demo")) == ["1.1.0", "1.2.0"]
    check = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]
    assert [v["version"] for v in check["versions"]] == ["1.1.0", "1.2.0"] and check["current"] == "1.1.0"
    assert ob("gc", "--kit", kit, "--keep", "0").rc == 2
    assert ob("gc", "--kit", kit, "--keep", "x").rc == 2
