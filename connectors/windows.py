"""Date windows for report requests, as calendar dates in the property's time zone.

GA reads `startDate` and `endDate` as days in the property's time zone, so "yesterday" and
"the month just ended" must be computed there too, not in the machine's zone or UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, order=True)
class DateWindow:
    """An inclusive range of calendar days, the `dateRanges` entry of one request."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window starts on {self.start}, after its end {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def halves(self) -> tuple[DateWindow, DateWindow]:
        """The window cut in two, the first half the longer; a single day cannot be cut."""
        if self.days < 2:
            raise ValueError(f"window {self} is a single day")
        middle = self.start + timedelta(days=(self.days + 1) // 2 - 1)
        return DateWindow(self.start, middle), DateWindow(middle + timedelta(days=1), self.end)

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


def month_windows(start: date, end: date) -> Iterator[DateWindow]:
    """[start, end] cut at month boundaries: one request per calendar month by default."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    current = start
    while current <= end:
        next_month = (current.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = min(end, next_month - timedelta(days=1))
        yield DateWindow(current, last)
        current = last + timedelta(days=1)


def local_today(time_zone: str, *, now: datetime | None = None) -> date:
    """Today's date in the property's time zone."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("now must carry a time zone")
    return moment.astimezone(ZoneInfo(time_zone or "UTC")).date()


def yesterday(time_zone: str, *, now: datetime | None = None) -> date:
    """The last complete day in the property's time zone."""
    return local_today(time_zone, now=now) - timedelta(days=1)


def month_just_ended(time_zone: str, *, now: datetime | None = None) -> DateWindow:
    """The whole calendar month before the current one, in the property's time zone."""
    first_of_this = local_today(time_zone, now=now).replace(day=1)
    last = first_of_this - timedelta(days=1)
    return DateWindow(last.replace(day=1), last)
