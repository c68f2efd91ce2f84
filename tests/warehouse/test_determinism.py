"""The marts do not depend on the order rows arrive or partitions load in, to the last bit.

A resumed or parallel backfill lands the same partitions in another order than a plain one, and
GA promises no row order without orderBys; the tables must still compare equal row by row, so
sums of money and seconds cannot depend on the order they are added in.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import duckdb

from tests.warehouse.spool import acquisition_row, activity_row, land_acquisition, land_activity
from warehouse.models import build_ltv_tables

MONTHS = [date(2024, m, 1) for m in range(1, 7)]
CHANNELS = ["Organic Search", "Direct", "Email", "Paid Search"]


def _partitions() -> list[tuple[str, date, list[dict]]]:
    rng = random.Random(42)
    partitions = []
    for month in MONTHS:
        days = [month + timedelta(days=d) for d in range(28)]
        partitions.append(
            ("acquisition", month, [
                acquisition_row(day, rng.randint(1, 50), channel, campaign=f"c{rng.randint(1, 40)}")
                for day in days for channel in CHANNELS
            ])
        )  # fmt: skip
        activity = []
        for day in days:
            for first in (d for d in MONTHS if d <= month):
                for channel in CHANNELS:
                    # Revenue with awkward cents and magnitudes, as GA sends them.
                    revenue = round(rng.lognormvariate(3, 2), rng.choice((2, 4, 6)))
                    activity.append(
                        activity_row(day, first + timedelta(days=rng.randint(0, 27)), revenue,
                                     channel, campaign=f"c{rng.randint(1, 40)}",
                                     user_engagement_duration=rng.random() * 1e4)
                    )  # fmt: skip
        partitions.append(("cohort_activity", month, activity))
    return partitions


def _build(folder: Path, order: list[tuple[str, date, list[dict]]]) -> dict[str, list[tuple]]:
    db = folder / "ga.duckdb"
    for report, month, rows in order:
        lander = land_acquisition if report == "acquisition" else land_activity
        lander(db, folder / "spool", month, rows)
    build_ltv_tables(db)
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(f"select * from marts.{table} order by all").fetchall()  # noqa: S608 - fixed names
            for table in ("ltv_monthly", "ltv_summary")
        }


def test_marts_are_identical_whatever_the_load_order(tmp_path: Path) -> None:
    partitions = _partitions()
    rng = random.Random(7)
    shuffled = [(report, month, rng.sample(rows, len(rows))) for report, month, rows in partitions]
    rng.shuffle(shuffled)
    plain = _build(tmp_path / "plain", partitions)
    reordered = _build(tmp_path / "reordered", list(reversed(shuffled)))
    assert len(plain["ltv_monthly"]) > 900
    for table, rows in plain.items():
        assert rows == reordered[table], table
