"""The bugs the property suite found, each as its smallest example, now regression tests.

Each test asserts the documented behaviour (a typed error, bounded time and memory). They were
strict xfails while the bugs were open; all are fixed.
"""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import zstandard

from bundler.plan.manifest import load_manifest
from bundler.plan.tenants import tenant_problems
from installer.format.delta import parse_delta
from installer.errors import BundleError, ContentMismatch, InvalidInput
from installer.format.imagecheck import INDEX_PATH, ImageGraph
from installer.format.meta import canonical_json, parse_meta
from installer.format.oci import OCI_MANIFEST, parse_manifest
from installer.format.reference import parse as parse_ref
from installer.format.tarstream import TarReader, _octal, header_block

from propkit import REPO, GuardedStream, Unbounded, write_manifest


# What PyYAML's scalar constructors raise today (the bug: none of it is a BundleError).
SCALAR_ERRORS = (ValueError, KeyError, IndexError, AttributeError, TypeError)


def _manifest_with(folder: Path, text_edit) -> Path:
    path = write_manifest(folder / "src")
    path.write_text(text_edit(path.read_text()))
    return path


# --- bundler/plan/yamlsrc.py -------------------------------------------------------------------------------

@pytest.mark.parametrize("ctrl", ["\x00", "\x1b", "\x1f", "\x7f"])
def test_control_character_in_manifest_is_invalid_input(tmp_path, ctrl):
    path = _manifest_with(tmp_path, lambda t: t.replace("kind: Bundle", "kind: Bundle # " + ctrl))
    with pytest.raises(InvalidInput):
        load_manifest(str(path))


@pytest.mark.parametrize("value", [
    "2026-13-01",                        # an unquoted impossible date (month 13): ValueError
    "2026-02-30",                        # day out of range: ValueError
    "2001-12-14t21:59:43.10-25:00",      # offset beyond 24 h: ValueError
    "1" * 5000,                          # 5000-digit int: ValueError (int max str digits)
    "0x" + "f" * 5000,                   # idem, hex
    "!!bool x",                          # KeyError
    "!!int ''",                          # IndexError
    "!!int '0x'",                        # ValueError
    "!!float x",                         # ValueError
    "!!timestamp x",                     # AttributeError
])
def test_yaml_scalar_errors_are_invalid_input(tmp_path, value):
    path = _manifest_with(tmp_path, lambda t: t.replace('  created: "2026-11-26T00:00:00Z"', "  created: " + value))
    with pytest.raises(InvalidInput):
        load_manifest(str(path))


def test_yaml_scalar_error_in_tenant_file_is_invalid_input(tmp_path):
    path = tmp_path / "loki.yaml"
    path.write_text("overrides:\n  tenant-a:\n    retention_period: 2026-13-01\n")
    with pytest.raises(InvalidInput):
        tenant_problems("loki", str(path), "tenants/loki.yaml")


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a: " + "{a: " * 3000 + "1" + "}" * 3000])
def test_deeply_nested_yaml_is_invalid_input(tmp_path, text):
    path = tmp_path / "bundle.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput):
        load_manifest(str(path))


BILLION_LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    "%s: &%s [%s]\n" % (n, n, ",".join(["*" + p] * 9)) for p, n in zip("abcdef", "bcdefg"))  # 236 bytes, 9**7 leaves


def test_alias_expansion_is_bounded(tmp_path):
    path = tmp_path / "bundle.yaml"
    path.write_text(BILLION_LAUGHS)
    child = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
        from installer.errors import BundleError
        from bundler.plan.manifest import load_manifest
        try:
            load_manifest(sys.argv[1])
        except BundleError as exc:
            print("typed", type(exc).__name__)
        except MemoryError:
            print("MemoryError")
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=3,
                              cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail("load_manifest of a 236-byte file ran for more than 3 s")
    assert proc.stdout.strip() == "typed InvalidInput", (proc.stdout, proc.stderr[-500:])


# --- bundler/plan/manifest.py ------------------------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    lambda t: t.replace("- source: cfg/app.yaml", '- source: "cfg/app.yaml\\0x"'),
    lambda t: t.replace("loki: tenants/loki.yaml", 'loki: "tenants/loki.yaml\\0"'),
], ids=["files-source", "tenants-source"])
def test_nul_in_source_is_invalid_input(tmp_path, edit):
    path = _manifest_with(tmp_path, edit)
    with pytest.raises(InvalidInput):
        load_manifest(str(path))


