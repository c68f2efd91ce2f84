"""Which GA4 errors are worth retrying, and the retry loop with exponential backoff.

GA answers every exhausted quota with RESOURCE_EXHAUSTED (HTTP 429); only its message says
which one. The matching below follows GA's wording (the emulator answers with the same):

- "Exhausted concurrent requests quota": too many requests in flight. Retried with backoff.
- "Exhausted property tokens per day": the daily budget; resets at midnight Pacific. Stop.
- "Exhausted property tokens per hour" or "... tokens for a project per hour": the hourly
  budgets. Wait for the next hour when allowed and short enough, otherwise stop.
- "... potentially thresholded requests" and "server errors": hourly as well.

UNAVAILABLE, DEADLINE_EXCEEDED and INTERNAL are transient and retried, as are the REST
transport's connection errors. Anything else is not. A server that cannot even be connected to
(refused, or speaking another protocol) may get a shorter bound: see `unreachable`.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import BadStatusLine, RemoteDisconnected
from typing import TypeVar

import requests
from google.api_core import exceptions as gexc

log = logging.getLogger(__name__)

T = TypeVar("T")


class Failure(enum.Enum):
    """What an error means for the caller."""

    TRANSIENT = "transient"
    CONCURRENCY = "concurrent requests"
    HOURLY_TOKENS = "hourly"
    DAILY_TOKENS = "daily"
    FATAL = "fatal"


# Lower-case fragments of GA's RESOURCE_EXHAUSTED messages, most specific first.
_QUOTA_MESSAGES = (
    ("concurrent requests", Failure.CONCURRENCY),
    ("tokens per day", Failure.DAILY_TOKENS),
    ("tokens for a project per hour", Failure.HOURLY_TOKENS),
    ("tokens per hour", Failure.HOURLY_TOKENS),
    ("potentially thresholded requests", Failure.HOURLY_TOKENS),
    ("server errors", Failure.HOURLY_TOKENS),
)


def classify(error: BaseException) -> Failure:
    """Sort an API error (gRPC or REST transport alike) into what to do about it."""
    # REST maps 429 to TooManyRequests, gRPC to its subclass ResourceExhausted.
    if isinstance(error, gexc.TooManyRequests):
        message = str(getattr(error, "message", error)).lower()
        for fragment, failure in _QUOTA_MESSAGES:
            if fragment in message:
                return failure
        # An unknown quota: stopping is safer than spinning on it.
        return Failure.DAILY_TOKENS
    if isinstance(error, gexc.ServiceUnavailable | gexc.GatewayTimeout | gexc.InternalServerError):
        return Failure.TRANSIENT
    if isinstance(error, requests.ConnectionError):
        return Failure.TRANSIENT
    return Failure.FATAL


# gRPC's wording when no connection could be made, or the peer is not an HTTP/2 server.
_GRPC_UNREACHABLE = ("failed to connect", "connection refused", "failed parsing http/2")


def unreachable(error: BaseException) -> str | None:
    """Why no connection to the server could be made at all, or None if one was.

    Refused connections and a peer speaking another protocol (REST against a gRPC port or the
    reverse) will not heal by waiting, unlike a connection dropped mid-run.
    """
    if isinstance(error, gexc.ServiceUnavailable):
        text = str(error.message).lower()
        if "failed parsing http/2" in text:
            return "the server does not speak gRPC"
        if any(fragment in text for fragment in _GRPC_UNREACHABLE):
            return "connection refused" if "refused" in text else "cannot connect"
        return None
    if not isinstance(error, requests.ConnectionError):
        return None
    for cause in _causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, BadStatusLine) and not isinstance(cause, RemoteDisconnected):
            return "the server does not speak HTTP/1.1 (a gRPC port?)"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: arguments, urllib3's `reason`, causes, contexts."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        pending += [item for item in linked if isinstance(item, BaseException)]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one request: attempts, the backoff's growth and a total time."""

    attempts: int = 6
    initial_seconds: float = 1.0
    maximum_seconds: float = 32.0
    multiplier: float = 2.0
    total_seconds: float = 300.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        ceiling = min(self.maximum_seconds, self.initial_seconds * self.multiplier**retry)
        return rng.uniform(0.0, ceiling)


def call_with_retry(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    unreachable_seconds: float | None = None,
) -> T:
    """Run `call`, retrying transient and concurrency errors; others propagate unchanged.

    The last error is re-raised once attempts or time run out, so callers see what GA said.
    `unreachable_seconds` bounds the time spent on a server that cannot be connected to at all
    (see `unreachable`); unset, such errors get the policy's whole time like any other.
    """
    rng = rng or random.Random()
    started = clock()
    for retry in range(policy.attempts):
        try:
            return call()
        except (gexc.GoogleAPICallError, requests.ConnectionError) as error:
            failure = classify(error)
            if failure not in (Failure.TRANSIENT, Failure.CONCURRENCY):
                raise
            delay = policy.backoff(retry, rng)
            last = retry + 1 >= policy.attempts
            limit = policy.total_seconds
            if unreachable_seconds is not None and unreachable(error):
                limit = min(limit, unreachable_seconds)
            if last or clock() - started + delay > limit:
                log.warning("%s: giving up after %d attempts: %s", what, retry + 1, failure.value)
                raise
            log.warning(
                "%s: %s (%s); retry %d in %.1f s",
                what,
                type(error).__name__,
                failure.value,
                retry + 1,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")
