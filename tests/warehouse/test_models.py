"""LTV marts from hand-made raw data, checked against numbers worked out by hand or in Python."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.spool import (
    acquisition_row,
    activity_row,
    land_acquisition,
    land_activity,
)
from tests.warehouse.test_loads import HOSTILE
from warehouse import models
from warehouse.connection import reader
from warehouse.models import DIMENSIONS, LTV_TABLES, build_ltv_tables

DEC, JAN, FEB, MAR, APR = (date(2023, 12, 1), *(date(2024, m, 1) for m in range(1, 5)))
KEY_COLUMNS = ("property_id", "cohort_month", "dimension", "dimension_value")


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with reader(db) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _channel(db: Path, channel: str = "Organic Search") -> list[dict[str, Any]]:
    return _rows(
        db,
        "select * from marts.ltv_by_channel where channel = ?"
        " order by property_id, cohort_month, months_since_acquisition",
        [channel],
    )


def test_lifetime_value_report_example(db: Path, tmp_path: Path) -> None:
    """GA's old Lifetime Value report: 73,543.16 revenue / 68,590 users = 1.07."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 1), 68_590)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 20), JAN, 73_543.16)])
    build_ltv_tables(db)
    (row,) = _channel(db)
    assert row["acquired_users"] == 68_590
    assert row["cumulative_revenue"] == pytest.approx(73_543.16)
    assert round(row["ltv"], 2) == 1.07


def test_cohort_size_and_revenue_sum_over_days(db: Path, tmp_path: Path) -> None:
    land_acquisition(
        db,
        tmp_path,
        JAN,
        [acquisition_row(date(2024, 1, d), users) for d, users in ((1, 3), (15, 4), (31, 3))],
    )
    land_activity(
        db,
        tmp_path,
        JAN,
        [
            activity_row(date(2024, 1, 1), date(2024, 1, 1), 5.0, transactions=1, sessions=2),
            activity_row(date(2024, 1, 20), date(2024, 1, 15), 7.5, transactions=2, sessions=3),
            activity_row(
                date(2024, 1, 31),
                date(2024, 1, 31),
                2.5,
                screen_page_views=9,
                user_engagement_duration=120.0,
            ),
        ],
    )
    build_ltv_tables(db)
    (row,) = _channel(db)
    assert row["acquired_users"] == 10
    assert row["revenue"] == pytest.approx(15.0)
    assert row["ltv"] == pytest.approx(1.5)
    assert row["transactions_per_user"] == pytest.approx(0.3)
    assert row["sessions_per_user"] == pytest.approx(0.5)
    assert row["page_views_per_user"] == pytest.approx(0.9)
    assert row["engagement_seconds_per_user"] == pytest.approx(12.0)
    assert row["currency_code"] == "EUR"


def test_cohort_without_loaded_acquisition_is_left_out(db: Path, tmp_path: Path) -> None:
    """December's size is unknown (its acquisition month was never loaded): no December rows,
    even though January's activity includes December users."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    land_activity(db, tmp_path, DEC, [activity_row(date(2023, 12, 5), date(2023, 12, 5), 50.0)])
    land_activity(
        db,
        tmp_path,
        JAN,
        [
            activity_row(date(2024, 1, 3), date(2023, 12, 5), 30.0),
            activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0),
        ],
    )
    build_ltv_tables(db)
    rows = _rows(db, "select distinct cohort_month from marts.ltv_monthly")
    assert rows == [{"cohort_month": JAN}]
    (row,) = _channel(db)
    assert (row["acquired_users"], row["ltv"]) == (4, pytest.approx(2.0))


def test_every_age_has_a_row_even_without_revenue(db: Path, tmp_path: Path) -> None:
    """February was loaded but empty: age 1 shows revenue 0 and carries the cumulative value."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0)])
    land_activity(db, tmp_path, FEB, [])
    land_activity(db, tmp_path, MAR, [activity_row(date(2024, 3, 9), date(2024, 1, 2), 4.0)])
    build_ltv_tables(db)
    assert [
        (r["months_since_acquisition"], r["activity_month"], r["revenue"], r["cumulative_revenue"])
        for r in _channel(db)
    ] == [(0, JAN, 8.0, 8.0), (1, FEB, 0.0, 8.0), (2, MAR, 4.0, 12.0)]
    assert [r["ltv"] for r in _channel(db)] == pytest.approx([2.0, 2.0, 3.0])


