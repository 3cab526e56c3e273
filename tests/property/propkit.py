"""Shared pieces of the property suite: deterministic settings, the "typed error only" check,
the register of known bugs, and strategies for hostile YAML, JSON and bytes.

Every property states: the function returns a value, or raises a BundleError subclass (our typed
errors, each with its exit code). Anything else is a bug. Bugs already reported are listed in
KNOWN_BUGS, each with a strict-xfail regression test in test_prop_regressions.py; the properties
tolerate exactly those (matched by exception type AND the code location in the traceback) so the
suite stays green while they are open and still catches every new one. Once a bug is fixed its
regression test XPASSes (a failure under strict xfail): delete its KNOWN_BUGS entry and the xfail
marker together. Set PROPERTY_STRICT=1 to tolerate nothing.
"""

import datetime
import io
import os
import traceback
from collections import Counter
from typing import Callable, Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from installer.errors import BundleError

from conftest import write_manifest  # noqa: F401  (tests/conftest.py; re-exported for the property tests)

# Deterministic: derandomize (the seed comes from the test itself), no example database, no
# deadline (CI machines are slow and shared). Each test picks its own max_examples.
BASE = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


def prop(max_examples: int):
    return settings(BASE, max_examples=max_examples)


STRICT = os.environ.get("PROPERTY_STRICT") == "1"


# --- known bugs ------------------------------------------------------------------------------------

def _frames(exc: BaseException):
    return [(f.filename.replace(os.sep, "/"), f.name) for f in traceback.extract_tb(exc.__traceback__)]


def _in(frames, file_suffix: str, func: Optional[str] = None) -> bool:
    return any(fn.endswith(file_suffix) and (func is None or name == func) for fn, name in frames)


_YAML_CONSTRUCT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)

# id -> (predicate on the exception, one-line description). Descriptions match the report.
KNOWN_BUGS = {}  # every bug the suite found is fixed; a new one fails the properties at once

SEEN: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def known_bug_report(request):
    """Autouse in every test module that imports it: after the module, name the known bugs it tolerated.

    (A fixture rather than a conftest.py hook: a second conftest.py would take the module name
    `conftest` from tests/conftest.py, which other test files import.)
    """
    before = Counter(SEEN)
    yield
    hits = SEEN - before
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if hits and reporter is not None:
        with capture.global_and_fixture_disabled() if capture else _nothing():
            reporter.write_line("")
            reporter.write_line("%s: known bugs tolerated (see test_prop_regressions.py): %s" % (
                request.module.__name__, ", ".join("%s x%d" % kv for kv in sorted(hits.items()))))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def known_bug(exc: BaseException) -> Optional[str]:
    if STRICT:
        return None
    frames = _frames(exc)
    for bug_id, (match, _desc) in KNOWN_BUGS.items():
        try:
            if match(exc, frames):
                return bug_id
        except Exception:  # a predicate must never hide the real exception
            continue
    return None


class Outcome:
    __slots__ = ("value", "error", "bug")

    def __init__(self, value=None, error: Optional[BundleError] = None, bug: Optional[str] = None) -> None:
        self.value = value
        self.error = error
        self.bug = bug

    @property
    def ok(self) -> bool:
        return self.error is None and self.bug is None


def typed(fn: Callable, *args, allowed=(), **kwargs) -> Outcome:
    """Run fn: a value, a BundleError (or one of ``allowed``), a known bug; anything else propagates."""
    try:
        return Outcome(value=fn(*args, **kwargs))
    except BundleError as exc:
        assert isinstance(exc.exit_code, int) and exc.exit_code != 0, exc
        assert isinstance(exc.message, str) and exc.message, exc
        assert "Traceback" not in exc.message
        return Outcome(error=exc)
    except allowed as exc:  # documented non-BundleError errors (Version: ValueError)
        return Outcome(error=exc)
    except Exception as exc:
        bug = known_bug(exc)
        if bug is None:
            raise
        SEEN[bug] += 1
        return Outcome(bug=bug)


def label(out: Outcome, prefix: str = "outcome") -> None:
    """Record the outcome class in hypothesis' statistics (--hypothesis-show-statistics)."""
    from hypothesis import event
    from hypothesis.control import currently_in_test_context

    if currently_in_test_context():
        event("%s: %s" % (prefix, "ok" if out.ok else out.bug or type(out.error).__name__))


