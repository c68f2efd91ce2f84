"""Report computation: SQL over one property's facts in an in-process DuckDB.

Each property gets its own in-memory database, loaded once. gRPC serves from a thread pool, so
every report runs on its own cursor. A full sorted result is encoded once and kept for a short
while, because clients page through big reports with the same request and a moving offset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.emulator.dataset import PropertyData
from connectors.emulator.fields import METRICS
from connectors.emulator.other_row import DEFAULT_ROWS_PER_DAY, fold_overflow
from connectors.emulator.query import ReportQuery
from connectors.emulator.report_sql import ReportSql
from connectors.emulator.wire import EncodedRows, encode_rows

logger = logging.getLogger(__name__)

# Money and seconds are summed as exact decimals so results do not depend on summation order.
_DECIMAL = "decimal(18, 6)"

_LOAD_FACTS = f"""
create table facts as
select user_key,
       first_session_date as date,
       first_session_date,
       channel_group, source, medium, campaign,
       1::bigint as new_users,
       0::bigint as sessions,
       0::bigint as screen_page_views,
       0::bigint as transactions,
       0::bigint as ecommerce_purchases,
       0::{_DECIMAL} as purchase_revenue,
       0::{_DECIMAL} as total_revenue,
       0::{_DECIMAL} as user_engagement_duration,
       false as engaged
  from source_users
union all
select a.user_key,
       a.date,
       u.first_session_date,
       u.channel_group, u.source, u.medium, u.campaign,
       0,
       a.sessions,
       a.screen_page_views,
       a.transactions,
       a.ecommerce_purchases,
       a.purchase_revenue::{_DECIMAL},
       a.total_revenue::{_DECIMAL},
       a.user_engagement_duration::{_DECIMAL},
       a.engaged
  from source_activity as a
  join source_users as u using (user_key)
 order by date
