"""Types as contracts (issue 11, point 6): verify returns a frozen VerifyReport, inspect reads a HeadClaims, and
their JSON is made in installer/cli/ only, with the keys and values the CLI has always printed."""

import dataclasses

import pytest
from tests.helpers.membundle import build_bundle, install_into
from tests.helpers.memregistry import MemRegistry

from installer.cli.install import install_json
from installer.cli.verify import ArchiveVerified, json_verify, report_json, text_verify
from installer.format.tarstream import TarReader
from installer.format.zstd import open_decompressed
from installer.trust.store import load_trust_paths
from installer.trust.verify import HeadClaims, ProvenHead, VerifyReport, open_archive, read_head, verify_file

VERIFY_KEYS = {"name", "version", "bundle_id", "signer", "files", "total_size", "complete", "delta",
               "archive_sha256", "sidecar", "provenance"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keydir):
    source = MemRegistry("src.test")
    source.seed_image("team/app", "1.0", [b"base\n", b"app\n" * 50])
    archive = build_bundle(source, tmp_path_factory.mktemp("report"), keydir / "ed" / "bundle.key",
                           images=["src.test/team/app:1.0"])
    return archive, keydir / "ed" / "bundle.pub"


def test_verify_file_returns_a_frozen_report_rendered_in_cli(bundle):
    archive, pub = bundle
    keys = load_trust_paths([str(pub)])
    report = verify_file(str(archive), keys, show_progress=False)
    assert isinstance(report, VerifyReport) and isinstance(report.head, ProvenHead)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.sidecar = "absent"
    doc = report_json(report)
    assert set(doc) == VERIFY_KEYS
    assert (doc["name"], doc["version"], doc["signer"], doc["complete"], doc["delta"], doc["sidecar"]) == \
        ("demo", "1.0.0", keys[0].fingerprint, True, None, "ok")
    assert doc["files"] == len(report.head.sums_entries) == report.members_seen + 1  # and bundle.json
    assert doc["total_size"] == report.head.meta.total_size and len(doc["archive_sha256"]) == 64
    result = json_verify(ArchiveVerified(str(archive), report))
    assert result["archive"] == str(archive) and result["checks"]["sidecar"] == "ok"
    assert text_verify(ArchiveVerified(str(archive), report))[0].startswith("OK demo 1.0.0: signature by ")


def test_install_result_carries_the_same_verify_fields(bundle, tmp_path):
    """install --json starts with the fields verify --json gives the same archive (one renderer, in cli/)."""
    archive, pub = bundle
    result, _ = install_into(archive, tmp_path / "kit", pub)
    report = verify_file(str(archive), load_trust_paths([str(pub)]), show_progress=False)
    shown = install_json(result)
    assert {k: shown[k] for k in VERIFY_KEYS} == report_json(report)


def test_read_head_without_trust_gives_claims(bundle):
    archive, pub = bundle
    with open_archive(str(archive)) as fh:
        stream = open_decompressed(fh)
        try:
            claims = read_head(TarReader(stream), [], require_trust=False)
        finally:
            stream.close()
    assert isinstance(claims, HeadClaims) and claims.signer is None and claims.too_large == ()
    assert claims.meta is not None and claims.meta.name == "demo" and len(claims.bundle_id) == 64


def test_install_text_with_docker_and_apply_but_no_site_registry(bundle, tmp_path):
    """--docker --apply without --registry: the text names what compose did (it used to fail on a missing site)."""
    from installer.deploy.apply import ApplyReport, ComposeApplied, KubernetesApplied
    from installer.site.dockerload import DockerLoadReport, LoadedImage
    from installer.cli.install import text_install

    archive, pub = bundle
    result, _ = install_into(archive, tmp_path / "kit", pub)
    loaded = DockerLoadReport("linux/amd64", [LoadedImage("src.test/team/app:1.0", "sha256:" + "a" * 64,
                                                          ["src.test/team/app:1.0"], "linux/amd64")])
    with_docker = dataclasses.replace(result, push=None, docker=loaded,
                                      apply=ApplyReport(compose=ComposeApplied("up", ["docker-compose up -d"])))
    lines = text_install(with_docker)
    assert "apply: compose: up" in lines and any(line.startswith("docker (linux/amd64): 1 images") for line in lines)
    assert install_json(with_docker)["deploy"] == {"apply": {"compose": "up", "commands": ["docker-compose up -d"]}}
    # Both, with no kubeconfig: the commands shown are the ones to run where the cluster is, not compose's.
    both = dataclasses.replace(with_docker, apply=ApplyReport(
        KubernetesApplied("no kubeconfig: run these where the cluster is", ["kubectl apply -f k8s/"]),
        ComposeApplied("up", ["docker-compose up -d"])))
    lines = text_install(both)
    assert "  kubectl apply -f k8s/" in lines and "  docker-compose up -d" not in lines


def test_a_head_that_must_be_signed_ignores_the_unverified_cap(bundle):
    """The cap is for inspect's unverified reads: with require_trust and no key, the answer is the trust error
    (exit 4), not a head left unread."""
    from installer.errors import TrustError

    archive, _ = bundle
    with open_archive(str(archive)) as fh:
        stream = open_decompressed(fh)
        try:
            with pytest.raises(TrustError):
                read_head(TarReader(stream), [], require_trust=True, unverified_cap=1)
        finally:
            stream.close()
