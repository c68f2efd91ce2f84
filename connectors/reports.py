"""The GA4 reports the pipeline lands, defined once so client, emulator and warehouse agree.

Two reports per property and month:

- ``acquisition``: how many users were acquired on each first-session date, per first-user
  channel, source, medium and campaign. ``newUsers`` counts a user once, on the date of their
  first session, so it may be summed over days into cohort sizes.
- ``cohort_activity``: what those users did on each date afterwards. Every metric here is a
  count or a sum, so it may be summed over days into months of age. Non-additive user counts
  (``totalUsers``, ``activeUsers``) are deliberately absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIRST_USER_DIMENSIONS = (
    "firstUserDefaultChannelGroup",
    "firstUserSource",
    "firstUserMedium",
    "firstUserCampaignName",
)

# Dimensions whose values are GA dates (YYYYMMDD); the client turns them into DATE columns.
DATE_DIMENSIONS = frozenset({"date", "firstSessionDate"})


@dataclass(frozen=True)
class ReportDefinition:
    """A named runReport shape: which dimensions and metrics land in which raw table."""

    name: str
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]

    @property
    def raw_table(self) -> str:
        return f"raw.ga_{self.name}"


ACQUISITION = ReportDefinition(
    name="acquisition",
    dimensions=("firstSessionDate", *FIRST_USER_DIMENSIONS),
    metrics=("newUsers",),
)

COHORT_ACTIVITY = ReportDefinition(
    name="cohort_activity",
    dimensions=("date", "firstSessionDate", *FIRST_USER_DIMENSIONS),
    metrics=(
        "totalRevenue",
        "purchaseRevenue",
        "transactions",
        "ecommercePurchases",
        "sessions",
        "screenPageViews",
        "userEngagementDuration",
    ),
)

REPORTS: dict[str, ReportDefinition] = {r.name: r for r in (ACQUISITION, COHORT_ACTIVITY)}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def column_name(api_name: str) -> str:
    """Snake-case column name for a GA API name: ``firstUserSource`` -> ``first_user_source``."""
    return _CAMEL_BOUNDARY.sub("_", api_name).lower()
