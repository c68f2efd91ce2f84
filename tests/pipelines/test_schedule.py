"""The monthly refresh decides per property, in its time zone, what is due; stale loads reload."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import build_schedule_context

from connectors.reports import ACQUISITION, COHORT_ACTIVITY
from pipelines.definitions import build_definitions
from pipelines.landing import MonthWindow
from pipelines.schedules import refresh_requests
from pipelines.settings import PropertySettings, Settings
from warehouse.loads import LoadRecord, replace_partition


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        properties=(PropertySettings("111"), PropertySettings("222")),
        emulator="127.0.0.1:1",
        duckdb_path=tmp_path / "w.duckdb",
        start_month="2024-01",
    )


def _record_load(
    db: Path, property_id: str, month: date, *, time_zone: str, is_final: bool
) -> None:
    """A bookkeeping row as a real load writes it (an empty month keeps the test small)."""
    window = MonthWindow.of(month.strftime("%Y-%m"))
    for report in (ACQUISITION, COHORT_ACTIVITY):
        replace_partition(
            db,
            report=report,
            parquet_files=[],
            load=LoadRecord(
                property_id=property_id, report=report.name, partition_month=month,
                window_start=window.start, window_end=window.end,
                rows_reported=0, pages=1, requests=1, quota_tokens_used=None,
                quota_tokens_remaining_daily=None, quota_tokens_remaining_hourly=None,
                currency_code="USD", time_zone=time_zone, data_loss_from_other_row=False,
                subject_to_thresholding=False, sampling_metadata=None, is_final=is_final,
            ),
        )  # fmt: skip


def _due(settings: Settings, now: datetime) -> list[str]:
    return [r.partition_key for r in refresh_requests(settings, now)]  # type: ignore[misc]


def test_nothing_due_before_the_refresh_hour(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert _due(settings, datetime(2024, 5, 3, 5, 59, tzinfo=UTC)) == []
    assert _due(settings, datetime(2024, 5, 2, 23, 0, tzinfo=UTC)) == []


def test_month_just_ended_is_due_for_every_property(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    due = _due(settings, datetime(2024, 5, 3, 6, 0, tzinfo=UTC))
    assert sorted(due) == ["2024-04|111", "2024-04|222"]


def test_refresh_time_is_read_in_the_property_time_zone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _record_load(settings.duckdb_path, "111", date(2024, 3, 1), time_zone="Asia/Tokyo",
                 is_final=True)  # fmt: skip
    _record_load(settings.duckdb_path, "222", date(2024, 3, 1), time_zone="America/Los_Angeles",
                 is_final=True)  # fmt: skip
    # 21:00 UTC on the 2nd is 06:00 on the 3rd in Tokyo, 14:00 on the 2nd in Los Angeles.
    assert _due(settings, datetime(2024, 5, 2, 21, 0, tzinfo=UTC)) == ["2024-04|111"]
    # 13:00 UTC on the 3rd is 06:00 on the 3rd in Los Angeles (daylight saving time).
    assert sorted(_due(settings, datetime(2024, 5, 3, 13, 0, tzinfo=UTC))) == [
        "2024-04|111",
        "2024-04|222",
    ]


def test_final_loads_are_not_repeated_and_early_loads_are_reloaded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _record_load(settings.duckdb_path, "111", date(2024, 4, 1), time_zone="UTC", is_final=True)
    _record_load(settings.duckdb_path, "222", date(2024, 4, 1), time_zone="UTC", is_final=False)
    _record_load(settings.duckdb_path, "222", date(2024, 2, 1), time_zone="UTC", is_final=False)
    due = _due(settings, datetime(2024, 5, 10, 6, 0, tzinfo=UTC))
    assert sorted(due) == ["2024-02|222", "2024-04|222"]


def test_schedule_evaluates_through_dagster(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("monthly_refresh")
    repository = defs.get_repository_def()
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 5, 1, tzinfo=UTC), repository_def=repository
    )
    result = schedule.evaluate_tick(context)
    assert result.skip_message == "nothing due"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 5, 3, 7, tzinfo=UTC), repository_def=repository
    )
    result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests or []] == ["2024-04|111", "2024-04|222"]
    assert len({r.run_key for r in result.run_requests or []}) == 2


@pytest.mark.parametrize(("day", "hour"), [(0, 6), (29, 6), (3, 24), ("x", 6)])
def test_refresh_time_settings_are_checked(day: object, hour: object) -> None:
    from pipelines.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="refresh_"):
        load_settings({"GA_LTV_REFRESH_DAY": str(day), "GA_LTV_REFRESH_HOUR": str(hour)})