# --- installer: JSON documents (reachable with a trusted signature: a compromised or buggy builder) ----

DEEP_JSON = b"[" * 100000 + b"]" * 100000


def test_deep_bundle_json_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_meta(DEEP_JSON)


def test_deep_delta_json_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_delta(DEEP_JSON)


def _graph():
    meta = parse_meta(canonical_json({
        "format": 1, "name": "demo", "version": "1.0.0", "created": "2026-11-26T00:00:00Z",
        "tool": {"name": "offline-bundle", "version": "0.1.0"},
        "members": [{"path": "images/index.json", "size": 1}, {"path": "images/oci-layout", "size": 1}],
        "total_size": 2, "charts": [], "files": [], "tenants": {},
        "images": [{"ref": "docker.io/library/busybox:1", "digest": "sha256:" + "a" * 64, "media_type": OCI_MANIFEST,
                    "size": 1, "manifests": [], "derived": False, "source": "registry"}]}))
    return ImageGraph(meta, {})


def test_deep_index_json_is_invalid_input():
    graph = _graph()
    graph.feed(INDEX_PATH, DEEP_JSON)
    with pytest.raises(BundleError):
        graph.check()


def test_deep_manifest_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_manifest(DEEP_JSON, OCI_MANIFEST, "x")


@pytest.mark.parametrize("annotations", [["x"], "x", 5, True])
def test_index_annotations_of_another_type_are_refused(annotations):
    graph = _graph()
    graph.feed(INDEX_PATH, json.dumps({"schemaVersion": 2, "manifests": [{"annotations": annotations}]}).encode())
    with pytest.raises((ContentMismatch, InvalidInput)):
        graph.check()


# --- installer/format/tarstream.py ---------------------------------------------------------------------------

def _signed_size_header(size_field: bytes, name: bytes = b"SHA256SUMS") -> bytes:
    block = bytearray(header_block(name, 0, 0, 0o644, b"0"))
    block[124:136] = size_field.ljust(12, b"\0")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@pytest.mark.parametrize("size_field", [b"-1", b"-0000001000"])
def test_negative_size_is_refused_at_its_header(size_field):
    stream = GuardedStream(_signed_size_header(size_field) + b"\0" * (4 << 20))
    reader = TarReader(stream)
    with pytest.raises(InvalidInput):
        reader.next()
        b"".join(reader.chunks())
    assert stream.consumed <= 1024


def test_negative_size_does_not_read_the_whole_stream_in_verify():
    import installer.trust.verify as verify_mod
    from installer.format.zstd import open_decompressed

    reads = []

    class Spy:
        def __init__(self, inner):
            self.inner, self.backend = inner, inner.backend

        def read(self, n=-1):
            reads.append(n)
            if n is None or n < 0:
                raise Unbounded("read(%r)" % (n,))
            return self.inner.read(n)

        def close(self):
            self.inner.close()

    # 64 MiB of zeros after the header compress to a few KiB: a 20 GB run would be just as small.
    archive = zstandard.ZstdCompressor(level=3).compress(_signed_size_header(b"-1") + b"\0" * (64 << 20))
    with mock.patch.object(verify_mod, "open_decompressed", lambda fh, backend="": Spy(open_decompressed(fh, backend))):
        with pytest.raises(InvalidInput):
            verify_mod.verify_stream(io.BytesIO(archive), [], None)
    assert all(n is not None and n >= 0 for n in reads)


@pytest.mark.parametrize("field", [b"+17", b"1_0", b"0o17", b"0O17"])
def test_octal_fields_are_strict(field):
    with pytest.raises(InvalidInput):
        _octal(field.ljust(12, b"\0"), "size")


# --- installer/format/reference.py ---------------------------------------------------------------------------

def test_normalised_reference_parses_again():
    """The length limit applies to the normalised form: too long is refused at once, never at install."""
    with pytest.raises(InvalidInput):
        parse_ref("a" * 500)  # 525 characters once docker.io/library/ and :latest are added
    ref = parse_ref("a" * 480)
    assert parse_ref(str(ref)) == ref
