"""Serve a GA4 BigQuery export as a property, deriving users and activity the way GA4 does.

Reading real exports lets the pipeline be checked against numbers anyone can recompute from the
files. The derivation, per user (``user_pseudo_id``):

- first session date: the date of ``user_first_touch_timestamp`` (UTC microseconds, earliest
  value the user's events carry) in the property's time zone; where that is null, the
  ``event_date`` of the user's earliest event;
- first-user source, medium and campaign: ``traffic_source.source``, ``.medium`` and ``.name``
  of the earliest event (ties broken by event name, then the values), null read as
  ``(not set)``; the channel group follows ``channels.default_channel_group``.

And per user and ``event_date`` (the export's own date, in the property's time zone):

- sessions: distinct ``ga_session_id`` event parameters, as GA's BigQuery guidance counts
  them; events without one belong to no session;
- screenPageViews: ``page_view`` events;
- transactions: distinct ``ecommerce.transaction_id`` values of ``purchase`` events, leaving out
  null, empty and ``(not set)`` ids, so a resent purchase counts once;
- ecommercePurchases: ``purchase`` events, whatever their id;
- purchaseRevenue: the sum of ``ecommerce.purchase_revenue_in_usd`` over ``purchase`` events
  (the USD field, because ``purchase_revenue`` is sometimes null where it is set);
- totalRevenue: purchaseRevenue less ``ecommerce.refund_value_in_usd`` of ``refund`` events;
- userEngagementDuration: the sum of ``engagement_time_msec`` parameters / 1000;
- engaged (for activeUsers): any event with ``session_engaged`` set, a positive engagement
  time, or a ``first_visit`` / ``first_open`` event, as GA4 defines an active user.

Parquet and newline-delimited JSON (BigQuery writes int64 as strings there) may be mixed; all
files together make one property.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors.emulator.channels import default_channel_group
from connectors.emulator.dataset import PropertyData

logger = logging.getLogger(__name__)

_PARQUET_SUFFIXES = (".parquet", ".parq")
_PARAM = "struct(key varchar, value struct(string_value varchar, int_value bigint, float_value double, double_value double))"  # noqa: E501 -- one DuckDB type
# Only what the derivation reads; naming the types also makes JSON's string-encoded int64s
# arrive as numbers.
_JSON_COLUMNS = {
    "event_date": "varchar",
    "event_timestamp": "bigint",
    "event_name": "varchar",
    "user_pseudo_id": "varchar",
    "user_first_touch_timestamp": "bigint",
    "event_params": f"{_PARAM}[]",
    "traffic_source": "struct(name varchar, medium varchar, source varchar)",
    "ecommerce": (
        "struct(purchase_revenue_in_usd double, refund_value_in_usd double, transaction_id varchar)"
    ),
}

_NORMALISE = """
select user_pseudo_id,
       event_timestamp,
       strptime(event_date, '%Y%m%d')::date as event_date,
       event_name,
       user_first_touch_timestamp as first_touch,
       traffic_source.source as source,
       traffic_source.medium as medium,
       traffic_source.name as campaign,
       ecommerce.purchase_revenue_in_usd as purchase_usd,
       ecommerce.refund_value_in_usd as refund_usd,
       ecommerce.transaction_id as transaction_id,
       param_int(event_params, 'ga_session_id') as session_id,
       param_int(event_params, 'engagement_time_msec') as engagement_msec,
       coalesce(param_int(event_params, 'session_engaged') = 1, false) as session_engaged
  from {source}
 where user_pseudo_id is not null
"""

# The first value of a named event parameter as an integer, whichever value field holds it.
_PARAM_MACROS = (
    "create macro param_value(params, wanted) as "
    "list_filter(params, lambda p: p.key = wanted)[1].value",
    "create macro param_int(params, wanted) as coalesce("
    "param_value(params, wanted).int_value, "
    "try_cast(param_value(params, wanted).string_value as bigint), "
    "try_cast(param_value(params, wanted).double_value as bigint), "
    "try_cast(param_value(params, wanted).float_value as bigint))",
)

_USERS = """
with first_events as (
    select user_pseudo_id, event_date, source, medium, campaign
      from events
   qualify row_number() over (
               partition by user_pseudo_id
               order by event_timestamp, event_name, source, medium, campaign
           ) = 1
),
touches as (
    select user_pseudo_id, min(first_touch) as first_touch
      from events
     group by user_pseudo_id
)
select f.user_pseudo_id as user_key,
       coalesce(
           timezone($time_zone, timezone('UTC', make_timestamp(t.first_touch)))::date,
           f.event_date
       ) as first_session_date,
       coalesce(f.source, '(not set)') as source,
       coalesce(f.medium, '(not set)') as medium,
       coalesce(f.campaign, '(not set)') as campaign,
       t.first_touch is null as first_touch_missing
  from first_events as f
  join touches as t using (user_pseudo_id)
 order by user_key
