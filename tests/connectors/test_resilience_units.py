"""Date windows, error classification, backoff and the quota guard, without a server.

Clocks and sleeps are injected, so nothing here waits for real.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc

from connectors.emulator.quota import (
    CONCURRENT_EXHAUSTED,
    DAILY_EXHAUSTED,
    HOURLY_EXHAUSTED,
    PROJECT_HOURLY_EXHAUSTED,
)
from connectors.errors import QuotaExhaustedError
from connectors.ga4_client import can_split_windows
from connectors.quota import QuotaGuard, QuotaPolicy, daily_reset, hourly_reset
from connectors.retry import Failure, RetryPolicy, call_with_retry, classify
from connectors.windows import (
    DateWindow,
    month_just_ended,
    month_windows,
    yesterday,
)


def test_month_windows_cut_at_month_ends() -> None:
    windows = list(month_windows(date(2024, 1, 15), date(2024, 3, 10)))
    assert windows == [
        DateWindow(date(2024, 1, 15), date(2024, 1, 31)),
        DateWindow(date(2024, 2, 1), date(2024, 2, 29)),
        DateWindow(date(2024, 3, 1), date(2024, 3, 10)),
    ]


def test_halves_cover_the_window_down_to_single_days() -> None:
    window = DateWindow(date(2024, 1, 1), date(2024, 1, 31))
    first, second = window.halves()
    assert (first.days, second.days) == (16, 15)
    assert first.end + timedelta(days=1) == second.start
    day = DateWindow(date(2024, 1, 1), date(2024, 1, 1))
    with pytest.raises(ValueError, match="single day"):
        day.halves()


@pytest.mark.parametrize(
    ("time_zone", "expected_yesterday", "expected_month"),
    [
        # 2024-03-01 03:00 UTC: already March 1st in Tokyo, still February 29th in Los Angeles.
        ("Asia/Tokyo", date(2024, 2, 29), (date(2024, 2, 1), date(2024, 2, 29))),
        ("America/Los_Angeles", date(2024, 2, 28), (date(2024, 1, 1), date(2024, 1, 31))),
        ("UTC", date(2024, 2, 29), (date(2024, 2, 1), date(2024, 2, 29))),
    ],
)
def test_yesterday_and_month_just_ended_in_the_property_time_zone(
    time_zone: str, expected_yesterday: date, expected_month: tuple[date, date]
) -> None:
    now = datetime(2024, 3, 1, 3, 0, tzinfo=UTC)
    assert yesterday(time_zone, now=now) == expected_yesterday
    assert month_just_ended(time_zone, now=now) == DateWindow(*expected_month)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (gexc.ResourceExhausted(CONCURRENT_EXHAUSTED), Failure.CONCURRENCY),
        (gexc.ResourceExhausted(DAILY_EXHAUSTED), Failure.DAILY_TOKENS),
        (gexc.ResourceExhausted(HOURLY_EXHAUSTED), Failure.HOURLY_TOKENS),
        (gexc.ResourceExhausted(PROJECT_HOURLY_EXHAUSTED), Failure.HOURLY_TOKENS),
        # The REST transport raises the 429 base class with the same message.
        (gexc.TooManyRequests(DAILY_EXHAUSTED), Failure.DAILY_TOKENS),
        # A quota we do not recognise: stop rather than spin.
        (gexc.ResourceExhausted("Exhausted something new."), Failure.DAILY_TOKENS),
        (gexc.ServiceUnavailable("down"), Failure.TRANSIENT),
        (gexc.DeadlineExceeded("slow"), Failure.TRANSIENT),
        (gexc.InternalServerError("oops"), Failure.TRANSIENT),
        (gexc.InvalidArgument("bad field"), Failure.FATAL),
        (gexc.PermissionDenied("no"), Failure.FATAL),
    ],
)
def test_errors_are_classified_by_status_and_ga_message(
    error: Exception, expected: Failure
) -> None:
    assert classify(error) is expected


class FakeTime:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_retries_transient_then_succeeds_with_full_jitter() -> None:
    fake = FakeTime()
    outcomes: list[Exception | str] = [
        gexc.ServiceUnavailable("down"),
        gexc.ResourceExhausted(CONCURRENT_EXHAUSTED),
        gexc.DeadlineExceeded("slow"),
        "rows",
    ]

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(attempts=5, initial_seconds=1.0, maximum_seconds=8.0)
    result = call_with_retry(
        call, policy=policy, what="test", sleep=fake.sleep, clock=lambda: fake.now,
        rng=random.Random(3),
    )  # fmt: skip
    assert result == "rows"
    assert len(fake.sleeps) == 3
    # Full jitter: each wait lies anywhere between 0 and the exponential ceiling.
    for retry, slept in enumerate(fake.sleeps):
        assert 0.0 <= slept <= min(8.0, 2.0**retry)


def test_backoff_gives_up_after_its_attempts_with_gas_error() -> None:
    fake = FakeTime()
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        raise gexc.ServiceUnavailable("still down")

    with pytest.raises(gexc.ServiceUnavailable, match="still down"):
        call_with_retry(
            call, policy=RetryPolicy(attempts=4), what="test", sleep=fake.sleep,
            clock=lambda: fake.now, rng=random.Random(1),
        )  # fmt: skip
    assert calls == 4


def test_backoff_gives_up_when_its_time_runs_out() -> None:
    fake = FakeTime()

    def call() -> str:
        fake.now += 50.0  # each attempt takes 50 s
        raise gexc.DeadlineExceeded("slow")

    policy = RetryPolicy(attempts=100, total_seconds=120.0)
    with pytest.raises(gexc.DeadlineExceeded):
        call_with_retry(call, policy=policy, what="test", sleep=fake.sleep, clock=lambda: fake.now)
    assert fake.now <= 120.0 + 50.0 + policy.maximum_seconds


def test_token_quota_errors_are_never_retried() -> None:
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        raise gexc.ResourceExhausted(DAILY_EXHAUSTED)

    with pytest.raises(gexc.ResourceExhausted):
        call_with_retry(call, policy=RetryPolicy(), what="test", sleep=lambda _: None)
    assert calls == 1


def test_resets_are_midnight_pacific_and_the_next_hour() -> None:
    now = datetime(2024, 7, 1, 6, 30, tzinfo=UTC)  # 23:30 on June 30th in Los Angeles (PDT)
    assert daily_reset(now) == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)
    assert hourly_reset(now) == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)
    winter = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)  # 04:00 PST
    assert daily_reset(winter) == datetime(2024, 1, 11, 8, 0, tzinfo=UTC)


def test_guard_stops_before_the_daily_budget_is_spent() -> None:
    now = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
    guard = QuotaGuard("123", policy=QuotaPolicy(reserve_factor=2.0), now=lambda: now)
    guard.before_request()  # nothing known yet: the first request goes
    guard.record(cost=30, daily_left=100, hourly_left=5_000)
    guard.before_request()  # 100 left >= 2 x 30
    guard.record(cost=30, daily_left=50, hourly_left=5_000)
    with pytest.raises(QuotaExhaustedError) as stopped:
        guard.before_request()
    message = str(stopped.value)
    assert stopped.value.budget == "daily"
    assert "property 123" in message
    assert "daily token quota" in message
    assert "50 tokens left" in message
    assert "this run used 60 tokens" in message
    assert "2024-01-11 00:00 PST (midnight Pacific time)" in message
    assert "Run the same command again" in message


def test_guard_waits_for_a_near_hourly_reset_when_allowed() -> None:
    clock = {"now": datetime(2024, 1, 10, 12, 55, tzinfo=UTC)}

    def sleep(seconds: float) -> None:
        clock["now"] += timedelta(seconds=seconds)

    policy = QuotaPolicy(max_hourly_wait=timedelta(minutes=10))
    guard = QuotaGuard("123", policy=policy, now=lambda: clock["now"], sleep=sleep)
    guard.record(cost=10, daily_left=10_000, hourly_left=5)
    guard.before_request()  # waited for 13:00 instead of stopping
    assert clock["now"] == datetime(2024, 1, 10, 13, 0, tzinfo=UTC)
    # Too far from the next hour: stop and say when it resets.
    clock["now"] = datetime(2024, 1, 10, 13, 5, tzinfo=UTC)
    guard.record(cost=10, daily_left=10_000, hourly_left=5)
    with pytest.raises(QuotaExhaustedError, match=r"hourly.*2024-01-10 14:00 UTC"):
        guard.before_request()


@pytest.mark.parametrize(
    ("dimensions", "metrics", "splittable"),
    [
        (["date", "firstUserSource"], ["sessions", "totalUsers"], True),
        (["firstSessionDate", "firstUserSource"], ["newUsers"], True),
        # Sessions by first-session date: one row's sessions span several windows.
        (["firstSessionDate", "firstUserSource"], ["newUsers", "sessions"], False),
        (["firstUserSource"], ["newUsers"], False),
    ],
)
def test_which_reports_may_be_split_into_windows(
    dimensions: list[str], metrics: list[str], splittable: bool
) -> None:
    assert can_split_windows(dimensions, metrics) is splittable
