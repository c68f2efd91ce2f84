"""Replacing a partition: idempotent, all-or-nothing, and exact about what it stores."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.reports import ACQUISITION, COHORT_ACTIVITY
from tests.warehouse.spool import (
    PROPERTY,
    acquisition_row,
    activity_row,
    land_acquisition,
    land_activity,
    load_record,
    write_spool,
)
from warehouse import loads
from warehouse.connection import reader
from warehouse.loads import SpoolError, replace_partition

JAN = date(2024, 1, 1)
FEB = date(2024, 2, 1)
RAW_VALUE_COLUMNS = (
    "property_id, partition_month, first_session_date, first_user_default_channel_group, "
    "first_user_source, first_user_medium, first_user_campaign_name, new_users, "
    "currency_code, time_zone, data_loss_from_other_row, subject_to_thresholding"
)


def _acquisition(db: Path) -> list[tuple[Any, ...]]:
    with reader(db) as con:
        return con.execute(
            f"select {RAW_VALUE_COLUMNS} from raw.ga_acquisition order by all"  # noqa: S608
        ).fetchall()


def _loads(db: Path, table: str = "raw.ga_loads") -> list[dict[str, Any]]:
    with reader(db) as con:
        cursor = con.execute(f"select * from {table} order by loaded_at")  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


JAN_ROWS = [
    acquisition_row(date(2024, 1, 3), 7),
    acquisition_row(date(2024, 1, 9), 5, "Paid Search", source="google", medium="cpc"),
]


def test_rows_land_with_partition_and_load_metadata(db: Path, tmp_path: Path) -> None:
    assert land_acquisition(db, tmp_path, JAN, JAN_ROWS, currency_code="USD") == 2
    rows = _acquisition(db)
    assert rows == [
        (PROPERTY, JAN, date(2024, 1, 3), "Organic Search", "google", "organic", "(organic)", 7,
         "USD", "Europe/Berlin", False, False),
        (PROPERTY, JAN, date(2024, 1, 9), "Paid Search", "google", "cpc", "(organic)", 5,
         "USD", "Europe/Berlin", False, False),
    ]  # fmt: skip
    (load,) = _loads(db)
    assert load["report"] == "acquisition"
    assert (load["rows_reported"], load["rows_landed"]) == (2, 2)
    assert load["window_start"] == JAN
    assert load["window_end"] == date(2024, 1, 31)
    assert load["quota_tokens_remaining_hourly"] is None


def test_reloading_a_partition_replaces_it(db: Path, tmp_path: Path) -> None:
    """Twice the same spool: same rows, one current load row, two history rows."""
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    land_acquisition(db, tmp_path, FEB, [acquisition_row(date(2024, 2, 1), 3)])
    first = _acquisition(db)
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    assert _acquisition(db) == first
    assert len(_loads(db)) == 2
    history = _loads(db, "raw.ga_load_history")
    assert [h["partition_month"] for h in history] == [JAN, FEB, JAN]
    assert history[0]["load_id"] != history[2]["load_id"]


def test_reload_with_changed_data_replaces_only_that_partition(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    land_acquisition(db, tmp_path, FEB, [acquisition_row(date(2024, 2, 1), 3)])
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 3), 8)])
    assert [(r[2], r[7]) for r in _acquisition(db)] == [
        (date(2024, 1, 3), 8),
        (date(2024, 2, 1), 3),
    ]


def test_same_month_of_another_property_or_report_is_kept(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 2), 1)], property_id="42")
    land_activity(db, tmp_path, JAN, [activity_row(date(2024, 1, 3), date(2024, 1, 3), 9.5)])
    land_acquisition(db, tmp_path, JAN, [], property_id="42")
    assert len(_acquisition(db)) == 2
    assert {(row["property_id"], row["report"]) for row in _loads(db)} == {
        (PROPERTY, "acquisition"),
        ("42", "acquisition"),
        (PROPERTY, "cohort_activity"),
    }


def test_empty_month_is_a_successful_load(db: Path, tmp_path: Path) -> None:
    """Zero spool files empties the partition and records it as loaded with no rows."""
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    assert land_acquisition(db, tmp_path, JAN, []) == 0
    assert _acquisition(db) == []
    (load,) = _loads(db)
    assert (load["rows_reported"], load["rows_landed"]) == (0, 0)


def _assert_january_intact(db: Path, before: list[tuple[Any, ...]], load_id: str) -> None:
    assert _acquisition(db) == before
    (load,) = _loads(db)
    assert load["load_id"] == load_id
    assert len(_loads(db, "raw.ga_load_history")) == 1


def test_unreadable_spool_file_changes_nothing(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    before, (load,) = _acquisition(db), _loads(db)
    good = write_spool(tmp_path / "next", ACQUISITION, JAN_ROWS)
    bad = tmp_path / "next" / "broken.parquet"
    bad.write_bytes(b"PAR1 but then nothing useful")
    with pytest.raises(SpoolError, match=r"broken\.parquet"):
        replace_partition(
            db,
            report=ACQUISITION,
            load=load_record(JAN, report=ACQUISITION, rows_reported=4),
            parquet_files=[good, bad],
        )
    _assert_january_intact(db, before, load["load_id"])


def test_failure_after_the_delete_rolls_back(db: Path, tmp_path: Path) -> None:
    """A row dated outside the window is found only after delete and insert ran."""
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    before, (load,) = _acquisition(db), _loads(db)
    with pytest.raises(SpoolError, match="outside the window"):
        land_acquisition(db, tmp_path, JAN, [*JAN_ROWS, acquisition_row(date(2024, 2, 1), 1)])
    _assert_january_intact(db, before, load["load_id"])


def test_failure_while_recording_the_load_rolls_back(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    before, (load,) = _acquisition(db), _loads(db)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(loads, "_record_load", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 4), 99)])
    _assert_january_intact(db, before, load["load_id"])


def test_rows_landed_that_disagree_with_the_spool_are_refused(db: Path, tmp_path: Path) -> None:
    land_acquisition(db, tmp_path, JAN, JAN_ROWS)
    before, (load,) = _acquisition(db), _loads(db)
    with pytest.raises(SpoolError, match="hold 2 rows"):
        land_acquisition(db, tmp_path, JAN, JAN_ROWS, rows_landed=3)
    _assert_january_intact(db, before, load["load_id"])


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        # revenue arriving as text would sum as nothing
        ("new_users", pa.array(["7"]), "new_users is string, expected BIGINT"),
        ("first_session_date", pa.array(["20240103"]), "first_session_date is string"),
        ("surprise", pa.array([1]), "columns the report does not"),
    ],
)
def test_spool_file_with_wrong_columns_is_refused(
    db: Path, tmp_path: Path, column: str, values: pa.Array, message: str
) -> None:
    table = pa.table({k: [v] for k, v in acquisition_row(date(2024, 1, 3), 7).items()})
    if column in table.column_names:
        table = table.set_column(table.column_names.index(column), column, values)
    else:
        table = table.append_column(column, values)
    path = tmp_path / "odd.parquet"
    pq.write_table(table, path)
    with pytest.raises(SpoolError, match=message):
        replace_partition(
            db,
            report=ACQUISITION,
            load=load_record(JAN, report=ACQUISITION),
            parquet_files=[path],
        )


def test_missing_column_is_refused(db: Path, tmp_path: Path) -> None:
    row = acquisition_row(date(2024, 1, 3), 7)
    del row["first_user_medium"]
    path = tmp_path / "short.parquet"
    pq.write_table(pa.table({k: [v] for k, v in row.items()}), path)
    with pytest.raises(SpoolError, match="lacks column first_user_medium"):
        replace_partition(
            db,
            report=ACQUISITION,
            load=load_record(JAN, report=ACQUISITION),
            parquet_files=[path],
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"property_id": "G-ABC123"}, "measurement id"),
        ({"property_id": "12; drop table raw.ga_loads"}, "numeric GA4 property id"),
        ({"property_id": "١٢٣"}, "numeric GA4 property id"),  # Arabic-Indic digits
        ({"partition_month": date(2024, 1, 2)}, "first of month"),
        ({"window_end": date(2024, 2, 1)}, "not inside the partition month"),
        ({"sampling_metadata": "{not json"}, "Expecting"),
        ({"loaded_at": datetime(2024, 2, 1, 12, 0)}, "time zone"),
    ],
)
def test_load_record_is_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_record(JAN, report=ACQUISITION, **overrides)


def test_load_record_for_another_report_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="not 'cohort_activity'"):
        replace_partition(
            db,
            report=COHORT_ACTIVITY,
            load=load_record(JAN, report=ACQUISITION),
            parquet_files=[],
        )


def test_pipeline_supplied_fields_are_stored(db: Path, tmp_path: Path) -> None:
    loaded_at = datetime(2024, 2, 5, 6, 7, 8, tzinfo=UTC)
    land_acquisition(
        db,
        tmp_path,
        JAN,
        JAN_ROWS,
        load_id="run-1",
        loaded_at=loaded_at,
        rows_landed=2,
        rows_reported=2,
        sampling_metadata='[{"samplesReadCount": "10", "samplingSpaceSize": "100"}]',
        data_loss_from_other_row=True,
        quota_tokens_remaining_hourly=4_000,
    )
    (load,) = _loads(db)
    assert load["load_id"] == "run-1"
    assert load["loaded_at"] == loaded_at
    assert load["sampling_metadata"] == '[{"samplesReadCount": "10", "samplingSpaceSize": "100"}]'
    assert load["data_loss_from_other_row"] is True
    assert load["quota_tokens_remaining_hourly"] == 4_000
    with reader(db) as con:
        row = con.execute(
            "select distinct load_id, loaded_at, data_loss_from_other_row from raw.ga_acquisition"
        ).fetchall()
    assert row == [("run-1", loaded_at, True)]


def test_row_count_mismatch_with_ga_is_logged(
    db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="warehouse.loads"):
        land_acquisition(db, tmp_path, JAN, JAN_ROWS, rows_reported=3)
    assert "landed 2 rows but GA reported 3" in caplog.text


HOSTILE = [
    "it's",
    'say "hi"',
    "a;b;c",
    "'; drop table x; --",
    "'); delete from raw.ga_loads; --",
    "🚀 launch 👩‍💻",
    "שלום עולם",  # right-to-left
    "\u202eevil\u202c",  # right-to-left override
    "x" * 1000,
    "(not set)",
    "",
    "tab\tnew\nline\\back",
    "{table}",
    "$dimension ? %s",
]


def test_hostile_values_are_stored_exactly(db: Path, tmp_path: Path) -> None:
    rows = [
        acquisition_row(date(2024, 1, 3), i + 1, value, source=value, medium=value, campaign=value)
        for i, value in enumerate(HOSTILE)
    ]
    land_acquisition(db, tmp_path, JAN, rows, currency_code=HOSTILE[3], time_zone=HOSTILE[5])
    stored = _acquisition(db)
    by_users = {row[7]: row for row in stored}
    for i, value in enumerate(HOSTILE):
        assert by_users[i + 1][3:7] == (value, value, value, value)
    assert {(row[8], row[9]) for row in stored} == {(HOSTILE[3], HOSTILE[5])}
    with reader(db) as con:
        tables = con.execute("select count(*) from duckdb_tables() where table_name = 'x'")
        assert tables.fetchone() == (0,)
