"""The engine's result cache and block-wise page encoding, without a server."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from google.analytics.data_v1beta.types import RunReportResponse

from connectors.emulator.dataset import PropertyData
from connectors.emulator.engine import PropertyEngine, Report
from connectors.emulator.query import DateWindow, ReportQuery

QUERY = ReportQuery(
    dimensions=("date",),
    metrics=("newUsers",),
    date_ranges=(DateWindow(date(2024, 1, 1), date(2024, 1, 31), "date_range_0"),),
    keep_empty_rows=False,
)


def _values(page: bytes) -> list[str]:
    response = RunReportResponse.pb().FromString(page)
    return [row.dimension_values[0].value for row in response.rows]


@pytest.mark.parametrize(
    ("offset", "limit"),
    [
        (0, 25),  # everything
        (2, 3),  # inside one block
        (3, 9),  # across three blocks
        (20, 10),  # running past the end
        (25, 5),  # starting at the end
    ],
)
def test_pages_across_blocks(monkeypatch: pytest.MonkeyPatch, offset: int, limit: int) -> None:
    monkeypatch.setattr(Report, "BLOCK_ROWS", 4)
    values = [f"v{i:02d}" for i in range(25)]
    report = Report(pa.table({"d": values, "m": ["1"] * 25}), dimension_count=1)
    assert report.row_count == 25
    assert _values(report.page(offset, limit)) == values[offset : offset + limit]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_results_are_cached_for_a_while(small_property: PropertyData) -> None:
    clock = _Clock()
    engine = PropertyEngine(small_property, cache_seconds=60, monotonic=clock)
    first = engine.report(QUERY)
    clock.now = 59
    assert engine.report(QUERY) is first
    clock.now = 121
    again = engine.report(QUERY)
    assert again is not first
    assert again.page(0, 100) == first.page(0, 100)
    engine.close()


def test_the_cache_keeps_only_the_latest_entries(small_property: PropertyData) -> None:
    engine = PropertyEngine(small_property, cache_entries=1)
    first = engine.report(QUERY)
    engine.report(ReportQuery(("yearMonth",), ("newUsers",), QUERY.date_ranges, False))
    assert engine.report(QUERY) is not first
    engine.close()


def test_the_cache_keeps_within_its_byte_budget(small_property: PropertyData) -> None:
    engine = PropertyEngine(small_property, cache_bytes=1)
    first = engine.report(QUERY)
    assert engine.report(QUERY) is first  # the newest entry stays even when over budget
    engine.report(ReportQuery(("yearMonth",), ("newUsers",), QUERY.date_ranges, False))
    assert engine.report(QUERY) is not first
    engine.close()