def test_ages_stop_at_a_gap_in_loaded_activity(db: Path, tmp_path: Path) -> None:
    """February's activity was never loaded: January stops at age 0, February's cohort has no
    ages at all, March's cohort starts fresh."""
    for month in (JAN, FEB, MAR):
        land_acquisition(db, tmp_path, month, [acquisition_row(month.replace(day=2), 2)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0)])
    land_activity(
        db,
        tmp_path,
        MAR,
        [
            activity_row(date(2024, 3, 3), date(2024, 1, 2), 100.0),
            activity_row(date(2024, 3, 3), date(2024, 3, 2), 6.0),
        ],
    )
    land_activity(db, tmp_path, APR, [activity_row(date(2024, 4, 3), date(2024, 3, 2), 2.0)])
    build_ltv_tables(db)
    assert [
        (r["cohort_month"], r["months_since_acquisition"], r["cumulative_revenue"])
        for r in _channel(db)
    ] == [(JAN, 0, 8.0), (MAR, 0, 6.0), (MAR, 1, 8.0)]


def test_activity_without_acquired_users_keeps_its_revenue(db: Path, tmp_path: Path) -> None:
    """Revenue from a channel that acquired nobody in the report (e.g. thresholding) stays,
    with zero users and no LTV, so channel revenue still adds up."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    land_activity(
        db,
        tmp_path,
        JAN,
        [
            activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0),
            activity_row(date(2024, 1, 3), date(2024, 1, 2), 5.0, "Referral", transactions=1),
        ],
    )
    build_ltv_tables(db)
    (row,) = _channel(db, "Referral")
    assert (row["acquired_users"], row["revenue"], row["cumulative_revenue"]) == (0, 5.0, 5.0)
    assert row["ltv"] is None
    assert row["transactions_per_user"] is None
    (source,) = _rows(db, "select * from marts.ltv_by_source")
    assert (source["acquired_users"], source["revenue"]) == (4, 13.0)


def test_other_row_lands_but_joins_no_cohort(db: Path, tmp_path: Path) -> None:
    """GA's "(other)" row reaches the warehouse with NULL dates: kept in raw, in no cohort."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    other = activity_row(None, None, 99.0, "(other)")
    land_activity(
        db,
        tmp_path,
        JAN,
        [activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0), other],
        data_loss_from_other_row=True,
    )
    build_ltv_tables(db)
    assert _rows(db, "select count(*) as n from raw.ga_cohort_activity") == [{"n": 2}]
    assert _rows(
        db, "select distinct dimension_value from marts.ltv_monthly where dimension = 'channel'"
    ) == [{"dimension_value": "Organic Search"}]
    assert [r["revenue"] for r in _channel(db)] == [8.0]


def test_refunds_may_lower_cumulative_revenue(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 2)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 2), 10.0)])
    land_activity(db, tmp_path, FEB, [activity_row(date(2024, 2, 3), date(2024, 1, 2), -4.0)])
    build_ltv_tables(db)
    assert [r["cumulative_revenue"] for r in _channel(db)] == [10.0, 6.0]


def test_per_dimension_marts_are_slices_of_ltv_monthly(db: Path, tmp_path: Path) -> None:
    land_acquisition(
        db,
        tmp_path,
        JAN,
        [
            acquisition_row(date(2024, 1, 2), 4, "Email", source="news", medium="email"),
            acquisition_row(date(2024, 1, 2), 6, "Direct", source="(direct)", medium="(none)"),
        ],
    )
    land_activity(
        db,
        tmp_path,
        JAN,
        [
            activity_row(
                date(2024, 1, 3), date(2024, 1, 2), 8.0, "Email", source="news", medium="email"
            )
        ],
    )
    counts = build_ltv_tables(db)
    assert set(counts) == set(LTV_TABLES)
    monthly = _rows(db, "select * from marts.ltv_monthly")
    assert counts["ltv_monthly"] == len(monthly) == 7  # 2 channels, 2 sources, 2 media, 1 campaign
    assert {r["dimension"] for r in monthly} == set(DIMENSIONS)
    for dimension in DIMENSIONS:
        table = _rows(db, f"select * from marts.ltv_by_{dimension}")  # noqa: S608
        assert counts[f"ltv_by_{dimension}"] == len(table)
        as_monthly = [
            {"dimension": dimension, "dimension_value": r.pop(dimension)} | r for r in table
        ]
        expected = [r for r in monthly if r["dimension"] == dimension]
        key = lambda r: (r["dimension_value"], r["cohort_month"])  # noqa: E731
        assert sorted(as_monthly, key=key) == sorted(expected, key=key)


