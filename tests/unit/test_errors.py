"""A value a core helper refuses reaches the user as its own sentence and exit code, never as "internal error"
(issue 11): the helpers raise BundleErrors that are still ValueErrors for callers that try a value."""

import pytest

from installer.cli.main import _as_bundle_error
from installer.errors import BundleError, InternalError, InvalidInput, UnsafeMember
from installer.format.paths import contained
from installer.format.semver import Version
from installer.format.sums import format_sums
from installer.kit.layout import Kit


@pytest.mark.parametrize("call, cls, code", [
    (lambda tmp: Version("1.2"), InvalidInput, 3),
    (lambda tmp: Version("x" * 300), InvalidInput, 3),
    (lambda tmp: format_sums({"files/a": "ABC"}), InvalidInput, 3),
    (lambda tmp: contained(str(tmp), "../escape"), UnsafeMember, 6),
    (lambda tmp: contained(str(tmp), "files/../../x"), UnsafeMember, 6),
    (lambda tmp: Kit(str(tmp)).version_dir("Bad_Name", "1.0.0"), InvalidInput, 3),
    (lambda tmp: Kit(str(tmp)).version_dir("good", "not-semver"), InvalidInput, 3),
])
def test_refused_values_carry_their_exit_code(tmp_path, call, cls, code):
    with pytest.raises(ValueError) as caught:  # still a ValueError for callers that test a value by trying it
        call(tmp_path)
    err = caught.value
    assert isinstance(err, cls) and err.exit_code == code
    shown = _as_bundle_error(err)
    assert shown is err and not isinstance(shown, InternalError)
    assert "internal error" not in shown.message and shown.message


def test_an_unexpected_exception_is_still_an_internal_error():
    shown = _as_bundle_error(KeyError("x"))
    assert isinstance(shown, BundleError) and shown.exit_code == 1 and "internal error" in shown.message
