"""Fixtures shared by the warehouse tests: a database path inside a fresh temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A warehouse path whose parent folder does not exist yet."""
    return tmp_path / "warehouse" / "ga.duckdb"
