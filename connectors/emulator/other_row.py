"""GA's "(other)" row: what a report looks like once it outgrows the table behind it.

GA's summary tables keep a bounded number of rows (50,000 a day for most); a report with more
distinct rows than that keeps the largest and folds the rest into one row whose dimension
values are all ``(other)``, and says so with ``dataLossFromOtherRow``. The emulator applies the
bound to each report's rows, so a one-day report meets exactly GA's per-day limit and a
shorter window is the way around it, as with GA.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

OTHER = "(other)"
DEFAULT_ROWS_PER_DAY = 50_000


def fold_overflow(
    table: pa.Table, *, dimension_count: int, decimal_metrics: Sequence[bool], limit: int
) -> tuple[pa.Table, bool]:
    """Keep the ``limit - 1`` rows largest by the first metric, fold the rest into ``(other)``.

    ``table`` holds dimension texts then metric texts, in report order; kept rows stay in that
    order and the ``(other)`` row comes last. Returns the table and whether anything was folded.
    TODO(distinct counts): user counts of the folded rows are summed, where GA counts users once.
    """
    if limit < 1:
        raise ValueError("the (other) row limit must be at least 1")
    if table.num_rows <= limit or dimension_count == 0:
        return table, False
    metric_columns = table.columns[dimension_count:]
    positions = pa.array(range(table.num_rows), pa.int64())
    if metric_columns:
        size = pc.cast(metric_columns[0], pa.float64())
        order = pa.table({"size": size, "position": positions}).sort_by(
            [("size", "descending"), ("position", "ascending")]
        )
        ranked = order.column("position")
    else:
        ranked = positions
    keep = pc.sort_indices(ranked.slice(0, limit - 1))
    kept_positions = pc.take(ranked.slice(0, limit - 1), keep)
    folded_positions = ranked.slice(limit - 1)
    kept = table.take(kept_positions)
    folded = table.take(folded_positions)
    texts = [OTHER] * dimension_count + [
        _sum_text(column, is_decimal=is_decimal)
        for column, is_decimal in zip(
            folded.columns[dimension_count:], decimal_metrics, strict=True
        )
    ]
    other = pa.Table.from_arrays(
        [pa.array([text], type=f.type) for text, f in zip(texts, table.schema, strict=True)],
        schema=table.schema,
    )
    return pa.concat_tables([kept, other]), True


def _sum_text(column: pa.ChunkedArray, *, is_decimal: bool) -> str:
    """The sum of GA value texts, written as GA writes that metric type."""
    if not is_decimal:
        return str(pc.sum(pc.cast(column, pa.int64())).as_py() or 0)
    total = sum((Decimal(text) for text in column.to_pylist()), Decimal(0))
    text = format(total, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
