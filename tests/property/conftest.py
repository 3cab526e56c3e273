"""Fixtures for the property suite: one real signed bundle per session, built with the real CLI."""

import io
import shutil
from pathlib import Path

import pytest
import zstandard

from propkit import write_manifest



class SignedBundle:
    """A short repr: hypothesis prints its arguments when a property fails."""

    def __init__(self, archive, tar, keys, key, result) -> None:
        self.archive, self.tar, self.keys, self.key, self.result = archive, tar, keys, key, result

    def __repr__(self) -> str:
        return "SignedBundle(%s, %d bytes)" % (self.result.get("bundle_id", "?")[:12], len(self.archive))


@pytest.fixture(scope="session")
def signed_bundle(tmp_path_factory, ob, keydir):
    """A bundle built by `build` with the session key: archive bytes, tar bytes, trusted keys, key path."""
    from installer.trust import load_trust_paths

    work = tmp_path_factory.mktemp("prop-bundle")
    manifest = write_manifest(work / "src")
    r = ob("build", manifest, "--key", keydir / "ed" / "bundle.key", "--out", work / "out", "--json")
    assert r.rc == 0, r
    archive = Path(r.json["result"]["archive"])
    data = archive.read_bytes()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as zr:
        tar = zr.read()
    keys = load_trust_paths([str(keydir / "ed" / "bundle.pub")])
    yield SignedBundle(data, tar, keys, keydir / "ed" / "bundle.key", r.json["result"])
    shutil.rmtree(work, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    from propkit import SEEN

    if SEEN:
        terminalreporter.write_sep("-", "property suite: known bugs hit (see test_prop_regressions.py)")
        for bug, count in sorted(SEEN.items()):
            terminalreporter.write_line("%6d  %s" % (count, bug))
