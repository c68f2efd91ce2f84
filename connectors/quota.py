"""Spend a property's GA4 tokens carefully: stop before a budget runs out, never spin on it.

GA charges every report request tokens from an hourly and a daily budget per property, shared
with everyone else using the property (Looker Studio included). Each response says what the
request cost and what is left; the guard stops the run while a reserve remains, so other users
of the property are not locked out and a rerun can resume after the reset.

Concurrency, worst case per property: the run queue in `dagster.yaml` runs at most 2 runs per
property, and the CLI backfill at most 2 partition workers per property; each process lets at
most `REQUESTS_PER_PROCESS` = 2 requests per property be in flight (the semaphore below). So
2 x 2 = 4 requests from backfills plus 4 from scheduled runs is at most 8, under GA's 10 on a
standard property, with room for a dashboard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.errors import QuotaExhaustedError

log = logging.getLogger(__name__)

PACIFIC = ZoneInfo("America/Los_Angeles")
REQUESTS_PER_PROCESS = 2
# Optional requests stop well before the reserve: at ten times it (a few hundred tokens of a
# standard property's 200,000 a day).
OPTIONAL_HEADROOM = 10.0

_slots_lock = threading.Lock()
_slots: dict[str, threading.BoundedSemaphore] = {}


@contextmanager
def request_slot(property_id: str) -> Iterator[None]:
    """Hold one of this process's in-flight request slots for the property."""
    with _slots_lock:
        slot = _slots.setdefault(property_id, threading.BoundedSemaphore(REQUESTS_PER_PROCESS))
    with slot:
        yield


def daily_reset(now: datetime) -> datetime:
    """The next midnight Pacific time, when GA's daily token budgets refill."""
    local = now.astimezone(PACIFIC)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC)


def hourly_reset(now: datetime) -> datetime:
    """The start of the next hour, when the hourly budgets refill."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


@dataclass(frozen=True)
class QuotaPolicy:
    """How much of a budget to leave untouched, and whether to wait for the hourly one.

    A run stops when a budget's remaining tokens fall below `reserve_factor` times the cost of
    the last request (at least `minimum_reserve`). An hourly stop is waited out instead when
    the reset is at most `max_hourly_wait` away; zero never waits.
    """

    reserve_factor: float = 2.0
    minimum_reserve: int = 10
    max_hourly_wait: timedelta = timedelta(0)


class QuotaGuard:
    """Checks the property's budgets before each request, from the last response's figures."""

    def __init__(
        self,
        property_id: str,
        *,
        policy: QuotaPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.property_id = property_id
        self.policy = policy or QuotaPolicy()
        self._now = now
        self._sleep = sleep
        self._last_cost = 0
        self.spent = 0  # tokens this guard's requests cost
        self._remaining: dict[str, int] = {}

    def record(self, *, cost: int, daily_left: int, hourly_left: int) -> None:
        """Remember a response's cost and what the property's budgets have left."""
        self._last_cost = cost
        self.spent += cost
        self._remaining = {"daily": daily_left, "hourly": hourly_left}

    @property
    def remaining(self) -> dict[str, int]:
        """Tokens the property had left after the last response, per budget."""
        return dict(self._remaining)

    def reserve(self) -> int:
        return max(self.policy.minimum_reserve, int(self.policy.reserve_factor * self._last_cost))

    def allows_optional(self, headroom: float = OPTIONAL_HEADROOM) -> bool:
        """Whether a request that could be skipped (a page fetched ahead) may spend tokens.

        Only with the budgets known and each `headroom` times its reserve or more: near the
        end of a budget every token goes to the partition in hand. Never waits or raises.
        """
        floor = headroom * self.reserve()
        return bool(self._remaining) and all(left >= floor for left in self._remaining.values())

    def before_request(self) -> None:
        """Raise, or wait for the hourly reset, when a budget is down to its reserve."""
        reserve = self.reserve()
        for budget in ("daily", "hourly"):
            if budget not in self._remaining:
                continue
            left = self._remaining[budget]
            if left >= reserve:
                continue
            if budget == "hourly" and self._wait_for_hour():
                self._remaining.pop("hourly")
                continue
            raise self.exhausted(budget, reason=f"{left} tokens left, below the reserve {reserve}")

    def exhausted(self, budget: str, *, reason: str) -> QuotaExhaustedError:
        """The error that stops the run: which budget, what was used, when it comes back."""
        now = self._now()
        resets = daily_reset(now) if budget == "daily" else hourly_reset(now)
        when = (
            f"{resets:%Y-%m-%d %H:%M %Z} (midnight Pacific time)"
            if budget == "daily"
            else f"{resets.astimezone(UTC):%Y-%m-%d %H:%M} UTC (the next hour)"
        )
        return QuotaExhaustedError(
            f"GA4 property {self.property_id}: stopped on the {budget} token quota "
            f"({reason}); this run used {self.spent} tokens, the last request "
            f"{self._last_cost}. It resets at {when}. Run the same command again after that: "
            "finished partitions are skipped and this one is fetched again from the start; "
            "nothing of it was written.",
            budget=budget,
        )

    def _wait_for_hour(self) -> bool:
        if self._sleep is None or not self.policy.max_hourly_wait:
            return False
        now = self._now()
        wait = hourly_reset(now) - now
        if wait > self.policy.max_hourly_wait:
            return False
        log.warning(
            "property %s: hourly token quota nearly spent; waiting %.0f s for the next hour",
            self.property_id,
            wait.total_seconds(),
        )
        self._sleep(wait.total_seconds())
        return True

    def wait_for_hour(self) -> bool:
        """After GA refused a request on the hourly quota: wait if allowed and short."""
        return self._wait_for_hour()
