"""installer/kit/admission.py: every gating rule of `admit`, one row each (pure: no kit, no files)."""

import pytest

from installer.errors import TrustError, UsageError, VersionRefused
from installer.kit.admission import INSTALL, REINSTALL, AdmitOptions, Candidate, KitState, Known, admit

A = "a" * 64
B = "b" * 64
EMPTY = KitState(installed_bundle_id=None, current=None, highest_current=None)


def head(version="1.0.0", bid=A, scope=""):
    return Candidate("app", version, bid, scope)


def state(installed=None, current=None, highest=None, known=()):
    return KitState(installed, current, highest, tuple(Known(*k) for k in known))


ALLOW = AdmitOptions(allow_downgrade=True, reason="CVE fix regressed")

# (id, candidate, kit state, options, expected action or (error class, words in the message))
ROWS = [
    ("first install", head(), EMPTY, AdmitOptions(), INSTALL),
    ("upgrade", head("1.1.0"), state(current="1.0.0", highest="1.0.0", known=[("1.0.0", B, "holds")]),
     AdmitOptions(), INSTALL),
    ("rule 1: key not trusted for the name", head(scope="key X is trusted only for bundles named other-*"),
     EMPTY, AdmitOptions(), (TrustError, "trusted only for bundles named other-*")),
    ("rule 1 before every other rule", head(scope="key X expired on 2020-01-01"),
     state(installed=B, current="2.0.0", highest="2.0.0"), AdmitOptions(), (TrustError, "expired")),
    ("rule 2: same version, other content", head(), state(installed=B, current="1.0.0", highest="1.0.0"),
     AdmitOptions(), (VersionRefused, "already installed with other content")),
    ("rule 3: equal precedence, other build metadata", head("1.0.0+b2"),
     state(current="1.0.0+b1", highest="1.0.0+b1", known=[("1.0.0+b1", B, "holds")]), AdmitOptions(),
     (VersionRefused, "same precedence as app 1.0.0+b1, which this kit holds")),
    ("rule 3: against a version gc removed", head("1.0.0+b2"),
     state(current="2.0.0", highest="2.0.0", known=[("1.0.0+b1", B, "installed before")]), ALLOW,
     (VersionRefused, "which this kit installed before")),
    ("rule 3: same version string, other bundle_id once admitted", head("1.0.0"),
     state(known=[("1.0.0", B, "installed before")]), AdmitOptions(), (VersionRefused, "same precedence")),
    ("rule 3: same version and bundle_id is no conflict", head("1.0.0"),
     state(known=[("1.0.0", A, "installed before")]), AdmitOptions(), INSTALL),
    ("rule 4: downgrade refused", head("0.9.0"), state(current="1.0.0", highest="1.0.0"), AdmitOptions(),
     (VersionRefused, "older than 1.0.0")),
    ("rule 4: below the highest ever current, after a rollback", head("1.5.0"),
     state(current="1.0.0", highest="2.0.0"), AdmitOptions(), (VersionRefused, "older than 2.0.0")),
    ("rule 4: waived with a reason", head("0.9.0"), state(current="1.0.0", highest="1.0.0"), ALLOW, INSTALL),
    ("rule 4: re-installing the current version is no downgrade", head("1.0.0"),
     state(installed=A, current="1.0.0", highest="2.0.0", known=[("1.0.0", A, "holds")]), AdmitOptions(), REINSTALL),
    ("rule 5: same bundle_id is a re-install", head(), state(installed=A, current="1.0.0", highest="1.0.0",
                                                             known=[("1.0.0", A, "holds")]), AdmitOptions(), REINSTALL),
]


@pytest.mark.parametrize("candidate, kit, options, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_admit(candidate, kit, options, expected):
    if isinstance(expected, tuple):
        error, words = expected
        with pytest.raises(error) as info:
            admit(candidate, kit, options)
        assert words in info.value.message
    else:
        admission = admit(candidate, kit, options)
        assert admission.action == expected
        assert admission.previous == kit.current


def test_a_waived_downgrade_records_its_reason_and_nothing_else_does():
    waived = admit(head("0.9.0"), state(current="1.0.0", highest="1.0.0"), ALLOW)
    assert waived.downgrade_reason == "CVE fix regressed"
    assert admit(head("1.1.0"), state(current="1.0.0", highest="1.0.0"), ALLOW).downgrade_reason is None


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_allow_downgrade_needs_a_reason(reason):
    with pytest.raises(UsageError):
        AdmitOptions(allow_downgrade=True, reason=reason)


def test_refusals_carry_their_exit_codes():
    assert TrustError("x").exit_code == 4 and VersionRefused("x").exit_code == 8