# --- a stream that proves reads are bounded ---------------------------------------------------------

class Unbounded(Exception):
    """Not a BundleError on purpose: the reader asked for a read of unbounded size."""


class GuardedStream:
    """read(n) over bytes; refuses n < 0 / None (read everything) and n above ``max_read``."""

    def __init__(self, data: bytes, max_read: int = (1 << 20)) -> None:
        self._buf = io.BytesIO(data)
        self.max_read = max_read
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.max_read:
            raise Unbounded("read(%r) on an untrusted stream" % (n,))
        out = self._buf.read(n)
        self.consumed += len(out)
        return out


# --- strategies ------------------------------------------------------------------------------------

# Text that YAML and JSON must carry: odd unicode, controls, tabs/newlines, BOM, bidi, NEL, LS/PS.
ODD_CHARS = ("\t\n\r\x00\x01\x1b\x7f\x85\xa0\u2028\u2029\ufeff\u202e\u200b"
             "\U0001F600\u0661\uff10\u00b5\u03bc\\\"'#:&*!|>%@`{}[],?-")
odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list(ODD_CHARS)),
                   max_size=40)
long_text = st.builds(lambda c, n: c * n, st.sampled_from(["a", "1", "\u00e9", " ", "\t", "-", "é1"]),
                      st.sampled_from([300, 5000, 20000]))
yaml_scalar = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(), st.datetimes(),
    odd_text, long_text,
    st.sampled_from(["", "..", ".", "*", "~", "null", "yes", "no", "on", "0x1F", "1e3", "1_000", "08", "0o7",
                     "168h", "30d", "1.5h", "5MB", "-1", "0", "2026-11-26T00:00:00Z", "1.0.0", "v1.0.0"]),
)
key_scalar = st.one_of(odd_text, st.integers(-5, 5), st.booleans(), st.none(), st.floats(allow_nan=False))


def yaml_value(keys=key_scalar, leaves=yaml_scalar, max_leaves=12):
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=4)),
                        max_leaves=max_leaves)


# JSON values (for bundle.json, DELTA.json, OCI documents)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2 ** 70), 2 ** 70),
                        st.floats(allow_nan=False, allow_infinity=False), odd_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(odd_text, inner, max_size=4)),
                          max_leaves=20)


