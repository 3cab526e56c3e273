"""Admission: whether a verified bundle may enter the kit, decided before a payload byte is written.

``admit`` is pure: it reads no file and writes nothing. Its inputs are what the signed head says
(`Candidate`), what the kit holds for that name (`KitState`, read once by `kit_state`) and what the
operator asked (`AdmitOptions`); its answer is an `Admission`, or the error the install stops with.
Every rule is one short check below, in the order a refusal is reported, and
tests/unit/test_admission.py has a row for each:

  1. the signer's key must be trusted for the bundle's name today (scope, expiry)    TrustError (4)
  2. the same version with other content is refused: bump the version                 VersionRefused (8)
  3. equal SemVer precedence with another version string or bundle_id is refused      VersionRefused (8)
     (2.0.0+b1 == 2.0.0+b2), also against versions gc has since removed
  4. a version below the highest ever made current needs --allow-downgrade --reason   VersionRefused (8)
     (re-installing the current version is not a downgrade)
  5. the same bundle_id already installed is a re-install: the archive is verified
     whole again and the installed tree checked (and repaired) against it

Tag ownership (a site's tags belong to one bundle name) is the sixth rule; it needs the site's tag names,
so installer/install.py checks it with installer/site/owners.py right after ``admit``.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from installer.errors import TrustError, UsageError, VersionRefused
from installer.format.semver import Version
from installer.kit.layout import Kit

INSTALL = "install"
REINSTALL = "reinstall"


@dataclass(frozen=True)
class Candidate:
    """What the verified, signed head of the archive says about itself."""
    name: str
    version: str
    bundle_id: str
    scope_problem: str  # "" when the signer's key is trusted for ``name`` today


@dataclass(frozen=True)
class Known:
    """A version of the same name the kit holds or once admitted."""
    version: str
    bundle_id: Optional[str]
    how: str  # "holds" or "installed before"


@dataclass(frozen=True)
class KitState:
    """What the kit says about one bundle name, read once before deciding."""
    installed_bundle_id: Optional[str]  # of the candidate's version, when that version is installed
    current: Optional[str]
    highest_current: Optional[str]  # the highest version ever made current (rollbacks do not lower it)
    known: Tuple[Known, ...] = ()


@dataclass(frozen=True)
class AdmitOptions:
    allow_downgrade: bool = False
    reason: Optional[str] = None

    def __post_init__(self) -> None:
        if self.allow_downgrade and not (self.reason or "").strip():
            raise UsageError("--allow-downgrade needs --reason TEXT saying why")


@dataclass(frozen=True)
class Admission:
    action: str  # INSTALL or REINSTALL
    previous: Optional[str]  # the version current before this install
    downgrade_reason: Optional[str] = None  # set when rule 4 was waived


def admit(head: Candidate, state: KitState, options: AdmitOptions) -> Admission:
    if head.scope_problem:
        raise TrustError(head.scope_problem)
    if state.installed_bundle_id is not None and state.installed_bundle_id != head.bundle_id:
        raise VersionRefused("%s %s is already installed with other content (bundle_id %s, this one %s); "
                             "bump the version" % (head.name, head.version, state.installed_bundle_id, head.bundle_id))
    _check_precedence(head, state.known)
    downgrade_reason = None
    below = state.highest_current is not None and Version(head.version) < Version(state.highest_current)
    if below and state.current != head.version:
        if not options.allow_downgrade:
            raise VersionRefused("%s %s is older than %s, the highest version this kit has made current; "
                                 "pass --allow-downgrade --reason TEXT to install it anyway"
                                 % (head.name, head.version, state.highest_current))
        downgrade_reason = options.reason
    action = REINSTALL if state.installed_bundle_id == head.bundle_id else INSTALL
    return Admission(action, state.current, downgrade_reason)


def _check_precedence(head: Candidate, known: Sequence[Known]) -> None:
    """SemVer precedence ignores build metadata: equal precedence with another version string, or the same
    version with another bundle_id, among what the kit holds or ever admitted, is refused."""
    new = Version(head.version)
    for other in known:
        if Version(other.version) == new and (other.version != head.version
                                              or (other.bundle_id and other.bundle_id != head.bundle_id)):
            raise VersionRefused("%s %s has the same precedence as %s %s, which this kit %s (bundle_id %s); SemVer "
                                 "ignores build metadata, so bump the version"
                                 % (head.name, head.version, head.name, other.version, other.how,
                                    (other.bundle_id or "?")[:16]))


def kit_state(kit: Kit, name: str, version: str) -> KitState:
    """Everything ``admit`` needs about ``name``, read from the kit (its folders, links and receipts)."""
    known = [Known(v, kit.bundle_id_of(name, v), "holds") for v in kit.versions(name)]
    known += [Known(r.version, r.bundle_id, "installed before") for r in kit.admitted(name) if r.version]
    return KitState(installed_bundle_id=kit.bundle_id_of(name, version), current=kit.current_version(name),
                    highest_current=kit.highest_current(name), known=tuple(known))
