"""Token costs grow with the rows a request returns and the days it touches, as GA's do."""

from __future__ import annotations

import pytest

from connectors.emulator.quota import request_cost


@pytest.mark.parametrize(
    ("rows", "days", "tokens"),
    [
        (0, 1, 1),  # every request costs something
        (9_999, 31, 1),  # a month of a small report: one token
        (10_000, 31, 2),  # more rows, more tokens
        (250_000, 31, 26),
        (0, 32, 2),  # a longer range, more tokens
        (0, 3 * 365, 36),
    ],
)
def test_cost_grows_with_rows_and_days(rows: int, days: int, tokens: int) -> None:
    assert request_cost(rows, days) == tokens
