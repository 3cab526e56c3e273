"""Issue 10 point 1: signed metadata must not reach outside the verified tree.

The attacker holds a key the kit trusts only for `sandbox-*` bundles. They sign a `sandbox-x` bundle whose
bundle.json names, as its Loki tenant file, a path outside the bundle: the kit's TLS key, /etc/passwd, a
listed member that is not a tenant file, /dev/zero or a FIFO. Before the fix phase 4 read that path into a
0644 ConfigMap under KIT/deploy/ (and --apply would have sent it to the cluster); /dev/zero exhausted memory.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.craft import edit_meta, read_entries, resign, write_archive
from tests.helpers.deploysection import TENANT_OBJECTS

SECRET = b"-----BEGIN PRIVATE KEY-----\nTOPSECRET-SITE-KEY\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def sandbox(ob, keydir, tmp_path):
    """A kit trusting keydir/other for sandbox-* only, holding the site's TLS key; a signed sandbox-x bundle."""
    kit = tmp_path / "kit"
    assert ob("trust", "add", keydir / "other" / "bundle.pub", "--names", "sandbox-*", "--kit", kit).rc == 0
    (kit / "secrets" / "tls").mkdir(parents=True)
    (kit / "secrets" / "tls" / "tls.key").write_bytes(SECRET)
    m = write_manifest(tmp_path / "src", name="sandbox-x", extra=TENANT_OBJECTS)
    r = ob("build", m, "--key", keydir / "other" / "bundle.key", "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    return kit, Path(r.json["result"]["archive"]), keydir / "other" / "bundle.key"


def craft(archive: Path, key: Path, dest: Path, change) -> Path:
    """What the attacker does: edit bundle.json, recompute SHA256SUMS and sign it with their (trusted) key."""
    return write_archive(resign(edit_meta(read_entries(archive), change), key), dest)


def no_secret_anywhere(kit: Path) -> None:
    for folder in ("deploy", "bundles"):
        for root, _dirs, files in os.walk(kit / folder):
            for f in files:
                assert b"TOPSECRET" not in (Path(root) / f).read_bytes(), os.path.join(root, f)


def tenant_path(path):
    def change(doc):
        doc["tenants"]["loki"]["path"] = path
    return change


@pytest.mark.parametrize("path", ["../../../secrets/tls/tls.key", "/etc/passwd", "config/app.yaml",
                                  "tenants/tempo.yaml", "tenants/loki.yaml/../../secrets/tls/tls.key"])
def test_a_tenant_path_outside_the_tree_is_refused(ob, sandbox, tmp_path, path):
    kit, archive, key = sandbox
    evil = craft(archive, key, tmp_path / "evil.bundle.tar.zst", tenant_path(path))
    r = ob("install", evil, "--kit", kit, "--registry", "127.0.0.1:9", "--json")
    assert r.rc == 3, r
    assert "tenants.loki" in r.json["error"]["message"]
    assert not (kit / "bundles" / "sandbox-x").exists() and not (kit / "deploy" / "sandbox-x").exists()
    no_secret_anywhere(kit)
    assert ob("verify", evil, "--trust", sandbox[2].with_suffix(".pub")).rc == 3  # verify says so too


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_tenant_path_to_a_device_or_fifo_never_hangs(ob, sandbox, tmp_path, special):
    kit, archive, key = sandbox
    if special == "fifo":
        special = str(tmp_path / "fifo")
        os.mkfifo(special)
    evil = craft(archive, key, tmp_path / "evil.bundle.tar.zst", tenant_path(special))
    r = ob("install", evil, "--kit", kit, "--registry", "127.0.0.1:9", timeout=60)
    assert r.rc == 3 and "tenants.loki" in r.err, r


def test_other_path_fields_are_members_of_the_expected_kind(ob, sandbox, tmp_path):
    kit, archive, key = sandbox

    def file_outside(doc):
        doc["files"][0]["target"] = "/etc/shadow"

    def file_reserved(doc):
        doc["files"][0]["target"] = "tenants/loki.yaml"

    def tenant_not_object(doc):
        doc["tenants"]["loki"] = "tenants/loki.yaml"

    for change, word in ((file_outside, "files[0].target"), (file_reserved, "files[0]"),
                         (tenant_not_object, "tenants.loki")):
        evil = craft(archive, key, tmp_path / "evil.bundle.tar.zst", change)
        r = ob("install", evil, "--kit", kit, "--registry", "127.0.0.1:9")
        assert r.rc == 3 and word in r.err, (change.__name__, r)
    assert not (kit / "bundles" / "sandbox-x").exists()


def test_an_installed_tenant_file_swapped_for_a_link_is_never_read(ob, sandbox, tmp_path):
    """The tree is read without following links: a tenant file replaced by a link to the TLS key after install
    is found by the reinstall's check, restored from the verified archive, and never read into a ConfigMap."""
    kit, archive, key = sandbox
    assert ob("install", archive, "--kit", kit).rc == 0
    tenant = kit / "bundles" / "sandbox-x" / "1.0.0" / "tenants" / "loki.yaml"
    genuine = tenant.read_bytes()
    os.chmod(tenant.parent, 0o755)
    tenant.unlink()
    tenant.symlink_to(kit / "secrets" / "tls" / "tls.key")
    os.chmod(tenant.parent, 0o555)
    r = ob("install", archive, "--kit", kit, "--registry", "127.0.0.1:9", "--json")
    assert r.rc == 0, r
    assert r.json["result"]["repaired"] == ["restored tenants/loki.yaml"]
    assert not tenant.is_symlink() and tenant.read_bytes() == genuine
    no_secret_anywhere(kit)
    folder = kit / r.json["result"]["outputs"]["folder"] / "kubernetes"
    maps = [json.loads(p.read_text()) for p in folder.iterdir() if "configmap" in p.name]
    assert any(genuine.decode() in m["data"].values() for m in maps)
