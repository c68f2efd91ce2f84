"""A report's pages on their way to the warehouse: every page but the last goes to disk, and a
window fetched again replaces what its earlier attempt had kept."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.ga4_client import ReportPage, ResponseFlags
from connectors.windows import DateWindow
from pipelines.landing import MonthWindow, _Spooler

MONTH = MonthWindow.of("2024-03")
FIRST_HALF = DateWindow(date(2024, 3, 1), date(2024, 3, 15))
SECOND_HALF = DateWindow(date(2024, 3, 16), date(2024, 3, 31))
FLAGS = ResponseFlags("USD", "UTC", False, False)


def _page(window: DateWindow, values: list[int], attempt: int = 0) -> ReportPage:
    return ReportPage(
        table=pa.table({"new_users": pa.array(values, pa.int64())}),
        offset=0, row_count=len(values), flags=FLAGS, quota=None, window=window,
        attempt=attempt,
    )  # fmt: skip


def _rows(spooler: _Spooler) -> list[int]:
    files = [path for window in spooler.kept() for path in window.files]
    held = spooler.held_table()
    tables = [pq.read_table(path) for path in files] + ([held] if held is not None else [])
    return sorted(v for table in tables for v in table.column("new_users").to_pylist())


def test_only_the_last_page_stays_in_memory(tmp_path: Path) -> None:
    spooler = _Spooler(MONTH)
    for index, (window, values) in enumerate(
        [(FIRST_HALF, [1, 2]), (FIRST_HALF, [3]), (SECOND_HALF, [4, 5])]
    ):
        spooler.add(_page(window, values), tmp_path / f"page-{index}.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page-0.parquet", "page-1.parquet"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in tmp_path.iterdir()), "owner-only"
    assert spooler.held_table().column("new_users").to_pylist() == [4, 5]
    assert _rows(spooler) == [1, 2, 3, 4, 5]


def test_a_window_fetched_again_drops_its_earlier_pages_written_or_held(
    tmp_path: Path,
) -> None:
    spooler = _Spooler(MONTH)
    spooler.add(_page(SECOND_HALF, [9]), tmp_path / "a.parquet")
    spooler.add(_page(FIRST_HALF, [1]), tmp_path / "b.parquet")
    spooler.add(_page(FIRST_HALF, [2]), tmp_path / "c.parquet")  # b written, c held
    spooler.add(_page(FIRST_HALF, [7], attempt=1), tmp_path / "d.parquet")
    assert not (tmp_path / "b.parquet").exists()
    assert _rows(spooler) == [7, 9]
    assert spooler.held_table().column("new_users").to_pylist() == [7]
