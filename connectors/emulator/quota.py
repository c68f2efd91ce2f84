"""Property token accounting and enforcement, so clients can exercise their quota handling.

Costs are a simple stand-in for GA's undisclosed formula, growing like GA's with the rows and
the days a request touches: one token per request, plus one per 10,000 rows returned, plus one
for each further 31 days of date range after the first day. Daily windows reset at midnight
Pacific time, like GA's. Once a window is spent, or too many requests for a property are in
flight, requests fail with RESOURCE_EXHAUSTED and a message worded like GA's, which names the
quota: clients tell them apart by that text (the status code is the same for all).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
from google.analytics.data_v1beta.types import PropertyQuota, QuotaStatus

from connectors.emulator.errors import EmulatorError

_PACIFIC = ZoneInfo("America/Los_Angeles")
ROWS_PER_TOKEN = 10_000
DAYS_PER_TOKEN = 31

# GA's wording for each exhausted property quota.
DAILY_EXHAUSTED = (
    "Exhausted property tokens per day. These quota tokens will return in under 24 hours."
)
HOURLY_EXHAUSTED = (
    "Exhausted property tokens per hour. These quota tokens will return in under an hour."
)
PROJECT_HOURLY_EXHAUSTED = (
    "Exhausted property tokens for a project per hour. These quota tokens will return in "
    "under an hour."
)
CONCURRENT_EXHAUSTED = (
    "Exhausted concurrent requests quota. Consider reducing the number of concurrent requests."
)


@dataclass(frozen=True)
class QuotaLimits:
    """A standard (not Analytics 360) property's limits."""

    tokens_per_day: int = 200_000
    tokens_per_hour: int = 40_000
    tokens_per_project_per_hour: int = 14_000
    concurrent_requests: int = 10
    server_errors_per_project_per_hour: int = 10
    potentially_thresholded_requests_per_hour: int = 120


def request_cost(rows_returned: int, days_touched: int = 1) -> int:
    return 1 + rows_returned // ROWS_PER_TOKEN + max(days_touched - 1, 0) // DAYS_PER_TOKEN


class QuotaLedger:
    """Tokens spent per property in the current Pacific day and hour, and requests in flight.

    As at GA, the request that overdraws a window is still answered; the ones after it fail.
    """

    def __init__(self, limits: QuotaLimits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, str], int] = {}
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def in_flight(self, property_id: str) -> Iterator[None]:
        """Hold one of the property's concurrent-request slots, or fail as GA does."""
        with self._lock:
            running = self._in_flight.get(property_id, 0)
            if running >= self._limits.concurrent_requests:
                raise EmulatorError(grpc.StatusCode.RESOURCE_EXHAUSTED, CONCURRENT_EXHAUSTED)
            self._in_flight[property_id] = running + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[property_id] -= 1

    def admit(self, property_id: str, now: datetime) -> None:
        """Refuse a request when the property's day or hour of tokens is spent."""
        day_key, hour_key = _keys(property_id, now)
        limits = self._limits
        with self._lock:
            day, hour = self._spent.get(day_key, 0), self._spent.get(hour_key, 0)
        if day >= limits.tokens_per_day:
            raise EmulatorError(grpc.StatusCode.RESOURCE_EXHAUSTED, DAILY_EXHAUSTED)
        if hour >= limits.tokens_per_hour:
            raise EmulatorError(grpc.StatusCode.RESOURCE_EXHAUSTED, HOURLY_EXHAUSTED)
        if hour >= limits.tokens_per_project_per_hour:
            raise EmulatorError(grpc.StatusCode.RESOURCE_EXHAUSTED, PROJECT_HOURLY_EXHAUSTED)

    def charge(self, property_id: str, tokens: int, now: datetime) -> PropertyQuota:
        """Record a request's tokens and return GA's quota block: consumed, then remaining."""
        day_key, hour_key = _keys(property_id, now)
        windows = (day_key[1], hour_key[1])
        with self._lock:
            # Only the current windows matter; older ones would only grow the dict.
            self._spent = {k: v for k, v in self._spent.items() if k[1] in windows}
            day = self._spent[day_key] = self._spent.get(day_key, 0) + tokens
            hour = self._spent[hour_key] = self._spent.get(hour_key, 0) + tokens
        limits = self._limits
        return PropertyQuota(
            tokens_per_day=_status(tokens, limits.tokens_per_day - day),
            tokens_per_hour=_status(tokens, limits.tokens_per_hour - hour),
            tokens_per_project_per_hour=_status(tokens, limits.tokens_per_project_per_hour - hour),
            concurrent_requests=_status(0, limits.concurrent_requests),
            server_errors_per_project_per_hour=_status(
                0, limits.server_errors_per_project_per_hour
            ),
            potentially_thresholded_requests_per_hour=_status(
                0, limits.potentially_thresholded_requests_per_hour
            ),
        )


def _keys(property_id: str, now: datetime) -> tuple[tuple[str, str], tuple[str, str]]:
    """The ledger keys of the Pacific day and hour ``now`` falls in."""
    pacific = now.astimezone(_PACIFIC)
    return (property_id, pacific.strftime("%Y-%m-%d")), (
        property_id,
        pacific.strftime("%Y-%m-%dT%H"),
    )


def _status(consumed: int, remaining: int) -> QuotaStatus:
    return QuotaStatus(consumed=consumed, remaining=max(remaining, 0))
