"""The registry's own words in an error answer (installer/site/errorbody.py): what the one-line error shows of
them (code and message, escaped, capped) and which answers name the request as invalid, so that another attempt
cannot change them. The client using them: tests/unit/test_registry_errors.py."""

import json

import pytest

from installer.site.errorbody import MAX_BODY, MAX_SAID, MAX_TEXT, names_request_invalid, said


def body(*entries) -> bytes:
    return json.dumps({"errors": [dict(e) for e in entries]}).encode()


# distribution 2.8, asked for a repository whose name holds a ':' (its filesystem driver: "invalid path")
DISTRIBUTION_INVALID_PATH = json.dumps({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": {
    "Path": "/docker/registry/v2/repositories/127.0.0.1:5000/acme/app/_uploads/c3e4/startedat",
    "DriverName": "filesystem"}}]}).encode()

# distribution 2.8, asked for a repository name of more than 255 characters (ErrRepositoryNameInvalid)
DISTRIBUTION_NAME_TOO_LONG = json.dumps({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": {
    "Name": "airgap/127.0.0.1_40000/team/" + "a" * 230, "Reason": {}}}]}).encode()


@pytest.mark.parametrize("data, shown", [
    (body({"code": "NAME_INVALID", "message": "invalid repository name"}), "NAME_INVALID: invalid repository name"),
    (body({"code": "DENIED", "message": "requested access to the resource is denied"}, {"code": "UNAUTHORIZED"}),
     "DENIED: requested access to the resource is denied; UNAUTHORIZED"),
    (body({"message": "only a message"}), "only a message"),
    (body(*[{"code": "E%d" % n, "message": "m"} for n in range(5)]), "E0: m; E1: m; E2: m; and 2 more"),
    (body({"code": 7, "message": ["not", "text"]}), ""),      # neither is a string: nothing to show
    (b"404 page not found\n", ""),                            # not JSON
    (b"<html><body>Bad gateway</body></html>", ""),
    (b"", ""),
    (b'{"errors": "not a list"}', ""),
    (b'["errors"]', ""),
    (b"\xff\xfe not utf-8", ""),
    (b"[" * 100000, ""),                                      # nested too deep for json: not an error of ours
])
def test_the_registry_error_as_the_one_line_error_shows_it(data, shown):
    assert said(data) == shown


def test_control_characters_are_escaped_and_the_text_is_capped():
    hostile = body({"code": "DENIED\x1b[2K", "message": "\x1b[1A\x1b[2K\rbuilt demo 1.0.0, signed\u202e" + "x" * 999})
    shown = said(hostile)
    assert shown.startswith("DENIED\\x1b[2K: \\x1b[1A\\x1b[2K\\x0dbuilt demo 1.0.0, signed\\u202e")
    assert all(0x20 <= ord(c) < 0x7f for c in shown)
    assert len(shown) <= 2 * MAX_TEXT + 2 and shown.endswith("...")
    many = body(*[{"code": "C" * 500, "message": "M" * 500}] * 3)
    assert len(said(many)) == MAX_SAID and said(many).endswith("...")
    assert MAX_BODY == 64 * 1024


@pytest.mark.parametrize("data, invalid", [
    (DISTRIBUTION_INVALID_PATH, True),
    (DISTRIBUTION_NAME_TOO_LONG, True),
    (body({"code": "NAME_INVALID", "message": "invalid repository name"}), True),
    (body({"code": "name_invalid", "message": "x"}), True),
    (body({"code": "UNKNOWN", "message": "filesystem: invalid path: /docker/registry/v2/x"}), True),
    (body({"code": "MANIFEST_INVALID", "message": "manifest invalid"}), True),
    (body({"code": "DIGEST_INVALID", "message": "provided digest did not match uploaded content"}), True),
    (body({"code": "TAG_INVALID", "message": "manifest tag did not match URI"}), True),
    (body({"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"}), True),
    (body({"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}), True),
    (body({"code": "UNSUPPORTED", "message": "The operation is unsupported."}), True),
    (body({"code": "UNKNOWN", "message": "unknown error"}, {"code": "NAME_INVALID", "message": "x"}), True),
    (body({"code": "UNKNOWN", "message": "unknown error"}), False),          # may well pass: retried
    (body({"code": "UNKNOWN", "message": "unknown error", "detail": {}}), False),
    (body({"code": "UNAVAILABLE", "message": "service unavailable"}), False),
    (body({"code": "TOOMANYREQUESTS", "message": "too many requests"}), False),
    (body({"code": "UNKNOWN", "message": "x", "detail": {"Path": "/p"}}), False),  # no storage driver named
    (body({"code": "UNKNOWN", "message": "x", "detail": {"Name": "a/b"}}), False),  # no reason given
    (b"", False),
    (b"internal server error", False),
])
def test_which_answers_name_the_request_as_invalid(data, invalid):
    assert names_request_invalid(data) is invalid
