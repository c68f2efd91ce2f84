"""Export replay against the real GA4 export sample, checked with plain SQL on the file.

The expected numbers come straight from the Parquet file with DuckDB, written independently of
the replay's own SQL. A hand-made NDJSON export pins the rules the sample cannot show
(refunds, string-encoded int64s, placeholder transaction ids).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient

from connectors.emulator.dataset import PropertyData
from connectors.emulator.export_replay import ExportFileError, load_export
from connectors.emulator.server import EmulatorServer
from connectors.reports import ACQUISITION
from tests.conftest import EXPORT_SAMPLE
from tests.emulator.support import make_client, request, rows

PROPERTY = "300003"
WHOLE_FILE = ("2019-01-01", "2021-01-31")


@pytest.fixture(scope="module")
def sample() -> Path:
    # Missing data must fail the suite, never skip it.
    assert EXPORT_SAMPLE.is_file(), f"the real GA4 export sample is missing: {EXPORT_SAMPLE}"
    return EXPORT_SAMPLE


@pytest.fixture(scope="module")
def replayed(sample: Path) -> PropertyData:
    return load_export([sample], property_id=PROPERTY)


@pytest.fixture(scope="module")
def export_client(replayed: PropertyData) -> Iterator[BetaAnalyticsDataClient]:
    with EmulatorServer([replayed]) as server:
        yield make_client(server.address)


def _query(sample: Path, sql: str) -> list[tuple]:
    connection = duckdb.connect()
    connection.read_parquet(str(sample)).create_view("events")
    return connection.execute(sql).fetchall()


def test_sample_is_what_the_readme_describes(replayed: PropertyData) -> None:
    assert replayed.users.num_rows == 19_210
    assert sum(replayed.activity["ecommerce_purchases"].to_pylist()) == 624
    assert round(sum(replayed.activity["purchase_revenue"].to_pylist())) == 41_529
    assert min(replayed.users["first_session_date"].to_pylist()) < date(2019, 11, 1)


def test_new_users_per_first_medium_in_december(
    export_client: BetaAnalyticsDataClient, sample: Path
) -> None:
    expected = dict(
        _query(
            sample,
            """
        with first_event as (
            select user_pseudo_id,
                   first(traffic_source.medium order by event_timestamp) as medium,
                   min(event_date) as first_event_date,
                   min(user_first_touch_timestamp) as first_touch
              from events
             group by user_pseudo_id
        )
        select coalesce(medium, '(not set)'), count(*)
          from first_event
         where coalesce(strftime(to_timestamp(first_touch / 1000000) at time zone 'UTC', '%Y%m%d'),
                        first_event_date) between '20201201' and '20201231'
         group by all
    """,
        )
    )
    response = export_client.run_report(
        request(
            ["firstUserMedium"], ["newUsers"], ("2020-12-01", "2020-12-31"), property_id=PROPERTY
        )
    )
    got = {dims[0]: int(metrics[0]) for dims, metrics in rows(response)}
    assert got == expected
    assert len(expected) >= 4


def test_purchase_revenue_per_date(export_client: BetaAnalyticsDataClient, sample: Path) -> None:
    expected = {
        day: Decimal(str(round(revenue, 6))).normalize()
        for day, revenue in _query(
            sample,
            """
            select event_date, sum(coalesce(ecommerce.purchase_revenue_in_usd, 0))
              from events
             where event_name = 'purchase'
             group by all
            having sum(coalesce(ecommerce.purchase_revenue_in_usd, 0)) <> 0
        """,
        )
    }
    response = export_client.run_report(
        request(["date"], ["purchaseRevenue", "totalRevenue"], WHOLE_FILE, property_id=PROPERTY)
    )
    got = {dims[0]: Decimal(metrics[0]) for dims, metrics in rows(response) if metrics[0] != "0"}
    assert got == expected
    assert all(metrics[0] == metrics[1] for _, metrics in rows(response))  # no refunds in it


def test_whole_file_totals(export_client: BetaAnalyticsDataClient, sample: Path) -> None:
    ((sessions, page_views, transactions, purchases, engagement),) = _query(
        sample,
        """
        with flat as (
            select user_pseudo_id, event_date, event_name, ecommerce.transaction_id as tid,
                   (select max(p.value.int_value) from unnest(event_params) as t(p)
                     where p.key = 'ga_session_id') as session_id,
                   (select sum(p.value.int_value) from unnest(event_params) as t(p)
                     where p.key = 'engagement_time_msec') as msec
              from events
        )
        select count(distinct (user_pseudo_id, event_date, session_id))
                   filter (where session_id is not null),
               count(*) filter (where event_name = 'page_view'),
               count(distinct (user_pseudo_id, event_date, tid))
                   filter (where event_name = 'purchase' and tid not in ('', '(not set)')),
               count(*) filter (where event_name = 'purchase'),
               sum(msec) / 1000
          from flat
    """,
    )
    metrics = [
        "sessions",
        "screenPageViews",
        "transactions",
        "ecommercePurchases",
        "userEngagementDuration",
        "newUsers",
        "totalUsers",
    ]
    ((_, got),) = rows(
        export_client.run_report(request([], metrics, WHOLE_FILE, property_id=PROPERTY))
    )
    assert got[:4] == (str(sessions), str(page_views), str(transactions), str(purchases))
    assert Decimal(got[4]) == Decimal(str(engagement))
    assert transactions < purchases  # "(not set)" and repeated ids are not transactions
    assert got[5:] == ("19210", "19210")


def test_users_first_touched_before_the_file_are_new_on_their_old_date(
    export_client: BetaAnalyticsDataClient, sample: Path
) -> None:
    ((before,),) = _query(
        sample,
        """
        select count(distinct user_pseudo_id) from events
         where to_timestamp(user_first_touch_timestamp / 1000000) < timestamp '2020-11-01'
    """,
    )
    response = export_client.run_report(
        request(
            ["yearMonth"],
            ["newUsers", "sessions"],
            ("2019-01-01", "2020-10-31"),
            property_id=PROPERTY,
        )
    )
    got = rows(response)
    assert sum(int(m[0]) for _, m in got) == before > 0
    assert all(m[1] == "0" for _, m in got)  # new, but with no activity on those dates
    assert got[0][0] == ("201910",)


def test_acquisition_report_counts_every_user_once(
    export_client: BetaAnalyticsDataClient, replayed: PropertyData
) -> None:
    response = export_client.run_report(
        request(
            ACQUISITION.dimensions,
            ACQUISITION.metrics,
            WHOLE_FILE,
            property_id=PROPERTY,
            limit=100_000,
        )
    )
    assert sum(int(m[0]) for _, m in rows(response)) == replayed.users.num_rows
    channels = {dims[1] for dims, _ in rows(response)}
    assert {"Organic Search", "Direct", "Referral", "Paid Search", "Unassigned"} <= channels


def test_time_zone_moves_first_touch_dates(sample: Path) -> None:
    """A first touch at 02:00 UTC is the previous day in Los Angeles."""
    utc = load_export([sample], property_id="1")
    pacific = load_export([sample], property_id="1", time_zone="America/Los_Angeles")
    shifted = sum(
        a != b
        for a, b in zip(
            utc.users["first_session_date"].to_pylist(),
            pacific.users["first_session_date"].to_pylist(),
            strict=True,
        )
    )
    assert 0 < shifted < utc.users.num_rows
    assert pacific.time_zone == "America/Los_Angeles"


def test_split_and_json_files_replay_like_one_parquet(
    sample: Path, replayed: PropertyData, tmp_path: Path
) -> None:
    events = pq.read_table(sample)
    december = pc.greater_equal(events["event_date"], "20201201")
    november, rest = tmp_path / "nov.parquet", tmp_path / "dec_jan.parquet"
    as_json = tmp_path / "dec_jan.json"
    pq.write_table(events.filter(pc.invert(december)), november)
    pq.write_table(events.filter(december), rest)
    as_json.write_text(
        "".join(json.dumps(row) + "\n" for row in events.filter(december).to_pylist())
    )
    for files in ([november, rest], [november, as_json]):
        again = load_export(files, property_id=PROPERTY)
        assert again.users.equals(replayed.users)
        assert again.activity.equals(replayed.activity)


def _event(user: str, day: str, name: str, hour: int, **extra: object) -> dict:
    """One export row as BigQuery writes NDJSON: int64 values as strings."""
    params = extra.pop("params", {})
    moment = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), hour, tzinfo=UTC)
    return {
        "event_date": day,
        "event_timestamp": str(int(moment.timestamp()) * 10**6),
        "event_name": name,
        "user_pseudo_id": user,
        "event_params": [
            {
                "key": k,
                "value": {"int_value": str(v)} if isinstance(v, int) else {"string_value": v},
            }
            for k, v in params.items()
        ],
        **extra,
    }


def test_hand_made_ndjson_export(tmp_path: Path) -> None:
    """Each derivation rule on a few events whose answer is worked out by hand."""
    web = {"source": "google", "medium": "cpc", "name": "brand"}
    events = [
        # a: first touch 2021-03-01 23:30 UTC, which is 2021-03-02 in Tokyo
        _event(
            "a",
            "20210302",
            "session_start",
            1,
            user_first_touch_timestamp=str(1614641400 * 10**6),
            traffic_source=web,
            params={"ga_session_id": 7, "engagement_time_msec": 1500},
        ),
        _event(
            "a",
            "20210302",
            "page_view",
            2,
            traffic_source={"source": "bing", "medium": "organic", "name": "(organic)"},
            params={"ga_session_id": 7},
        ),
        _event(
            "a",
            "20210302",
            "purchase",
            3,
            ecommerce={"purchase_revenue_in_usd": 100.25, "transaction_id": "T1"},
            params={"ga_session_id": 8},
        ),
        _event(
            "a",
            "20210302",
            "purchase",
            4,
            ecommerce={"purchase_revenue_in_usd": 100.25, "transaction_id": "T1"},
        ),
        _event(
            "a",
            "20210302",
            "purchase",
            5,
            ecommerce={"purchase_revenue_in_usd": 5, "transaction_id": "(not set)"},
        ),
        _event("a", "20210305", "refund", 1, ecommerce={"refund_value_in_usd": 40.5}),
        # b: no first touch and no traffic source: earliest event's date, "(not set)" fields
        _event("b", "20210304", "scroll", 6, params={"session_engaged": "1"}),
    ]
    path = tmp_path / "events_20210302.json"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    data = load_export([path], property_id="4", time_zone="Asia/Tokyo", currency_code="JPY")
    users = {u["user_key"]: u for u in data.users.to_pylist()}
    assert users["a"]["first_session_date"] == date(2021, 3, 2)
    assert (users["a"]["source"], users["a"]["medium"], users["a"]["campaign"]) == (
        "google",
        "cpc",
        "brand",
    )
    assert users["a"]["channel_group"] == "Paid Search"
    assert users["b"]["first_session_date"] == date(2021, 3, 4)
    assert (users["b"]["source"], users["b"]["channel_group"]) == ("(not set)", "Unassigned")
    activity = {(a["user_key"], a["date"]): a for a in data.activity.to_pylist()}
    day = activity[("a", date(2021, 3, 2))]
    assert (
        day["sessions"],
        day["screen_page_views"],
        day["transactions"],
        day["ecommerce_purchases"],
    ) == (2, 1, 1, 3)
    assert day["purchase_revenue"] == day["total_revenue"] == pytest.approx(205.5)
    assert day["user_engagement_duration"] == pytest.approx(1.5)
    assert day["engaged"]
    refund_day = activity[("a", date(2021, 3, 5))]
    assert (refund_day["purchase_revenue"], refund_day["total_revenue"]) == (0, -40.5)
    assert not refund_day["engaged"]
    assert activity[("b", date(2021, 3, 4))]["engaged"]
    assert data.currency_code == "JPY"


def test_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ExportFileError, match=r"not found: .*nowhere\.parquet"):
        load_export([tmp_path / "nowhere.parquet"], property_id="1")
    with pytest.raises(ValueError, match="at least one"):
        load_export([], property_id="1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"event_date": "2021', "cannot be read as a GA4 BigQuery export"),
        ('{"a": 1}\n', "holds no GA4 events"),
    ],
)
def test_files_that_are_not_exports_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "events.json"
    path.write_text(content)
    with pytest.raises(ExportFileError, match=message):
        load_export([path], property_id="1")
