"""The raw assets' checks fail when the landed data disagrees with GA or looks wrong."""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity

from connectors.ga4_client import ResponseFlags
from pipelines.assets import _landing_checks
from pipelines.landing import LandingResult, MonthWindow
from warehouse.checks import PartitionFacts

GOOD_FLAGS = ResponseFlags(
    currency_code="USD", time_zone="UTC", data_loss_from_other_row=False,
    subject_to_thresholding=False,
)  # fmt: skip


def _result(*, rows_landed: int = 10, is_final: bool = True, flags=GOOD_FLAGS) -> LandingResult:
    return LandingResult(
        window=MonthWindow.of("2024-03"), load_id="x", pages=1, rows_per_page=(rows_landed,),
        rows_reported=10, rows_landed=rows_landed, is_final=is_final, flags=flags, quota=None,
        quota_tokens_used=0, pages_fetched_ahead=0, facts=_facts(rows=rows_landed),
    )  # fmt: skip


def _facts(*, rows: int = 10, duplicates: int = 0, placeholders: int = 0, total: float = 5.0):
    return PartitionFacts(
        rows=rows, duplicate_keys=duplicates, placeholder_rows=placeholders,
        metric_sums={"newUsers": total},
    )  # fmt: skip


def _outcome(result: LandingResult, facts: PartitionFacts, ga_total: float = 5.0) -> dict:
    return {
        c.check_name: (c.passed, c.severity)
        for c in _landing_checks(result, facts, "newUsers", ga_total)
    }


def test_all_pass_on_a_clean_landing() -> None:
    assert all(passed for passed, _ in _outcome(_result(), _facts()).values())


@pytest.mark.parametrize(
    ("result", "facts", "ga_total", "failing", "severity"),
    [
        # GA said 10 rows, 9 landed.
        (_result(rows_landed=9), _facts(rows=9), 5.0, "rows_match_ga", AssetCheckSeverity.ERROR),
        # Rows landed but the table holds a different count (a concurrent writer?).
        (_result(), _facts(rows=11), 5.0, "rows_match_ga", AssetCheckSeverity.ERROR),
        # The month's total differs from GA's totals-only request by more than a cent.
        (_result(), _facts(total=5.02), 5.0, "reconciles_with_ga_totals", AssetCheckSeverity.ERROR),
        (_result(), _facts(duplicates=1), 5.0, "no_duplicate_keys", AssetCheckSeverity.ERROR),
        # Placeholders in a final month are an error; before it is final, a warning.
        (_result(), _facts(placeholders=3), 5.0, "no_placeholder_values", AssetCheckSeverity.ERROR),
        (_result(is_final=False), _facts(placeholders=3), 5.0, "no_placeholder_values",
         AssetCheckSeverity.WARN),
        (_result(flags=ResponseFlags("USD", "UTC", True, False)), _facts(), 5.0,
         "no_data_quality_flags", AssetCheckSeverity.WARN),
    ],
)  # fmt: skip
def test_each_check_can_fail(
    result: LandingResult,
    facts: PartitionFacts,
    ga_total: float,
    failing: str,
    severity: AssetCheckSeverity,
) -> None:
    outcome = _outcome(result, facts, ga_total)
    assert outcome[failing] == (False, severity)
    assert [name for name, (passed, _) in outcome.items() if not passed] == [failing]


def test_reconciliation_tolerates_float_noise() -> None:
    assert _outcome(_result(), _facts(total=5.004), 5.0)["reconciles_with_ga_totals"][0]
