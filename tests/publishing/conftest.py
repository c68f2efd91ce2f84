"""Fixtures for the publishing tests: small warehouses built once per session.

Two versions of the same warehouse differ in rows and revenue, so a reader can tell which one
it saw; both hold the dimension values most likely to break a CSV file, an HTML page or SQL.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.warehouse.spool import acquisition_row, activity_row, land_acquisition, land_activity
from tests.warehouse.test_loads import HOSTILE
from warehouse.models import build_ltv_tables

SCRIPT_CAMPAIGN = '<script>alert("ga-ltv")</script>'
# Values a CSV writer or an HTML template gets wrong first, on top of the warehouse's list.
NASTY = [
    *HOSTILE,
    SCRIPT_CAMPAIGN,
    'comma, "quote", semicolon; done',
    "crlf\r\nline",
    "</td></tr><img src=x onerror=alert(1)>",
    "مرحبا بالعالم 🎉",
]
CHANNELS = ["Organic Search", "Email", "Paid Search", "Direct"]
# Revenue that does not survive a careless float format.
AMOUNTS = [0.1, 1 / 3, 1e-7, 123_456_789.123_456_79, 19.99]


def build_warehouse(db: Path, spool: Path, *, months: int) -> Path:
    """A property with ``months`` cohorts (January on), four channels and every nasty value
    as a campaign, activity every month; more months means more rows and more revenue."""
    firsts = [date(2024, m, 1) for m in range(1, months + 1)]
    for index, month in enumerate(firsts):
        day = month.replace(day=2)
        rows = [acquisition_row(day, 10 + 5 * i + index, c) for i, c in enumerate(CHANNELS)]
        rows += [
            acquisition_row(day, 1 + i, "Referral", source=v, medium=v, campaign=v)
            for i, v in enumerate(NASTY)
        ]
        land_acquisition(db, spool, month, rows)
    for index, month in enumerate(firsts):
        rows = []
        for cohort in firsts[: index + 1]:
            seen = month.replace(day=3)
            first = cohort.replace(day=2)
            rows += [
                activity_row(seen, first, AMOUNTS[(i + index) % len(AMOUNTS)] * (i + 1), c)
                for i, c in enumerate(CHANNELS)
            ]
            rows += [
                activity_row(seen, first, 2.5, "Referral", source=v, medium=v, campaign=v)
                for v in NASTY[:: 1 + index]
            ]
        land_activity(db, spool, month, rows)
    build_ltv_tables(db)
    return db


@pytest.fixture(scope="session")
def warehouse_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months loaded."""
    folder = tmp_path_factory.mktemp("warehouse_v1")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=3)


@pytest.fixture(scope="session")
def warehouse_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same property a month later: four months loaded."""
    folder = tmp_path_factory.mktemp("warehouse_v2")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=4)
