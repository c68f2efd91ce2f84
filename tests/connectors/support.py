"""Properties and clients the connector's resilience tests share."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import pyarrow as pa

from connectors.auth import build_client
from connectors.emulator.dataset import PropertyData
from connectors.emulator.errors import EmulatorError
from connectors.emulator.server import EmulatorServer
from connectors.ga4_client import Ga4Reports
from connectors.retry import RetryPolicy


def campaign_property(property_id: str, users_per_day: dict[date, int]) -> PropertyData:
    """Every user arrives through a campaign of their own: one report row per user and day.

    The quickest way to a report of any size, and to a day with as many rows as wanted.
    """
    days = np.concatenate(
        [np.full(count, (day - date(1970, 1, 1)).days) for day, count in users_per_day.items()]
    ).astype(np.int32)
    n = len(days)
    keys = np.arange(1, n + 1, dtype=np.int64)
    first = pa.array(days, type=pa.date32())
    users = pa.table(
        {
            "user_key": keys,
            "first_session_date": first,
            "channel_group": pa.array(["Paid Search"] * n),
            "source": pa.array(["google"] * n),
            "medium": pa.array(["cpc"] * n),
            "campaign": pa.array([f"campaign-{k:07d}" for k in keys]),
        }
    )
    revenue = np.round((keys % 97) * 1.25, 2)
    activity = pa.table(
        {
            "user_key": keys,
            "date": first,
            "sessions": np.ones(n, dtype=np.int64),
            "screen_page_views": (keys % 5 + 1).astype(np.int64),
            "transactions": (keys % 3 == 0).astype(np.int64),
            "ecommerce_purchases": (keys % 3 == 0).astype(np.int64),
            "purchase_revenue": revenue,
            "total_revenue": revenue,
            "user_engagement_duration": np.round((keys % 60) * 1.5, 3),
            "engaged": np.ones(n, dtype=bool),
        }
    )
    return PropertyData(
        property_id=property_id,
        display_name=f"Campaign store {property_id}",
        time_zone="Europe/Berlin",
        currency_code="EUR",
        users=users,
        activity=activity,
    )


def days_of(start: date, end: date, count: int) -> dict[date, int]:
    return {start + timedelta(days=i): count for i in range((end - start).days + 1)}


class MovingClock:
    """A settable UTC clock shared by an emulator and a client; sleeping moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def no_wait(_: float) -> None:
    """Stands in for time.sleep so backoff never really waits."""


def reports(address: str, property_id: str, **options: object) -> Ga4Reports:
    """A connector on the emulator over gRPC; retries never really wait."""
    client, credentials = build_client(endpoint=address)
    options.setdefault("sleep", no_wait)
    options.setdefault("retry", RetryPolicy(attempts=12, total_seconds=3_600))
    return Ga4Reports(client, property_id, credentials=credentials, **options)  # type: ignore[arg-type]


class CountingEmulator(EmulatorServer):
    """Counts runReport requests by their first date; can refuse the next one for a date."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self.refuse_once: set[str] = set()

    def _run_report(self, request: Any) -> bytes:
        start = request.date_ranges[0].start_date
        with self._lock:
            self.requests.append(start)
            refuse = start in self.refuse_once
            self.refuse_once.discard(start)
        if refuse:
            # Not retried, so the request sent ahead fails for good.
            raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, "a refusal the test asked for")
        return super()._run_report(request)

    def count(self, start: date) -> int:
        with self._lock:
            return self.requests.count(start.isoformat())
