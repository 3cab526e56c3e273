"""The one retry policy of every registry request: what is retried, how often, and how long we wait.

- Retried: a failure below HTTP (``TransportError``: refused, reset, timed out, cut mid-body), an answer
  with a status in ``statuses`` (408, 429 and 500, 502, 503, 504), and anything the client marks ``Transient``
  (a blob download that ended short). Never retried: a TLS certificate that does not verify, https to a
  server that does not speak TLS, any other status (the other 4xx answers will not change), a 500 whose body
  names the request itself as invalid (installer/site/errorbody.py: distribution answers a repository name its
  storage cannot hold with a 500), and every error of our own (a digest mismatch, a body that refused to
  finish): those fail at once, with the registry's own words.
- ``retries`` more attempts after the first (5: six in all), then the caller's error.
- Between attempts: ``Retry-After`` when the answer carried one (seconds or an HTTP date), capped at
  ``max_retry_after`` (60 s); else exponential backoff from ``backoff`` (0.5 s), doubling, capped at
  ``max_backoff`` (8 s): 0.5, 1, 2, 4, 8.
"""

import email.utils
import time
from dataclasses import dataclass
from typing import Callable, FrozenSet, Optional, TypeVar

from installer.site.errorbody import names_request_invalid
from installer.site.transport import CertificateError, NotTLS, TransportError

RETRY_STATUSES: FrozenSet[int] = frozenset((408, 429, 500, 502, 503, 504))
MAX_RETRY_AFTER = 60.0

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try: a retryable status, a download that ended short."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: Optional[str], now: Callable[[], float] = time.time) -> Optional[float]:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date; a past date is 0), or None when
    absent or unreadable. Not capped here: the policy caps it."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - now())


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = MAX_RETRY_AFTER
    statuses: FrozenSet[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = time.sleep

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def retries_status(self, status: int) -> bool:
        return status in self.statuses

    def retries_answer(self, status: int, body: bytes) -> bool:
        """An answer with a retryable status, unless it is a 500 whose body says the request is invalid: that
        answer will not change, however often it is asked for."""
        return self.retries_status(status) and not (status == 500 and names_request_invalid(body))

    def retries_error(self, exc: BaseException) -> bool:
        if isinstance(exc, Transient):
            return True
        return isinstance(exc, TransportError) and not isinstance(exc, (CertificateError, NotTLS))

    def transient(self, what: str, status: int, retry_after: Optional[str], said: str = "") -> Transient:
        """The Transient for an answer with a retryable status (its Retry-After header read); ``said``: the
        registry's own error (errorbody.said), kept for the message of the last attempt."""
        return Transient("%s answered HTTP %d%s" % (what, status, " (%s)" % said if said else ""),
                         parse_retry_after(retry_after))

    def delay(self, number: int, exc: BaseException) -> float:
        """How long to wait after failed attempt ``number`` (0 for the first)."""
        asked = exc.retry_after if isinstance(exc, Transient) else None
        if asked is not None:
            return max(0.0, min(asked, self.max_retry_after))
        return min(self.backoff * float(2 ** number), self.max_backoff)

    def run(self, attempt: Callable[[], T], give_up: Callable[[BaseException], Exception]) -> T:
        """``attempt()`` until it returns; a failure the policy retries is tried again after a wait, and the
        last one becomes ``give_up(failure)``; any other exception goes through at once."""
        number = 0
        while True:
            try:
                return attempt()
            except (Transient, TransportError) as exc:
                if not self.retries_error(exc):
                    raise
                if number >= self.retries:
                    raise give_up(exc) from exc
                self.sleep(self.delay(number, exc))
                number += 1