"""  # noqa: S608 -- only the fixed decimal type is interpolated


AggregateRow = tuple[tuple[str, ...], tuple[str, ...]]


def metric_texts(table: pa.Table, dimension_count: int) -> pa.Table:
    """Metric columns as GA writes them: integers plain, decimals without trailing zeros.

    Columns that are text already pass through, so a table may be converted twice.
    """
    columns = list(table.columns)
    for index in range(dimension_count, len(columns)):
        column = columns[index]
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            continue
        text = pc.cast(column, pa.string())
        if pa.types.is_decimal(column.type) and column.type.scale > 0:
            text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
        columns[index] = text
    return pa.Table.from_arrays(columns, names=table.column_names)


def _split(row: tuple[str, ...], dimension_count: int) -> AggregateRow:
    return tuple(row[:dimension_count]), tuple(row[dimension_count:])


class Report:
    """A whole sorted result, encoded to wire bytes block by block as pages reach it.

    Encoding only the blocks a page covers keeps the first page of a huge report quick; later
    pages reuse what earlier ones encoded.
    """

    BLOCK_ROWS = 65_536

    def __init__(
        self,
        table: pa.Table,
        dimension_count: int,
        aggregates: dict[str, list[AggregateRow]] | None = None,
        *,
        data_loss_from_other_row: bool = False,
    ) -> None:
        self._table = table
        self._dimension_count = dimension_count
        self.aggregates = aggregates or {}
        self.data_loss_from_other_row = data_loss_from_other_row
        self._blocks: dict[int, EncodedRows] = {}
        self._lock = threading.Lock()

    @property
    def row_count(self) -> int:
        return self._table.num_rows

    @property
    def nbytes(self) -> int:
        return self._table.nbytes

    def metric_minimum(self, index: int) -> float | None:
        """The smallest value of the ``index``-th metric over the rows; None without rows."""
        column = self._table.column(self._dimension_count + index)
        return pc.min(pc.cast(column, pa.float64())).as_py()

    def page(self, offset: int, limit: int) -> bytes:
        """Serialized ``rows`` entries for rows ``offset`` .. ``offset + limit``."""
        first = min(offset, self.row_count)
        last = min(first + limit, self.row_count)
        size = self.BLOCK_ROWS
        parts = []
        for index in range(first // size, -(-last // size)):
            start = index * size
            begin, end = max(first, start), min(last, start + size)
            parts.append(self._block(index).page(begin - start, end - begin))
        return b"".join(parts)

    def _block(self, index: int) -> EncodedRows:
        with self._lock:
            block = self._blocks.get(index)
            if block is None:
                rows = self._table.slice(index * self.BLOCK_ROWS, self.BLOCK_ROWS)
                columns = metric_texts(rows, self._dimension_count).columns
                split = self._dimension_count
                block = self._blocks[index] = encode_rows(columns[:split], columns[split:])
            return block


class _ResultCache:
    """A small map from queries to computed reports, bounded in age, entries and bytes.

    The byte bound counts result tables; their encoded blocks take about as much again.
    """

    def __init__(
        self, *, seconds: float, entries: int, max_bytes: int, clock: Callable[[], float]
    ) -> None:
        self._seconds = seconds
        self._entries = entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[ReportQuery, tuple[float, Report]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: ReportQuery) -> Report | None:
        with self._lock:
            item = self._items.get(query)
            if item is None:
                return None
            stored, report = item
            if self._clock() - stored > self._seconds:
                del self._items[query]
                return None
            self._items.move_to_end(query)
            return report

    def put(self, query: ReportQuery, report: Report) -> None:
        if self._entries <= 0:
            return
        with self._lock:
            self._items[query] = (self._clock(), report)
            self._items.move_to_end(query)
            # The newest entry stays even when it alone exceeds the byte bound: its pages follow.
            while len(self._items) > 1 and (
                len(self._items) > self._entries
                or sum(r.nbytes for _, r in self._items.values()) > self._max_bytes
            ):
                self._items.popitem(last=False)


class PropertyEngine:
    """Answers report queries for one property."""

    def __init__(
        self,
        data: PropertyData,
        *,
        cache_seconds: float = 300.0,
        cache_entries: int = 16,
        cache_bytes: int = 512 * 2**20,
        other_row_limit: int = DEFAULT_ROWS_PER_DAY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data = data
        self._other_row_limit = other_row_limit
        self._connection = duckdb.connect(":memory:")
        started = monotonic()
        self._connection.register("source_users", data.users)
        self._connection.register("source_activity", data.activity)
        self._connection.execute(_LOAD_FACTS)
        self._connection.unregister("source_users")
        self._connection.unregister("source_activity")
        fact_count = self._connection.execute("select count(*) from facts").fetchone()[0]
        orphans = data.activity.num_rows + data.users.num_rows - fact_count
        if orphans:
            logger.warning(
                "property %s: %d activity rows name no known user and are left out",
                data.property_id,
                orphans,
            )
        logger.info(
            "property %s loaded: %d users, %d facts in %.2f s",
            data.property_id,
            data.users.num_rows,
            fact_count,
            monotonic() - started,
        )
        self._cache = _ResultCache(
            seconds=cache_seconds, entries=cache_entries, max_bytes=cache_bytes, clock=monotonic
        )
        self._monotonic = monotonic

    def close(self) -> None:
        self._connection.close()

    def report(self, query: ReportQuery) -> Report:
        """The full sorted result of ``query``, from the cache when a page asked for it lately."""
        cached = self._cache.get(query)
        if cached is not None:
            return cached
        started = self._monotonic()
        plan = ReportSql(query)
        cursor = self._connection.cursor()
        try:
            # Metric texts are written per block as pages reach them (see Report), so the first
            # page of a huge report does not wait for every row's texts.
            sql, parameters = plan.rows(as_text=False)
            table = cursor.sql(sql, params=parameters).to_arrow_table()
            aggregates = {
                name: [
                    _split(row, len(plan.dims))
                    for row in cursor.execute(*plan.aggregate(name)).fetchall()
                ]
                for name in query.aggregations
            }
        finally:
            cursor.close()
        if table.num_rows > self._other_row_limit:
            table = metric_texts(table, len(plan.dims))  # the "(other)" row adds up texts
        table, folded = fold_overflow(
            table,
            dimension_count=len(plan.dims),
            decimal_metrics=[METRICS[name].is_decimal for name in query.metrics],
            limit=self._other_row_limit,
        )
        report = Report(table, len(plan.dims), aggregates, data_loss_from_other_row=folded)
        self._cache.put(query, report)
        logger.debug(
            "property %s: %d rows for %s x %s in %.3f s",
            self.data.property_id,
            report.row_count,
            query.dimensions,
            query.metrics,
            self._monotonic() - started,
        )
        return report
