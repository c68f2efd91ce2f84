"""Short per-channel LTV summary, for the command line."""

from __future__ import annotations

from pathlib import Path

from warehouse.connection import reader

# LTV at an age is weighted over the cohorts old enough to have reached it, so young cohorts
# neither drag the figure down nor vanish from the user counts.
_CHANNEL_SUMMARY = """
with cohorts as (
    select property_id, channel, cohort_month, max(acquired_users) as acquired_users,
           any_value(currency_code) as currency_code
      from marts.ltv_by_channel
     group by all
),
at_age as (
    select channel,
           months_since_acquisition as age,
           sum(cumulative_revenue) / nullif(sum(acquired_users), 0) as ltv
      from marts.ltv_by_channel
     where months_since_acquisition in (0, 3, 12)
     group by all
)
select c.channel,
       sum(c.acquired_users)::bigint as acquired_users,
       any_value(c.currency_code) as currency_code,
       (select ltv from at_age a where a.channel = c.channel and a.age = 0) as ltv_0,
       (select ltv from at_age a where a.channel = c.channel and a.age = 3) as ltv_3,
       (select ltv from at_age a where a.channel = c.channel and a.age = 12) as ltv_12
  from cohorts c
 group by c.channel
 order by acquired_users desc
"""


def channel_summary(db_path: Path) -> list[dict[str, object]]:
    """Acquired users and LTV at 0, 3 and 12 months per channel, across properties."""
    with reader(db_path) as con:
        cursor = con.execute(_CHANNEL_SUMMARY)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
