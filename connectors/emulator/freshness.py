"""Data that is not final yet: the last days before the emulator's clock still fill in.

GA may change a day's data for up to 48 hours after it ends, and shows first-user acquisition
fields as ``(data not available)`` until it has attributed the user. Clients must therefore
reload recent days once they settle; the emulator makes that observable:

- a day is fresh from its start until 48 hours after its end (in the property's time zone),
  so at any moment today, yesterday and the day before are fresh;
- of a fresh day's facts (a user's activity on that day, or their arrival as a new user), only a
  share is reported: 85 % until the day ends, then rising by 15 points over the next 48 hours
  by whole hours of the clock. Which facts are in that share is fixed by a hash of the user
  and the date, so the same clock always gives the same answer and totals only ever grow;
- users whose first session falls on a fresh day read ``(data not available)`` in every
  first-user acquisition dimension.

Once the clock has passed the 48 hours, every value is the true one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

FRESH_DAYS = 2
SETTLE_HOURS = 24 * FRESH_DAYS
# Share of a fresh day's facts reported, in thousandths: at the day's end, and gained until
# it settles.
FIRST_SHARE = 850
SHARE_GAINED = 1000 - FIRST_SHARE
PENDING = "(data not available)"


@dataclass(frozen=True)
class Freshness:
    """The clock as the report sees it: the property's today and the hour into it."""

    today: date
    hour: int

    @classmethod
    def at(cls, local_now: datetime) -> Freshness:
        return cls(local_now.date(), local_now.hour)

    @property
    def first_fresh_day(self) -> date:
        return self.today - timedelta(days=FRESH_DAYS)

    def share(self, day: date) -> float:
        """The share of ``day``'s facts reported now (1.0 once settled); mirrors the SQL."""
        hours_since_end = self.hour + 24 * ((self.today - day).days - 1)
        aged = min(max(hours_since_end, 0), SETTLE_HOURS)
        if day < self.first_fresh_day:
            return 1.0
        return (FIRST_SHARE + SHARE_GAINED * aged // SETTLE_HOURS) / 1000
