"""End to end on real GA4 data: export -> emulator -> official client -> Dagster -> DuckDB.

The expected LTV is computed here straight from the export file with plain SQL, following GA4's
rules (first touch in UTC, else the earliest event; first-user fields from the earliest event),
independently of the emulator and the warehouse models.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main

MONTHS = ("2020-11", "2021-01")

EXPECTED_SQL = """
with events as (
    select * from read_parquet($export)
),
users as (
    select user_pseudo_id,
           coalesce(make_timestamp(min(user_first_touch_timestamp))::date,
                    min(strptime(event_date, '%Y%m%d'))::date)      as first_date,
           coalesce(arg_min_null(traffic_source.source, event_timestamp), '(not set)') as source,
           coalesce(arg_min_null(traffic_source.medium, event_timestamp), '(not set)') as medium,
           coalesce(arg_min_null(traffic_source.name, event_timestamp), '(not set)')   as campaign
      from events
     group by user_pseudo_id
),
cohorts as (
    select *, date_trunc('month', first_date)::date as cohort_month
      from users
     where first_date between $first and $last
),
revenue as (
    select user_pseudo_id,
           date_trunc('month', strptime(event_date, '%Y%m%d'))::date as activity_month,
           sum(case event_name
                   when 'purchase' then coalesce(ecommerce.purchase_revenue_in_usd, 0)
                   else -coalesce(ecommerce.refund_value_in_usd, 0)
               end) as revenue
      from events
     where event_name in ('purchase', 'refund')
     group by all
),
ages as (
    select distinct cohort_month, unnest(generate_series(
               cohort_month, date_trunc('month', $last::date)::date, interval 1 month
           ))::date as activity_month
      from cohorts
)
select a.cohort_month,
       c.{dim} as value,
       date_diff('month', a.cohort_month, a.activity_month) as age,
       count(distinct c.user_pseudo_id) as acquired_users,
       coalesce(sum(r.revenue) filter (where r.activity_month <= a.activity_month), 0)
           as cumulative_revenue
  from ages a
  join cohorts c using (cohort_month)
  left join revenue r on r.user_pseudo_id = c.user_pseudo_id
                     and r.activity_month >= c.cohort_month
 group by all
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import EXPORT_SAMPLE

    assert EXPORT_SAMPLE.is_file(), f"real GA4 test data missing: {EXPORT_SAMPLE}"
    db_path = tmp_path_factory.mktemp("export") / "ga_ltv.duckdb"
    code = main(
        [
            "run",
            "--start", MONTHS[0],
            "--end", MONTHS[1],
            "--export", str(EXPORT_SAMPLE),
            "--duckdb", str(db_path),
        ]
    )  # fmt: skip
    assert code == 0
    return db_path


@pytest.mark.parametrize(
    ("table", "column", "export_field"),
    [
        ("ltv_by_medium", "medium", "medium"),
        ("ltv_by_source", "source", "source"),
        ("ltv_by_campaign", "campaign", "campaign"),
    ],
)
def test_ltv_matches_plain_sql_on_the_export(
    warehouse: Path, export_sample: Path, table: str, column: str, export_field: str
) -> None:
    con = duckdb.connect()
    expected = {
        (row[0], row[1], row[2]): (row[3], row[4])
        for row in con.execute(
            EXPECTED_SQL.format(dim=export_field),
            {"export": str(export_sample), "first": "2020-11-01", "last": "2021-01-31"},
        ).fetchall()
    }
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        actual = {
            (row[0], row[1], row[2]): (row[3], row[4])
            for row in wh.execute(
                f"select cohort_month, {column}, months_since_acquisition, acquired_users, "  # noqa: S608 - names from the parametrize table
                f"cumulative_revenue from marts.{table}"
            ).fetchall()
        }
    assert len(expected) > 20
    assert set(actual) == set(expected)
    for key, (users, revenue) in expected.items():
        got_users, got_revenue = actual[key]
        assert got_users == users, key
        assert round(got_revenue, 2) == round(revenue, 2), key
    # The whole sample's revenue inside the three cohorts is accounted for, to the cent.
    assert round(sum(v[1] for k, v in actual.items() if k[2] == 0), 2) == round(
        sum(v[1] for k, v in expected.items() if k[2] == 0), 2
    )


def test_ltv_is_revenue_per_acquired_user(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        rows = wh.execute(
            "select acquired_users, cumulative_revenue, ltv, currency_code "
            "from marts.ltv_by_channel where acquired_users > 0"
        ).fetchall()
    assert rows
    for users, cumulative, ltv, currency in rows:
        assert ltv == pytest.approx(cumulative / users)
        assert currency == "USD"