"""

_ACTIVITY = """
select user_pseudo_id as user_key,
       event_date as date,
       count(distinct session_id) as sessions,
       count(*) filter (where event_name = 'page_view') as screen_page_views,
       count(distinct transaction_id) filter (
           where event_name = 'purchase'
             and transaction_id not in ('', '(not set)')
       ) as transactions,
       count(*) filter (where event_name = 'purchase') as ecommerce_purchases,
       coalesce(sum(purchase_usd) filter (where event_name = 'purchase'), 0) as purchase_revenue,
       coalesce(sum(purchase_usd) filter (where event_name = 'purchase'), 0)
           - coalesce(sum(refund_usd) filter (where event_name = 'refund'), 0) as total_revenue,
       coalesce(sum(engagement_msec), 0) / 1000.0 as user_engagement_duration,
       bool_or(
           session_engaged
           or coalesce(engagement_msec, 0) > 0
           or event_name in ('first_visit', 'first_open')
       ) as engaged
  from events
 group by all
 order by user_key, date
"""


class ExportFileError(ValueError):
    """An export file is missing, unreadable, or not in the GA4 export schema."""


def load_export(
    paths: Sequence[Path],
    *,
    property_id: str,
    time_zone: str = "UTC",
    currency_code: str = "USD",
    display_name: str | None = None,
) -> PropertyData:
    """One property from GA4 BigQuery export files (Parquet or NDJSON, nested schema)."""
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("load_export needs at least one export file")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ExportFileError(f"GA4 export files not found: {', '.join(missing)}")
    connection = duckdb.connect(":memory:")
    try:
        for macro in _PARAM_MACROS:
            connection.execute(macro)
        connection.execute(f"create temp table events as {_union_of_reads(connection, files)}")
        users = connection.sql(_USERS, params={"time_zone": time_zone}).to_arrow_table()
        activity = connection.sql(_ACTIVITY).to_arrow_table()
        event_count = connection.execute("select count(*) from events").fetchone()[0]
    except duckdb.Error as exc:
        raise ExportFileError(
            f"{', '.join(map(str, files))} cannot be read as a GA4 BigQuery export (Parquet or "
            f"newline-delimited JSON in the export's nested schema): {exc}"
        ) from None
    finally:
        connection.close()
    if event_count == 0:
        raise ExportFileError(
            f"{', '.join(map(str, files))} holds no GA4 events (no row has a user_pseudo_id); "
            "is it a GA4 BigQuery export?"
        )
    users = _with_channels(users)
    logger.info(
        "export replay for property %s: %d files, %d events, %d users (%d without first "
        "touch), %d activity rows",
        property_id,
        len(files),
        event_count,
        users.num_rows,
        sum(users["first_touch_missing"].to_pylist()),
        activity.num_rows,
    )
    return PropertyData(
        property_id=property_id,
        display_name=display_name or f"GA4 export {property_id}",
        time_zone=time_zone,
        currency_code=currency_code,
        users=users,
        activity=activity,
    )


def _union_of_reads(connection: duckdb.DuckDBPyConnection, files: list[Path]) -> str:
    """SQL reading every file into the normalised event columns.

    The files are opened through DuckDB's Python readers as views, so no path is ever spliced
    into SQL text.
    """
    parquet = [str(f) for f in files if f.suffix.lower() in _PARQUET_SUFFIXES]
    json = [str(f) for f in files if f.suffix.lower() not in _PARQUET_SUFFIXES]
    reads = []
    if parquet:
        connection.read_parquet(parquet, union_by_name=True).create_view("parquet_events")
        reads.append(_NORMALISE.format(source="parquet_events"))
    if json:
        connection.read_json(json, format="newline_delimited", columns=_JSON_COLUMNS).create_view(
            "json_events"
        )
        reads.append(_NORMALISE.format(source="json_events"))
    return " union all ".join(reads)


def _with_channels(users: pa.Table) -> pa.Table:
    """Add ``channel_group``, evaluating the rules once per distinct source/medium/campaign."""
    triples = zip(
        users["source"].to_pylist(),
        users["medium"].to_pylist(),
        users["campaign"].to_pylist(),
        strict=True,
    )
    cache: dict[tuple[str, str, str], str] = {}
    channels = [
        cache[t] if t in cache else cache.setdefault(t, default_channel_group(*t)) for t in triples
    ]
    return users.append_column("channel_group", pa.array(channels, pa.string()))
