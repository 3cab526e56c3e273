"""SemVer 2.0.0 parsing and precedence (https://semver.org, section 11)."""

import re
from functools import total_ordering
from typing import Tuple, Union

from installer.errors import BadValue

# Used with fullmatch ($ would accept a trailing newline) and ASCII digits only (\d is Unicode).
_SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
MAX_LENGTH = 128

# A pre-release identifier ranks numerically (0, n) below alphanumerically (1, text), as section 11 says.
_PreRelease = Tuple[Tuple[int, Union[int, str]], ...]


def is_semver(text: object) -> bool:
    return isinstance(text, str) and len(text) <= MAX_LENGTH and bool(_SEMVER_RE.fullmatch(text))


@total_ordering
class Version:
    __slots__ = ("text", "_core", "_pre")

    def __init__(self, text: str) -> None:
        match = _SEMVER_RE.fullmatch(text) if len(text) <= MAX_LENGTH else None
        if not match:
            raise BadValue("%r is not a SemVer version (MAJOR.MINOR.PATCH[-PRE][+BUILD])" % text)
        self.text = text
        self._core = tuple(int(x) for x in match.groups()[:3])
        pre = match.group(4)
        self._pre: _PreRelease = tuple(
            (0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()

    def _key(self) -> Tuple[Tuple[int, ...], int, _PreRelease]:
        # A version without pre-release ranks above any pre-release of the same core.
        return (self._core, 1 if not self._pre else 0, self._pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: "Version") -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.text
