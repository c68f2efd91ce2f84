"""Shared fixtures: the real GA4 export sample, and a clean settings environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
EXPORT_SAMPLE = SHARED_DATA / "ga4-export-sample" / "events.parquet"


@pytest.fixture
def export_sample() -> Path:
    """The real GA4 export sample; a missing file fails the test, it never skips it."""
    assert EXPORT_SAMPLE.is_file(), (
        f"real GA4 test data missing: {EXPORT_SAMPLE} (expected ../shared beside the repo)"
    )
    return EXPORT_SAMPLE


@pytest.fixture(autouse=True)
def clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's GA_LTV_* settings or Dagster home.

    GA_LTV_TEST_* variables stay: they point the tests at services CI started for them.
    """
    for name in list(os.environ):
        is_setting = name.startswith("GA_LTV_") and not name.startswith("GA_LTV_TEST_")
        if is_setting or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)
