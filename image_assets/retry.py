"""The one retry helper: exponential backoff with jitter, a server's wait hint honoured.

Built on tenacity. An attempt signals "worth trying again" by raising
:class:`Transient` (optionally with the wait a server asked for, e.g. from
``Retry-After``); anything else propagates at once. When the attempts run out,
:class:`RetriesExhausted` carries the last :class:`Transient` and the count, so
the caller can word one clear error. Both the HTTP client and the Cloudinary
backend retry through here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type
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
    """Every attempt failed transiently; ``last`` says how the last one failed."""

    def __init__(self, last: Transient, attempts: int):
        super().__init__(f"{last.reason} after {attempts} attempts")
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class Backoff:
    """``max_retries`` after the first attempt; waits ``base * 2**(n-1)`` (capped at
    ``maximum``) stretched by up to ``jitter`` at random, or the server's hint
    (capped, not stretched)."""

    max_retries: int = 3
    base: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, hint: float | None = None) -> float:
        if hint is not None:
            return min(self.maximum, max(0.0, hint))
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
        retry=retry_if_exception_type(Transient),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        for attempt_state in retrying:
            with attempt_state:
                result = attempt(attempt_state.retry_state.attempt_number)
            if (
                not attempt_state.retry_state.outcome
                or not attempt_state.retry_state.outcome.failed
            ):
                return result
    except RetryError as exc:
        last = exc.last_attempt
        error = last.exception()
        assert isinstance(error, Transient)
        raise RetriesExhausted(error, last.attempt_number) from None
    raise AssertionError("unreachable: tenacity ended without a result or an error")


def _transient(state: RetryCallState) -> Transient:
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, Transient)
    return error
