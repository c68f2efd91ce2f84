"""Short per-property, per-channel LTV summary, for the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warehouse.connection import reader

# Read from marts.ltv_summary, which already weighs each age over the cohorts old enough to
# have reached it; one block per property, each in its own currency.
_CHANNELS = """
select property_id,
       currency_code,
       dimension_value as channel,
       acquired_users,
       ltv_1m,
       ltv_3m,
       ltv_12m
  from marts.ltv_summary
 where dimension = 'channel'
 order by property_id, acquired_users desc, channel
"""


@dataclass(frozen=True)
class PropertySummary:
    """One property's channels, in that property's currency."""

    property_id: str
    currency_code: str
    channels: list[dict[str, object]]


def channel_summary(db_path: Path) -> list[PropertySummary]:
    """Acquired users and LTV at 1, 3 and 12 months per channel, property by property."""
    with reader(db_path) as con:
        cursor = con.execute(_CHANNELS)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    summaries: dict[str, PropertySummary] = {}
    for row in rows:
        prop = summaries.setdefault(
            str(row["property_id"]),
            PropertySummary(str(row["property_id"]), str(row["currency_code"]), []),
        )
        prop.channels.append(row)
    return list(summaries.values())