def test_mart_columns_and_types(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    build_ltv_tables(db)
    with reader(db) as con:
        columns = con.execute("describe marts.ltv_by_campaign").fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("property_id", "VARCHAR"),
        ("cohort_month", "DATE"),
        ("campaign", "VARCHAR"),
        ("months_since_acquisition", "INTEGER"),
        ("activity_month", "DATE"),
        ("acquired_users", "BIGINT"),
        ("revenue", "DOUBLE"),
        ("cumulative_revenue", "DOUBLE"),
        ("ltv", "DOUBLE"),
        ("currency_code", "VARCHAR"),
        ("transactions_per_user", "DOUBLE"),
        ("sessions_per_user", "DOUBLE"),
        ("page_views_per_user", "DOUBLE"),
        ("engagement_seconds_per_user", "DOUBLE"),
    ]


def test_hostile_dimension_values_reach_the_marts_exactly(db: Path, tmp_path: Path) -> None:
    land_acquisition(
        db,
        tmp_path,
        JAN,
        [acquisition_row(date(2024, 1, 2), 1, v, source=v, campaign=v) for v in HOSTILE],
    )
    land_activity(db, tmp_path, JAN, [])
    build_ltv_tables(db)
    for dimension in ("channel", "source", "campaign"):
        rows = _rows(db, f"select {dimension} as v from marts.ltv_by_{dimension}")  # noqa: S608
        assert sorted(r["v"] for r in rows) == sorted(HOSTILE)


def test_rebuild_is_idempotent(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0)])
    first_counts = build_ltv_tables(db)
    first = _rows(db, "select * from marts.ltv_monthly order by all")
    assert build_ltv_tables(db) == first_counts
    assert _rows(db, "select * from marts.ltv_monthly order by all") == first


