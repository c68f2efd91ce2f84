"""Property token accounting, so clients can exercise their quota reporting.

Costs are a simple stand-in for GA's undisclosed formula: one token per request plus one per
10,000 rows returned. Daily windows reset at midnight Pacific time, like GA's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from google.analytics.data_v1beta.types import PropertyQuota, QuotaStatus

_PACIFIC = ZoneInfo("America/Los_Angeles")
ROWS_PER_TOKEN = 10_000


@dataclass(frozen=True)
class QuotaLimits:
    """A standard (not Analytics 360) property's limits."""

    tokens_per_day: int = 200_000
    tokens_per_hour: int = 40_000
    tokens_per_project_per_hour: int = 14_000
    concurrent_requests: int = 10
    server_errors_per_project_per_hour: int = 10
    potentially_thresholded_requests_per_hour: int = 120


def request_cost(rows_returned: int) -> int:
    return 1 + rows_returned // ROWS_PER_TOKEN


class QuotaLedger:
    """Tokens spent per property in the current Pacific day and hour.

    TODO(quota enforcement): answer RESOURCE_EXHAUSTED once a window runs out.
    """

    def __init__(self, limits: QuotaLimits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, str], int] = {}

    def charge(self, property_id: str, tokens: int, now: datetime) -> PropertyQuota:
        """Record a request's tokens and return GA's quota block: consumed, then remaining."""
        pacific = now.astimezone(_PACIFIC)
        windows = (pacific.strftime("%Y-%m-%d"), pacific.strftime("%Y-%m-%dT%H"))
        day_key, hour_key = ((property_id, window) for window in windows)
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


def _status(consumed: int, remaining: int) -> QuotaStatus:
    return QuotaStatus(consumed=consumed, remaining=max(remaining, 0))
