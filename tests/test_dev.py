"""dev.py runs commands from the project folder but reads the user's paths from where they are."""

from __future__ import annotations

from pathlib import Path

import pytest

import dev


def test_path_options_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["run", "--export", "rel/e.parquet", "--duckdb=w.duckdb", "--start", "2024-01"]
    assert dev._absolute_paths(args) == [
        "run",
        "--export",
        str(tmp_path / "rel/e.parquet"),
        f"--duckdb={tmp_path / 'w.duckdb'}",
        "--start",
        "2024-01",
    ]