def test_failed_rebuild_keeps_the_previous_tables(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last model fails after staging and ltv_monthly were replaced: all of it rolls back."""
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 4)])
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 2), 8.0)])
    build_ltv_tables(db)
    before = _rows(db, "select * from marts.ltv_monthly order by all")
    land_activity(db, tmp_path, FEB, [activity_row(date(2024, 2, 3), date(2024, 1, 2), 1.0)])
    real_read_sql = models.read_sql

    def broken(name: str) -> str:
        if name == "marts/ltv_by_dimension.sql":
            return "select * from no_such_table"
        return real_read_sql(name)

    monkeypatch.setattr(models, "read_sql", broken)
    with pytest.raises(Exception, match="no_such_table"):
        build_ltv_tables(db)
    assert _rows(db, "select * from marts.ltv_monthly order by all") == before
    staged = _rows(db, "select distinct activity_month from staging.cohort_activity")
    assert staged == [{"activity_month": JAN}]


# --- An independent reference: the rules of the LTV report written out in plain Python. ---

METRICS = ("total_revenue", "transactions", "sessions", "screen_page_views")
FIRST_USER = {
    "channel": "first_user_default_channel_group",
    "source": "first_user_source",
    "medium": "first_user_medium",
    "campaign": "first_user_campaign_name",
}


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _reference(
    acquisition: dict[tuple[str, date], list[dict]], activity: dict[tuple[str, date], list[dict]]
) -> dict[tuple, tuple]:
    """(property, cohort, dimension, value, age) -> (users, revenue, cumulative, ltv, tx/user)."""
    sizes: dict[tuple, int] = defaultdict(int)
    done: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (prop, _), rows in acquisition.items():
        for row in rows:
            for dim, col in FIRST_USER.items():
                cohort = row["first_session_date"].replace(day=1)
                sizes[(prop, cohort, dim, row[col])] += row["new_users"]
    for (prop, month), rows in activity.items():
        for row in rows:
            for dim, col in FIRST_USER.items():
                cohort = row["first_session_date"].replace(day=1)
                for metric in METRICS:
                    done[(prop, cohort, dim, row[col], month)][metric] += row.get(metric, 0)
    members = set(sizes) | {key[:4] for key in done}
    expected = {}
    for prop, cohort, dim, value in members:
        if (prop, cohort) not in acquisition:
            continue
        loaded = {m for p, m in activity if p == prop}
        users = sizes.get((prop, cohort, dim, value), 0)
        cumulative = {metric: 0.0 for metric in METRICS}
        month, age = cohort, 0
        while loaded and month <= max(loaded) and month in loaded:
            spent = done.get((prop, cohort, dim, value, month), {})
            for metric in METRICS:
                cumulative[metric] += spent.get(metric, 0)
            expected[(prop, cohort, dim, value, age)] = (
                users,
                spent.get("total_revenue", 0.0),
                cumulative["total_revenue"],
                cumulative["total_revenue"] / users if users else None,
                cumulative["transactions"] / users if users else None,
            )
            month, age = _next(month), age + 1
    return expected


def test_marts_match_an_independent_reference(db: Path, tmp_path: Path) -> None:
    """Two properties, seven months, random traffic; property 1 misses one acquisition month
    and one activity month, property 2 starts later and has no gap."""
    rng = random.Random(20240101)
    months = [date(2023, 9, 1)]
    while len(months) < 7:
        months.append(_next(months[-1]))
    plans = {
        "1": {"acquisition": [m for m in months if m != months[2]], "activity": months[:4]},
        "2": {"acquisition": months[3:], "activity": months[3:]},
    }
    plans["1"]["activity"] += months[5:]  # months[4] is the gap
    values = {
        "channel": ["Organic Search", "Paid Search", "Email", "(not set)"],
        "source": ["google", "newsletter", "(direct)"],
        "medium": ["organic", "cpc", "email"],
        "campaign": ["spring", "(organic)"],
    }

    def dims() -> dict[str, str]:
        return {col: rng.choice(values[dim]) for dim, col in FIRST_USER.items()}

    acquisition: dict[tuple[str, date], list[dict]] = {}
    activity: dict[tuple[str, date], list[dict]] = {}
    for prop, plan in plans.items():
        for month in plan["acquisition"]:
            acquisition[(prop, month)] = [
                {"first_session_date": month.replace(day=rng.randint(1, 28)), **dims()}
                | {"new_users": rng.randint(0, 50)}
                for _ in range(rng.randint(0, 12))
            ]
        for month in plan["activity"]:
            activity[(prop, month)] = [
                {
                    "date": month.replace(day=rng.randint(1, 28)),
                    "first_session_date": rng.choice([m for m in months if m <= month]).replace(
                        day=rng.randint(1, 28)
                    ),
                    **dims(),
                    "total_revenue": round(rng.uniform(-5, 200), 2),
                    "transactions": rng.randint(0, 4),
                    "sessions": rng.randint(1, 9),
                    "screen_page_views": rng.randint(1, 30),
                }
                for _ in range(rng.randint(0, 15))
            ]
    for (prop, month), rows in acquisition.items():
        land_acquisition(db, tmp_path / prop, month, rows, property_id=prop)
    for (prop, month), rows in activity.items():
        land_activity(db, tmp_path / prop, month, rows, property_id=prop)

    build_ltv_tables(db)
    actual = {
        (*(r[c] for c in KEY_COLUMNS), r["months_since_acquisition"]): (
            r["acquired_users"],
            r["revenue"],
            r["cumulative_revenue"],
            r["ltv"],
            r["transactions_per_user"],
        )
        for r in _rows(db, "select * from marts.ltv_monthly")
    }
    expected = _reference(acquisition, activity)
    assert len(expected) > 100
    assert actual.keys() == expected.keys()
    for key, row in expected.items():
        assert actual[key] == pytest.approx(row), key
