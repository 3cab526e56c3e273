"""The one retry policy (installer/site/retry.py), as tables: which answers and failures are retried, how many
attempts, how long between them, Retry-After honoured and capped."""

import email.utils
import ssl

import pytest

from installer.errors import ContentMismatch, RegistryError
from installer.site.retry import RETRY_STATUSES, RetryPolicy, Transient, parse_retry_after
from installer.site.transport import CertificateError, NotTLS, TransportError

NOW = 1_800_000_000.0


def recorded(**kw):
    waits = []
    return RetryPolicy(sleep=waits.append, **kw), waits


@pytest.mark.parametrize("status, retried", [
    (200, False), (201, False), (202, False), (206, False), (301, False), (307, False),
    (400, False), (401, False), (403, False), (404, False), (405, False), (408, True), (416, False),
    (429, True), (500, True), (501, False), (502, True), (503, True), (504, True), (505, False),
])
def test_which_statuses_are_retried(status, retried):
    assert RetryPolicy().retries_status(status) is retried
    assert (status in RETRY_STATUSES) is retried


@pytest.mark.parametrize("error, retried", [
    (TransportError("GET site: [Errno 104] Connection reset by peer"), True),
    (TransportError("GET site: timed out"), True),
    (TransportError("GET site: [Errno 111] Connection refused"), True),
    (Transient("site answered HTTP 503"), True),
    (Transient("connection lost after 10 of 20 bytes of sha256:..."), True),
    (CertificateError("site", "self-signed certificate"), False),
    (NotTLS("site", "[SSL: WRONG_VERSION_NUMBER] wrong version number"), False),
    (RegistryError("not found: GET site/v2/x/manifests/1"), False),
    (ContentMismatch("blob ... has sha256 ...: the registry served other bytes"), False),
    (ssl.SSLError("raw ssl errors never reach the policy: the transport wraps them"), False),
    (OSError("nor raw OSError"), False),
    (ValueError("nor our own bugs"), False),
])
def test_which_failures_are_retried(error, retried):
    assert RetryPolicy().retries_error(error) is retried


@pytest.mark.parametrize("value, seconds", [
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None),
    ("0", 0.0), ("3", 3.0), ("60", 60.0), ("600", 600.0),  # parsed as sent; the policy caps
    (email.utils.formatdate(NOW + 10, usegmt=True), 10.0),
    (email.utils.formatdate(NOW - 3600, usegmt=True), 0.0),  # a date in the past: now
])
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    got = parse_retry_after(value, now=lambda: NOW)
    assert got == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize("number, retry_after, wait", [
    (0, None, 0.5), (1, None, 1.0), (2, None, 2.0), (3, None, 4.0), (4, None, 8.0), (5, None, 8.0), (9, None, 8.0),
    (0, 3.0, 3.0), (4, 0.0, 0.0), (0, 59.0, 59.0), (0, 60.0, 60.0), (0, 600.0, 60.0), (3, 3600.0, 60.0),
])
def test_the_wait_is_retry_after_capped_else_exponential_backoff(number, retry_after, wait):
    assert RetryPolicy().delay(number, Transient("x", retry_after)) == wait


def test_a_failure_that_keeps_coming_is_tried_six_times_then_given_up():
    policy, waits = recorded()
    calls = []

    def attempt():
        calls.append(1)
        raise Transient("site answered HTTP 503")

    with pytest.raises(RegistryError) as caught:
        policy.run(attempt, lambda exc: RegistryError("site is not reachable or keeps failing: %s" % exc))
    assert len(calls) == policy.attempts == 6
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert caught.value.message == "site is not reachable or keeps failing: site answered HTTP 503"
    assert isinstance(caught.value.__cause__, Transient)


@pytest.mark.parametrize("retries, attempts", [(0, 1), (1, 2), (5, 6)])
def test_retries_counts_the_attempts_after_the_first(retries, attempts):
    policy, waits = recorded(retries=retries)
    calls = []

    def attempt():
        calls.append(1)
        raise TransportError("reset")

    with pytest.raises(RegistryError):
        policy.run(attempt, lambda exc: RegistryError(str(exc)))
    assert len(calls) == attempts and len(waits) == attempts - 1


def test_success_after_failures_returns_the_value_and_waits_what_each_failure_asked():
    policy, waits = recorded()
    failures = [Transient("429", retry_after=2.0), TransportError("reset"), Transient("429", retry_after=900.0)]

    def attempt():
        if failures:
            raise failures.pop(0)
        return "done"

    assert policy.run(attempt, lambda exc: RegistryError(str(exc))) == "done"
    assert waits == [2.0, 1.0, 60.0]  # Retry-After; backoff of the second attempt; Retry-After capped


@pytest.mark.parametrize("error", [
    CertificateError("site", "unable to get local issuer certificate"),
    NotTLS("site", "wrong version number"),
    ContentMismatch("the kit's copy of blob sha256:... no longer has that sha256"),
    RegistryError("not found"),
])
def test_a_failure_not_retried_goes_through_at_once(error):
    policy, waits = recorded()
    calls = []

    def attempt():
        calls.append(1)
        raise error

    with pytest.raises(type(error)) as caught:
        policy.run(attempt, lambda exc: RegistryError("given up"))
    assert caught.value is error and calls == [1] and waits == []


def test_the_policy_is_configurable_and_the_default_is_the_documented_one():
    policy = RetryPolicy()
    assert (policy.retries, policy.backoff, policy.max_backoff, policy.max_retry_after) == (5, 0.5, 8.0, 60.0)
    assert policy.statuses == frozenset({408, 429, 500, 502, 503, 504})
    strict = RetryPolicy(statuses=frozenset({503}), max_retry_after=5.0, backoff=0.1, max_backoff=0.4)
    assert strict.retries_status(503) and not strict.retries_status(429)
    assert [strict.delay(n, Transient("x")) for n in range(4)] == [0.1, 0.2, 0.4, 0.4]
    assert strict.delay(0, Transient("x", retry_after=30.0)) == 5.0
