"""The one retry helper: exponential backoff with jitter, a server's wait hint honoured.

Built on tenacity. An attempt signals "worth trying again" by raising
:class:`Transient` (optionally with the wait a server asked for, e.g. from
``Retry-After``); anything else propagates at once. A hint is honoured, never
cut short: a server that asks for a longer wait than ``Backoff.maximum`` ends
the retries at once (trying earlier would only be refused again). When the
attempts run out, :class:`RetriesExhausted` carries the last :class:`Transient`
and the count, so the caller can word one clear error. Both the HTTP client and
the Cloudinary backend retry through here.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception
from tenacity.stop import stop_after_attempt

from image_assets.failures import FailureKind

T = TypeVar("T")


class Transient(Exception):
    """Raised by an attempt that may succeed if tried again."""

    def __init__(
        self,
        reason: str,
        kind: FailureKind,
        *,
        wait: float | None = None,
        status_code: int | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.wait = wait  # seconds the other side asked us to wait, if it said
        self.status_code = status_code


class RetriesExhausted(Exception):
    """Every attempt failed transiently, or the server asked for a longer wait than
    we are willing to make; ``last`` says how the last one failed."""

    def __init__(self, last: Transient, attempts: int, *, waited_too_long: float | None = None):
        if waited_too_long is not None:
            message = (
                f"{last.reason}; the server asked to wait {last.wait:.0f}s, "
                f"more than the {waited_too_long:.0f}s allowed, so not retried"
            )
        else:
            message = f"{last.reason} after {attempts} attempts"
        super().__init__(message)
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class Backoff:
    """``max_retries`` after the first attempt; waits ``base * 2**(n-1)`` (capped at
    ``maximum``) stretched by up to ``jitter`` at random, or the server's hint
    (not stretched; a hint over ``maximum`` is not waited for: see :func:`call_with_retries`)."""

    max_retries: int = 3
    base: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, hint: float | None = None) -> float:
        if hint is not None:
            return max(0.0, hint)
        step = min(self.maximum, self.base * 2 ** (attempt - 1))
        return step * (1 + random.random() * self.jitter)


def call_with_retries(
    attempt: Callable[[int], T],
    backoff: Backoff,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Transient, int, float], None] | None = None,
) -> T:
    """Call ``attempt(n)`` for n = 1, 2, ... until it returns, raises a non-:class:`Transient`
    error, or ``backoff.max_retries`` retries are used up (:class:`RetriesExhausted`).
    A :class:`Transient` whose ``wait`` exceeds ``backoff.maximum`` ends it at once
    (also :class:`RetriesExhausted`): an early retry would break the server's terms.

    ``on_retry(error, attempt, delay)`` is called before each wait (for a log line).
    """

    def wait(state: RetryCallState) -> float:
        error = _transient(state)
        return backoff.delay(state.attempt_number, error.wait)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.next_action is not None:
            on_retry(_transient(state), state.attempt_number, state.next_action.sleep)

    retrying = Retrying(
        stop=stop_after_attempt(backoff.max_retries + 1),
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, Transient) and _waitable(e, backoff)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    made = 0
    try:
        for attempt_state in retrying:
            with attempt_state:
                made = attempt_state.retry_state.attempt_number
                result = attempt(made)
            if (
                not attempt_state.retry_state.outcome
                or not attempt_state.retry_state.outcome.failed
            ):
                return result
    except Transient as exc:  # asked to wait longer than we may
        raise RetriesExhausted(exc, made, waited_too_long=backoff.maximum) from None
    except RetryError as exc:
        last = exc.last_attempt
        error = last.exception()
        assert isinstance(error, Transient)
        raise RetriesExhausted(error, last.attempt_number) from None
    raise AssertionError("unreachable: tenacity ended without a result or an error")


def _waitable(error: Transient, backoff: Backoff) -> bool:
    return error.wait is None or error.wait <= backoff.maximum


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse ``Retry-After`` (delta-seconds or HTTP-date) into seconds to wait."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    return seconds_until(value, now)


def seconds_until(http_date: str | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` until an HTTP date (0 if past), or None when unparsable."""
    if not http_date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(http_date.strip())
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _transient(state: RetryCallState) -> Transient:
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, Transient)
    return error
