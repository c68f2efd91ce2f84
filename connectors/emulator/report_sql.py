"""The SQL text of a report: its rows and its metric aggregations, over the ``facts`` table.

Every interpolated piece is fixed text or an expression from the whitelists in ``fields``;
values (dates, filter operands, range names) always travel as parameters.
"""

from __future__ import annotations

from connectors.emulator.fields import DIMENSIONS, METRICS, DimensionSpec, MetricSpec
from connectors.emulator.filters import FilterNode, render
from connectors.emulator.freshness import FIRST_SHARE, PENDING, SETTLE_HOURS, SHARE_GAINED
from connectors.emulator.query import ReportQuery

_AGGREGATE_LABELS = {
    "TOTAL": "RESERVED_TOTAL",
    "MINIMUM": "RESERVED_MIN",
    "MAXIMUM": "RESERVED_MAX",
}
_ORDER_TYPES = {
    "ALPHANUMERIC": "{}",
    "CASE_INSENSITIVE_ALPHANUMERIC": "lower({})",
    "NUMERIC": "try_cast({} as double)",
}

Sql = tuple[str, list[object]]

# Facts columns behind the TYPE_CURRENCY metrics, converted when a currencyCode asks for it.
CURRENCY_COLUMNS = ("purchase_revenue", "total_revenue")
# Facts columns behind the first-user acquisition dimensions.
ACQUISITION_COLUMNS = ("channel_group", "source", "medium", "campaign")


def _filter_fields(node: FilterNode | None) -> list[str]:
    if node is None:
        return []
    if node.condition is not None:
        return [node.condition.field]
    return [field for child in node.children for field in _filter_fields(child)]


def _dimension(field: str) -> str:
    return DIMENSIONS[field].sql


def _text(spec: MetricSpec, alias: str) -> str:
    """GA's value text: integers plain, decimals without exponent or trailing zeros."""
    if spec.is_decimal:
        return f"rtrim(rtrim(({alias})::decimal(38, 6)::varchar, '0'), '.')"
    return f"({alias})::varchar"


def _number(spec: MetricSpec, alias: str) -> str:
    """The value ``_text`` writes, before it becomes text."""
    return f"({alias})::decimal(38, 6)" if spec.is_decimal else alias


