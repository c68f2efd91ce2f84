"""marts.ltv_summary against a small example worked out by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.warehouse.spool import acquisition_row, activity_row, land_acquisition, land_activity
from warehouse.connection import reader
from warehouse.models import build_ltv_tables

JAN, FEB, MAR, APR = (date(2024, m, 1) for m in range(1, 5))


def _summary(db: Path) -> list[dict[str, object]]:
    with reader(db) as con:
        cursor = con.execute(
            "select * from marts.ltv_summary where dimension = 'channel' order by dimension_value"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_summary_weights_ltv_over_cohorts_that_reached_each_age(db: Path, tmp_path: Path) -> None:
    """Email cohorts: January 10 users, February 5, March 4; activity loaded through April.

    Cumulative revenue at age 1: January 30, February 15, March 8 -> 53 / 19 users = 2.789
    (the plain mean of the three cohort LTVs, 3.0, 3.0 and 2.0, would be 2.667).
    Only January reaches age 3: 36 / 10 = 3.6. Nobody reaches 6 or 12 months.
    Direct brought revenue but no acquired users, so it has no summary row.
    """
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 5), 10, "Email")])
    land_acquisition(db, tmp_path, FEB, [acquisition_row(date(2024, 2, 5), 5, "Email")])
    land_acquisition(db, tmp_path, MAR, [acquisition_row(date(2024, 3, 5), 4, "Email")])
    land_activity(
        db,
        tmp_path,
        JAN,
        [
            activity_row(date(2024, 1, 6), date(2024, 1, 5), 20.0, "Email"),
            activity_row(date(2024, 1, 7), date(2024, 1, 5), 99.0, "Direct"),
        ],
    )
    land_activity(
        db,
        tmp_path,
        FEB,
        [
            activity_row(date(2024, 2, 6), date(2024, 1, 5), 10.0, "Email"),
            activity_row(date(2024, 2, 6), date(2024, 2, 5), 5.0, "Email"),
        ],
    )
    land_activity(
        db,
        tmp_path,
        MAR,
        [
            activity_row(date(2024, 3, 6), date(2024, 2, 5), 10.0, "Email"),
            activity_row(date(2024, 3, 6), date(2024, 3, 5), 8.0, "Email"),
        ],
    )
    land_activity(
        db, tmp_path, APR, [activity_row(date(2024, 4, 6), date(2024, 1, 5), 6.0, "Email")]
    )

    counts = build_ltv_tables(db)

    (email,) = _summary(db)
    assert counts["ltv_summary"] == 4  # Email for each of the four dimensions
    assert email["dimension_value"] == "Email"
    assert (email["cohorts"], email["acquired_users"]) == (3, 19)
    assert (email["first_cohort_month"], email["last_cohort_month"]) == (JAN, MAR)
    assert email["ltv_1m"] == pytest.approx(53 / 19)
    assert email["cohorts_1m"] == 3
    assert email["ltv_3m"] == pytest.approx(3.6)
    assert email["cohorts_3m"] == 1
    assert (email["ltv_6m"], email["cohorts_6m"]) == (None, 0)
    assert (email["ltv_12m"], email["cohorts_12m"]) == (None, 0)
    assert email["currency_code"] == "EUR"
