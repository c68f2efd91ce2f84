"""GA answers a careless pipeline gets wrong: dimension values with quotes, semicolons, SQL,
markup, emoji, right-to-left text, 1,000 characters or `(not set)` everywhere; a property
with no revenue; a month with no rows. Served by the emulator and run end to end, every value
is stored exactly in raw and marts, never executed, and survives the CSV extract, the HTML
report (escaped) and the PostgreSQL publish."""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import DagsterInstance

from connectors.emulator.dataset import PropertyData
from connectors.emulator.server import EmulatorServer
from pipelines.runner import backfill
from pipelines.settings import PropertySettings, Settings
from tests.publishing.conftest import NASTY, PgDatabase
from tests.reliability.conftest import Tally
from warehouse.connection import reader

HOSTILE_ID, NO_REVENUE_ID, EMPTY_ID = "830001", "830002", "830003"
MONTHS = ["2024-01", "2024-02"]
# Every dimension of a user takes the same value, so each value is tested in every column.
VALUES = sorted(set(NASTY) - {""})  # GA never answers an empty string for these dimensions
MARKUP = [v for v in VALUES if set(v) & set("<>&\"'")]


def _property(property_id: str, values: list[str], *, revenue: float) -> PropertyData:
    """One user per value acquired on 2 January, active on the 3rd of both months."""
    firsts = [date(2024, 1, 2)] * len(values)
    users = pa.table(
        {
            "user_key": pa.array(range(len(values)), pa.int64()),
            "first_session_date": pa.array(firsts, pa.date32()),
            **{name: pa.array(values, pa.string()) for name in _DIMENSIONS},
        }
    )
    days = [date(2024, 1, 3), date(2024, 2, 3)]
    keys = [k for k in range(len(values)) for _ in days]
    n = len(keys)
    activity = pa.table(
        {
            "user_key": pa.array(keys, pa.int64()),
            "date": pa.array(days * len(values), pa.date32()),
            **{c: pa.array([1] * n, pa.int64()) for c in _COUNTS},
            "purchase_revenue": pa.array([revenue] * n, pa.float64()),
            "total_revenue": pa.array([revenue] * n, pa.float64()),
            "user_engagement_duration": pa.array([30.0] * n, pa.float64()),
            "engaged": pa.array([True] * n, pa.bool_()),
        }
    )
    return PropertyData(property_id, "hostile", "UTC", "EUR", users, activity)


_DIMENSIONS = ("channel_group", "source", "medium", "campaign")
_COUNTS = ("sessions", "screen_page_views", "transactions", "ecommerce_purchases")


@dataclass(frozen=True)
class Landed:
    db: Path
    folder: Path


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    props = [
        _property(HOSTILE_ID, VALUES, revenue=9.99),
        _property(NO_REVENUE_ID, ["(not set)"] * 3, revenue=0.0),
        _property(EMPTY_ID, [], revenue=0.0),
    ]
    with EmulatorServer(props) as server:
        yield server.address


def _run(address: str, folder: Path) -> Landed:
    settings = Settings(
        properties=tuple(PropertySettings(p) for p in (HOSTILE_ID, NO_REVENUE_ID, EMPTY_ID)),
        emulator=address,
        duckdb_path=folder / "ga_ltv.duckdb",
        spool_dir=folder / "spool",
        start_month=MONTHS[0],
        as_of=(date(2024, 3, 1) + timedelta(days=10)).isoformat(),
    )
    with DagsterInstance.ephemeral() as instance:
        report = backfill(settings, months=MONTHS, instance=instance)
    assert not report.failed and len(report.landed) == 6
    return Landed(settings.duckdb_path, folder)


@pytest.fixture(scope="module")
def landed(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return _run(emulator, tmp_path_factory.mktemp("hostile"))


def _distinct(db: Path, sql: str, *params: str) -> set[str]:
    with reader(db) as con:
        return {row[0] for row in con.execute(sql, list(params)).fetchall()}


def test_values_are_stored_exactly_in_raw_and_marts(landed: Landed, tally: Tally) -> None:
    tally.bad_input("GA dimension value", count=len(VALUES) * len(_DIMENSIONS))
    tally.bad_input("GA property shape (no revenue, empty report)", count=2)
    for column in ("first_user_default_channel_group", "first_user_source",
                   "first_user_medium", "first_user_campaign_name"):  # fmt: skip
        for table in ("raw.ga_acquisition", "raw.ga_cohort_activity"):
            stored = _distinct(
                landed.db,
                f"select {column} from {table} where property_id = ?",  # noqa: S608 - constants
                HOSTILE_ID,
            )
            assert stored == set(VALUES), (table, column)
    for dimension in _DIMENSIONS[1:]:
        stored = _distinct(
            landed.db,
            f"select {dimension} from marts.ltv_by_{dimension} where property_id = ?",  # noqa: S608
            HOSTILE_ID,
        )
        assert stored == set(VALUES), dimension
    with reader(landed.db) as con:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        loads = con.execute(
            "select property_id, count(*), sum(rows_landed) from raw.ga_loads group by 1 order by 1"
        ).fetchall()
        no_revenue = con.execute(
            "select sum(cumulative_revenue), max(acquired_users) from marts.ltv_by_channel "
            "where property_id = ?",
            [NO_REVENUE_ID],
        ).fetchone()
        empty = con.execute(
            "select count(*) from marts.ltv_monthly where property_id = ?", [EMPTY_ID]
        ).fetchone()
    assert "x" not in tables  # "'; drop table x; --" was data, not a statement
    assert [(pid, n) for pid, n, _ in loads] == [(HOSTILE_ID, 4), (NO_REVENUE_ID, 4), (EMPTY_ID, 4)]
    assert loads[2][2] == 0
    assert no_revenue == (0.0, 3)
    assert empty == (0,)


def test_values_survive_the_csv_extract(landed: Landed) -> None:
    path = landed.folder / "extracts" / "latest" / "ltv_by_campaign.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["campaign"] for r in rows if r["property_id"] == HOSTILE_ID} == set(VALUES)


def test_values_are_escaped_in_the_html_report(landed: Landed) -> None:
    (page,) = (landed.folder / "reports").glob("*/ltv_report.html")
    text = page.read_text(encoding="utf-8")
    for value in MARKUP:
        assert value not in text, value
        assert html.escape(value) in text, value
    assert not re.search(r"<script", text, re.IGNORECASE)
    images = re.findall(r"<img\b[^>]*>", text, re.IGNORECASE)
    assert all('src="data:image/png;base64,' in tag for tag in images)


def test_values_survive_the_postgres_publish(
    emulator: str, pg: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    _run(emulator, tmp_path)
    with pg.connect() as conn:
        rows = conn.execute(
            "select distinct campaign from ga_ltv.ltv_by_campaign where property_id = %s",
            [HOSTILE_ID],
        ).fetchall()
    assert {r[0] for r in rows} == set(VALUES)