def json_paths(value, prefix=()):
    """Every path (a tuple of keys and indexes) in a JSON value, depth first; the empty path (the value) first."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from json_paths(v, prefix + (i,))


def edit_json(draw, doc, odd_values: list) -> None:
    """One edit of ``doc`` in place: a drawn path (not the whole document) is deleted, or its value replaced by a
    drawn JSON value or one of ``odd_values``."""
    path = draw(st.sampled_from([p for p in json_paths(doc) if p]))
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.one_of(json_value, st.sampled_from(odd_values)))

# Raw YAML text: tokens that stress the parser and PyYAML's constructors.
YAML_TOKENS = [
    "\n", "  ", "    ", "\t", "- ", ": ", "? ", ",", "{", "}", "[", "]", "'", '"', "#", "|\n", ">-\n",
    "---\n", "...\n", "%YAML 1.1\n", "%TAG !e! tag:example.com,2000:\n", "\ufeff", "\x85", "\u2028",
    "&a ", "&b ", "*a", "*b", "<<: *a", "<<: [*a, *b]", "<<: ", "!!map ", "!!seq ", "!!str ", "!!set ",
    "!!omap ", "!!pairs ", "!!binary ", "!!timestamp ", "!!int ", "!!float ", "!!bool ", "!!null ",
    "!!python/object:os.system ", "!!python/object/apply:os.system [echo]", "!!python/name:os.system",
    "!!python/tuple [1]", "!custom ", "!<tag:yaml.org,2002:str> ",
    "apiVersion", "offline-bundle/v1", "kind", "Bundle", "metadata", "name", "version", "created", "spec",
    "images", "ref", "platforms", "source", "charts", "repo", "path", "values", "files", "target", "sha256",
    "executable", "tenants", "loki", "tempo", "overrides", "ingestion", "rate_limit_bytes",
    "2020-13-45", "2026-02-30", "2001-12-14t21:59:43.10-25:00", "1:2:3", "1" * 5000, "0x", "0b", "0o", "-",
    "_", ".nan", ".inf", "-.inf", "~", "null", "yes", "1.0.0", '"1.0.0"', "demo", "''", '""', "a", "1",
]
# Characters YAML allows in a stream (YAML 1.1 "printable"); controls are tested on their own.
YAML_PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | \
    st.sampled_from(["\t", "\n", "\r", "\x85"])
printable_text = st.text(alphabet=YAML_PRINTABLE, max_size=20)
yaml_token_text = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), printable_text), max_size=40).map("".join)


NESTING_DEPTHS = st.sampled_from([2, 50, 300, 1000, 3000])


def nested_text(draw_depth=NESTING_DEPTHS):
    """Deep nesting in flow or block style (YAML and JSON)."""
    return st.builds(
        lambda style, n: {
            "flow-seq": "[" * n + "]" * n,
            "flow-map": "{a: " * n + "1" + "}" * n,
            "block": "".join("  " * i + "- \n" for i in range(min(n, 600))) + "  " * min(n, 600) + "x\n",
            "json-arr": "[" * n + "]" * n,
            "json-obj": '{"a":' * n + "1" + "}" * n,
        }[style],
        st.sampled_from(["flow-seq", "flow-map", "block", "json-arr", "json-obj"]), draw_depth)


def today() -> datetime.date:
    return datetime.date(2026, 11, 26)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- tar streams -----------------------------------------------------------------------------------

BLOCK = 512
member_path = st.one_of(
    st.from_regex(r"[A-Za-z0-9._-]{1,12}(/[A-Za-z0-9._-]{1,12}){0,3}", fullmatch=True),
    st.builds(lambda n: "d/" * n + "f", st.integers(50, 120)),   # > 100 bytes: PAX path record
    st.sampled_from(["SHA256SUMS", "SHA256SUMS.sig", "bundle.json", "DELTA.json", "images/index.json"]))
tar_entries = st.lists(st.tuples(member_path, st.binary(max_size=1500)), max_size=5)


def build_tar(entries, end=True, record=True) -> bytes:
    """A tar stream as the builder writes it: PAX+ustar headers, two zero blocks, 10 KiB records."""
    from installer.format.tarstream import member_header

    out = b""
    for path, data in entries:
        out += member_header(path, len(data), 0, False) + data + b"\0" * (-len(data) % BLOCK)
    if end:
        out += b"\0" * (2 * BLOCK)
        if record:
            out += b"\0" * (-len(out) % 10240)
    return out


def header_offsets(tar: bytes):
    """Offsets of every header block (PAX 'x' headers included), walking sizes as a reader would."""
    from installer.format.tarstream import _octal

    offsets, pos = [], 0
    while pos + BLOCK <= len(tar):
        block = tar[pos:pos + BLOCK]
        if block == b"\0" * BLOCK:
            break
        offsets.append(pos)
        try:
            size = _octal(block[124:136], "size")
        except Exception:
            break
        if size < 0:  # a signed size field: nothing after it can be located
            break
        pos += BLOCK + size + (-size % BLOCK)
    return offsets


FIELDS = {  # ustar field offsets (POSIX 1003.1)
    "name": (0, 100), "mode": (100, 108), "uid": (108, 116), "gid": (116, 124), "size": (124, 136),
    "mtime": (136, 148), "chksum": (148, 156), "typeflag": (156, 157), "linkname": (157, 257),
    "magic": (257, 263), "version": (263, 265), "uname": (265, 297), "gname": (297, 329),
    "devmajor": (329, 337), "devminor": (337, 345), "prefix": (345, 500),
}
NUMERIC_SPECIALS = [b"-1", b"-0000000001", b"+7", b"1_0", b"0o17", b"0x1f", b" 17 ", b"9", b"", b"\0",
                    b"77777777777", b"\x80" + b"\0" * 10 + b"\x01", b"\xff" * 12, b"\x80" + b"\xff" * 11,
                    b"00000001000", b"00000000000", b"1e3", b"\xd9\xa1"]
TYPEFLAGS = [b"0", b"\0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"g", b"x", b"L", b"K", b"S", b"V", b"M", b"Z"]


def fix_checksum(tar: bytearray, at: int) -> None:
    block = tar[at:at + BLOCK]
    if len(block) < BLOCK:
        return
    block[148:156] = b" " * 8
    tar[at + 148:at + 156] = b"%06o\0 " % sum(block)


@st.composite
def tar_mutation(draw, tar: bytes):
    """One structural change of a tar stream: a header field (checksum kept valid), a flipped byte,
    a cut, an insertion, an extension, a duplicated or dropped block, or a PAX header with odd records."""
    buf = bytearray(tar)
    heads = header_offsets(tar) or [0]
    kind = draw(st.sampled_from(["field", "field", "field", "flip", "truncate", "insert", "extend", "dup-block",
                                 "drop-block", "pax"]))
    if kind == "field" and len(buf) >= BLOCK:
        at = draw(st.sampled_from(heads))
        name = draw(st.sampled_from(sorted(FIELDS)))
        lo, hi = FIELDS[name]
        if name == "typeflag":
            value = draw(st.sampled_from(TYPEFLAGS))
        elif name in ("size", "mode", "uid", "gid", "mtime", "chksum", "devmajor", "devminor"):
            value = draw(st.one_of(st.sampled_from(NUMERIC_SPECIALS), st.binary(max_size=hi - lo)))
        else:
            value = draw(st.one_of(st.binary(max_size=hi - lo),
                                   st.sampled_from([b"../x", b"/etc/passwd", b"a/../b", b"\xff\xfe", b"A" * 100,
                                                    b"ustar\0", b"ustar ", b"x\0y", b"./", b"a//b"])))
        value = value[:hi - lo]
        if draw(st.booleans()):
            value = value.ljust(hi - lo, b"\0")  # NUL-padded to the field's width
        else:
            value += bytes(buf[at + lo + len(value):at + hi])  # the rest of the field as it was
        buf[at + lo:at + hi] = value[:hi - lo]
        if name != "chksum" or draw(st.booleans()):
            if name != "chksum":
                fix_checksum(buf, at)
    elif kind == "flip" and buf:
        i = draw(st.integers(0, len(buf) - 1))
        buf[i] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        del buf[draw(st.integers(0, len(buf))):]
    elif kind == "insert":
        i = draw(st.integers(0, len(buf)))
        buf[i:i] = draw(st.one_of(st.binary(max_size=600), st.just(b"\0" * BLOCK), st.just(b"\0" * 2 * BLOCK)))
    elif kind == "extend":
        buf += draw(st.one_of(st.binary(max_size=600), st.builds(lambda n: b"\0" * n, st.integers(1, 1 << 21))))
    elif kind in ("dup-block", "drop-block") and len(buf) >= BLOCK:
        i = draw(st.integers(0, len(buf) // BLOCK - 1)) * BLOCK
        if kind == "dup-block":
            buf[i:i] = buf[i:i + BLOCK]
        else:
            del buf[i:i + BLOCK]
    elif kind == "pax":
        from installer.format.tarstream import PAX_NAME, header_block

        records = draw(st.one_of(
            st.binary(max_size=300),
            st.lists(st.tuples(st.sampled_from([b"path", b"size", b"linkpath", b"GNU.sparse.map", b"mtime", b"x"]),
                               st.one_of(st.binary(max_size=40),
                                         st.sampled_from([b"-1", b"99999999999999999999", b"1" * 21, b"../../x",
                                                          b"\xff", b"a\nb", b""]))), max_size=4)
            .map(lambda rs: b"".join(_pax(k, v) for k, v in rs))))
        size = draw(st.one_of(st.just(len(records)), st.integers(0, 70000)))
        block = header_block(PAX_NAME, min(size, 8 ** 11 - 1), 0, 0o644, draw(st.sampled_from([b"x", b"g"])))
        at = draw(st.sampled_from(heads))
        buf[at:at] = block + records + b"\0" * (-len(records) % BLOCK)
    return bytes(buf)


def _pax(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def read_all(reader) -> list:
    """Consume a TarReader to its end: [(member, payload)]."""
    out = []
    while True:
        member = reader.next()
        if member is None:
            return out
        out.append((member, b"".join(reader.chunks())))