class ReportSql:
    """SQL for one query, in pieces its rows and its aggregations share."""

    def __init__(self, query: ReportQuery) -> None:
        self.query = query
        self.metrics = [METRICS[name] for name in query.metrics]
        hidden = [f for f in _filter_fields(query.metric_filter) if f not in query.metrics]
        self.hidden = [METRICS[name] for name in dict.fromkeys(hidden)]
        self.dimension_sql = [DIMENSIONS[name].sql for name in query.dimensions]
        self.dimension_specs: list[DimensionSpec | None] = [DIMENSIONS[n] for n in query.dimensions]
        if query.has_date_range_dimension:
            self.dimension_sql.append("date_range")
            self.dimension_specs.append(None)
        self.dims = [f"d{i}" for i in range(len(self.dimension_sql))]
        self.shown = [f"m{i}" for i in range(len(self.metrics))]
        self.alias = dict(zip(query.metrics, self.shown, strict=True))
        self.alias.update({spec.api_name: f"h{i}" for i, spec in enumerate(self.hidden)})

    def rows(self, *, as_text: bool = True) -> Sql:
        """Every row of the report, in its final order, values as text.

        ``as_text=False`` leaves metrics as numbers (decimals at GA's six places), for a caller
        that writes the texts only for the rows a page reaches.
        """
        ranged, parameters = self._ranged()
        keep, keep_parameters = self._keep()
        columns = [
            *self.dims,
            *(
                _text(m, a) if as_text else _number(m, a)
                for m, a in zip(self.metrics, self.shown, strict=True)
            ),
        ]
        order = ", ".join([*self._orderings(), *self.dims])
        sql = (
            f"{ranged} select {', '.join(columns)} from ({self._grouped()}){keep}"  # noqa: S608
            f"{' order by ' + order if order else ''}"
        )
        return sql, parameters + keep_parameters

    def aggregate(self, name: str) -> Sql:
        """GA's ``totals``, ``minimums`` or ``maximums`` rows, one per date range.

        Totals are taken over the facts, so distinct-user metrics are not summed over rows.
        TODO(metric filter totals): a metric filter narrows the rows but not the totals.
        """
        ranged, parameters = self._ranged()
        label = f"'{_AGGREGATE_LABELS[name]}'"
        by_range = self.query.has_date_range_dimension
        if name == "TOTAL":
            source, range_column = "ranged", "date_range"
            values = [_text(m, f"coalesce({m.aggregate}, 0)") for m in self.metrics]
            keep, keep_parameters = "", []
        else:
            source, range_column = f"({self._grouped()})", self.dims[-1] if by_range else ""
            function = "min" if name == "MINIMUM" else "max"
            values = [
                _text(m, f"coalesce({function}({a}), 0)")
                for m, a in zip(self.metrics, self.shown, strict=True)
            ]
            keep, keep_parameters = self._keep()
        labels = [label] * len(self.query.dimensions) + ([range_column] if by_range else [])
        grouping = f" group by {range_column} order by {range_column}" if by_range else ""
        sql = f"{ranged} select {', '.join([*labels, *values])} from {source}{keep}{grouping}"  # noqa: S608
        return sql, parameters + keep_parameters

    def _ranged(self) -> Sql:
        """The facts of each date range, tagged with its name, dimension filter applied."""
        metrics = [*self.metrics, *self.hidden]
        everything = self.query.keep_empty_rows or not metrics
        new_users = everything or any(m.from_new_users for m in metrics)
        activity = everything or any(m.from_activity for m in metrics)
        # Facts no requested metric reads would only add all-zero rows, which GA leaves out.
        kind = (
            ""
            if new_users and activity
            else (" and new_users = 1" if new_users else " and new_users = 0")
        )
        source, source_parameters = self._source()
        parameters: list[object] = []
        selects = []
        for window in self.query.date_ranges:
            condition = f"date between ? and ?{kind}"
            parameters += [window.name, *source_parameters, window.start, window.end]
            if self.query.dimension_filter is not None:
                condition += f" and {render(self.query.dimension_filter, _dimension, parameters)}"
            selects.append(f"select *, ? as date_range from {source} where {condition}")  # noqa: S608
        return f"with ranged as ({' union all '.join(selects)})", parameters

    def _source(self) -> Sql:
        """The facts as this request sees them: in its currency, recent days not final yet."""
        replaced: list[str] = []
        parameters: list[object] = []
        if self.query.currency_rate != 1:
            for column in CURRENCY_COLUMNS:
                converted = f"{column}::decimal(38, 6) * ?::decimal(18, 9)"
                replaced.append(f"({converted})::decimal(18, 6) as {column}")
                parameters.append(str(self.query.currency_rate))
        kept = ""
        fresh = self.query.freshness
        if fresh is not None:
            for column in ACQUISITION_COLUMNS:
                replaced.append(f"if(first_session_date >= ?, '{PENDING}', {column}) as {column}")
                parameters.append(fresh.first_fresh_day)
            # A fixed share of each fresh day's facts, growing with the hours since it ended.
            aged = f"least(greatest(? + 24 * (?::date - date), 0), {SETTLE_HOURS})"
            kept = (
                f" where date < ? or hash(user_key, date) % 1000"
                f" < {FIRST_SHARE} + {SHARE_GAINED} * {aged} // {SETTLE_HOURS}"
            )
            parameters += [fresh.first_fresh_day, fresh.hour - 24, fresh.today]
        if not replaced:
            return "facts", []
        # Only fixed column names and constants are interpolated; values are parameters.
        return f"(select * replace ({', '.join(replaced)}) from facts{kept})", parameters  # noqa: S608

    def _grouped(self) -> str:
        """One row per dimension combination, metrics as numbers under their aliases.

        A dimension with a key column is grouped by that column and written as text after
        grouping: one strftime per group instead of per fact, and narrower group keys.
        """
        keys = [
            f"k{i}" if spec is not None and spec.key else alias
            for i, (spec, alias) in enumerate(zip(self.dimension_specs, self.dims, strict=True))
        ]
        columns = [
            *(
                f"{spec.key} as {key}"
                if key != alias and spec is not None
                else f"coalesce({sql}, '(not set)') as {alias}"
                for spec, sql, key, alias in zip(
                    self.dimension_specs, self.dimension_sql, keys, self.dims, strict=True
                )
            ),
            *(
                f"coalesce({spec.aggregate}, 0) as {self.alias[spec.api_name]}"
                for spec in (*self.metrics, *self.hidden)
            ),
        ]
        grouping = f" group by {', '.join(keys)}" if keys else ""
        grouped = f"select {', '.join(columns)} from ranged{grouping}"  # noqa: S608
        if keys == self.dims:
            return grouped
        texts = [
            f"coalesce({spec.template.format(key)}, '(not set)') as {alias}"
            if key != alias and spec is not None
            else alias
            for spec, key, alias in zip(self.dimension_specs, keys, self.dims, strict=True)
        ]
        values = [self.alias[spec.api_name] for spec in (*self.metrics, *self.hidden)]
        return f"select {', '.join([*texts, *values])} from ({grouped})"  # noqa: S608

    def _keep(self) -> Sql:
        """Which grouped rows are reported: not all zero (unless asked), and the metric filter."""
        conditions = []
        parameters: list[object] = []
        if self.shown and not self.query.keep_empty_rows:
            conditions.append("(" + " or ".join(f"{a} <> 0" for a in self.shown) + ")")
        if self.query.metric_filter is not None:
            conditions.append(render(self.query.metric_filter, self.alias.__getitem__, parameters))
        return (f" where {' and '.join(conditions)}" if conditions else ""), parameters

    def _orderings(self) -> list[str]:
        terms = []
        for ordering in self.query.order_bys:
            if ordering.is_metric:
                term = self.alias[ordering.field]
            else:
                alias = self.dims[self.query.dimensions.index(ordering.field)]
                term = _ORDER_TYPES[ordering.order_type].format(alias)
            terms.append(f"{term} {'desc' if ordering.descending else 'asc'}")
        return terms
