"""Turn a RunReportRequest into a checked, canonical query, rejecting what GA would reject.

Validation happens before any data is touched so a bad request costs nothing, and the
canonical form (real field names, resolved dates) doubles as the result-cache key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from google.analytics.data_v1beta.types import MetricAggregation
from google.protobuf.message import Message

from connectors.emulator.currency import conversion_rate
from connectors.emulator.errors import invalid_argument, unimplemented
from connectors.emulator.fields import resolve_field
from connectors.emulator.filters import FilterNode, parse_filter
from connectors.emulator.freshness import Freshness

MAX_DIMENSIONS = 9
MAX_METRICS = 10
MAX_DATE_RANGES = 4
# GA4 keeps no data before this day and rejects ranges that start earlier.
EARLIEST_DATE = date(2015, 8, 14)
DATE_RANGE_DIMENSION = "dateRange"

_PROPERTY = re.compile(r"^properties/([0-9]+)$")
_DAYS_AGO = re.compile(r"^([0-9]+)daysAgo$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Parts of a request the emulator does not evaluate yet; refusing beats silently ignoring.
_UNSUPPORTED_PARTS = (("cohort_spec", "cohort requests"),)
_UNSUPPORTED_LISTS = (("comparisons", "comparisons"),)
AGGREGATIONS = ("TOTAL", "MINIMUM", "MAXIMUM")


@dataclass(frozen=True)
class DateWindow:
    """One resolved date range, inclusive, with the name its ``dateRange`` value carries."""

    start: date
    end: date
    name: str


@dataclass(frozen=True)
class Ordering:
    """One orderBy on a requested field; ``order_type`` applies to dimensions only."""

    field: str
    is_metric: bool
    descending: bool
    order_type: str = "ALPHANUMERIC"


@dataclass(frozen=True)
class ReportQuery:
    """What a report computes; equal queries give equal results, so it keys the cache."""

    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    date_ranges: tuple[DateWindow, ...]
    keep_empty_rows: bool
    dimension_filter: FilterNode | None = None
    metric_filter: FilterNode | None = None
    order_bys: tuple[Ordering, ...] = ()
    aggregations: tuple[str, ...] = ()
    # Property currency -> requested currency; 1 when no conversion is asked for.
    currency_rate: Decimal = Decimal(1)
    # Set only when a date range reaches days that are not final, so settled reports keep
    # one cache entry whatever the clock says.
    freshness: Freshness | None = None

    @property
    def has_date_range_dimension(self) -> bool:
        """GA adds a ``dateRange`` dimension, last, when a request has several ranges."""
        return len(self.date_ranges) > 1


@dataclass(frozen=True)
class ParsedRequest:
    """A checked request: the query, the names to answer under, and the page wanted."""

    query: ReportQuery
    dimension_headers: tuple[str, ...]
    metric_headers: tuple[str, ...]
    limit: int
    offset: int
    return_property_quota: bool
    currency_code: str = ""


def parse_property(name: str) -> str:
    """The numeric id in ``properties/123``; GA rejects anything else before looking it up."""
    match = _PROPERTY.match(name)
    if match:
        return match.group(1)
    hint = ""
    if name.removeprefix("properties/").upper().startswith("G-"):
        hint = " A 'G-...' value is a measurement id, not a property id."
    raise invalid_argument(
        f"property must look like 'properties/<numeric id>', got {name!r}.{hint}"
    )


def parse_run_report(
    request: Message,
    *,
    today: date,
    default_limit: int,
    max_rows: int,
    property_currency: str = "USD",
    freshness: Freshness | None = None,
) -> ParsedRequest:
    """Check a RunReportRequest protobuf the way GA does and resolve its relative dates.

    ``freshness`` (the clock in the property's time zone) marks the days not final yet.
    """
    parse_property(request.property)
    for field_name, what in _UNSUPPORTED_PARTS:
        if request.HasField(field_name):
            raise unimplemented(f"The emulator does not evaluate {what} ({field_name}) yet.")
    for field_name, what in _UNSUPPORTED_LISTS:
        if len(getattr(request, field_name)):
            raise unimplemented(f"The emulator does not evaluate {what} ({field_name}) yet.")
    currency_code = request.currency_code or property_currency
    currency_rate = conversion_rate(property_currency, currency_code)
    for index, dimension in enumerate(request.dimensions):
        if dimension.HasField("dimension_expression"):
            raise unimplemented(f"dimensions[{index}] uses a dimension expression.")
    for index, metric in enumerate(request.metrics):
        if metric.expression or metric.invisible:
            raise unimplemented(f"metrics[{index}] uses a metric expression.")

    dimension_names = tuple(d.name for d in request.dimensions)
    metric_names = tuple(m.name for m in request.metrics)
    if len(dimension_names) > MAX_DIMENSIONS:
        raise invalid_argument(
            f"A report takes at most {MAX_DIMENSIONS} dimensions; "
            f"this one asks for {len(dimension_names)}."
        )
    if len(metric_names) > MAX_METRICS:
        raise invalid_argument(
            f"A report takes at most {MAX_METRICS} metrics; this one asks for {len(metric_names)}."
        )
    if not dimension_names and not metric_names:
        raise invalid_argument("A report needs at least one dimension or metric.")
    dimensions = _resolve_fields(dimension_names, "dimension")
    metrics = _resolve_fields(metric_names, "metric")
    date_ranges = _resolve_date_ranges(request, today)

    if request.limit < 0:
        raise invalid_argument(f"limit must not be negative, got {request.limit}.")
    if request.offset < 0:
        raise invalid_argument(f"offset must not be negative, got {request.offset}.")
    limit = min(request.limit or default_limit, max_rows)

    headers = dimension_names
    if len(date_ranges) > 1:
        headers = (*headers, DATE_RANGE_DIMENSION)
    if freshness is not None and all(w.end < freshness.first_fresh_day for w in date_ranges):
        freshness = None
    return ParsedRequest(
        query=ReportQuery(
            dimensions=dimensions,
            metrics=metrics,
            date_ranges=date_ranges,
            keep_empty_rows=request.keep_empty_rows,
            dimension_filter=_optional_filter(request, "dimension"),
            metric_filter=_optional_filter(request, "metric"),
            order_bys=_orderings(request, dimensions, metrics),
            aggregations=_aggregations(request),
            currency_rate=currency_rate,
            freshness=freshness,
        ),
        dimension_headers=headers,
        metric_headers=metric_names,
        limit=limit,
        offset=request.offset,
        return_property_quota=request.return_property_quota,
        currency_code=currency_code,
    )


def _resolve_fields(names: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """Canonical names for requested fields, each named once."""
    resolved: list[str] = []
    for name in names:
        canonical = resolve_field(name, kind)
        if canonical in resolved:
            raise invalid_argument(f"The {kind} {name!r} is requested more than once.")
        resolved.append(canonical)
    return tuple(resolved)


def _optional_filter(request: Message, kind: str) -> FilterNode | None:
    field_name = f"{kind}_filter"
    if not request.HasField(field_name):
        return None
    return parse_filter(getattr(request, field_name), kind=kind, where=field_name)


def _orderings(
    request: Message, dimensions: tuple[str, ...], metrics: tuple[str, ...]
) -> tuple[Ordering, ...]:
    """orderBys on fields of the request; GA refuses to order by anything else."""
    orderings = []
    for index, order_by in enumerate(request.order_bys):
        where = f"order_bys[{index}]"
        branch = order_by.WhichOneof("one_order_by")
        if branch == "metric":
            name = order_by.metric.metric_name
            if resolve_field(name, "metric") not in metrics:
                raise invalid_argument(f"{where} orders by {name!r}, a metric not requested.")
            orderings.append(Ordering(resolve_field(name, "metric"), True, order_by.desc))
        elif branch == "dimension":
            name = order_by.dimension.dimension_name
            if resolve_field(name, "dimension") not in dimensions:
                raise invalid_argument(f"{where} orders by {name!r}, a dimension not requested.")
            order_type = type(order_by.dimension).OrderType.Name(order_by.dimension.order_type)
            if order_type == "ORDER_TYPE_UNSPECIFIED":
                order_type = "ALPHANUMERIC"
            orderings.append(
                Ordering(resolve_field(name, "dimension"), False, order_by.desc, order_type)
            )
        elif branch == "pivot":
            raise unimplemented(f"{where}: pivot ordering belongs to pivot reports.")
        else:
            raise invalid_argument(f"{where} names neither a metric nor a dimension.")
    return tuple(orderings)


def _aggregations(request: Message) -> tuple[str, ...]:
    names = []
    for value in request.metric_aggregations:
        name = MetricAggregation(value).name
        if name == "COUNT":
            raise unimplemented("The emulator does not compute the COUNT metric aggregation.")
        if name not in AGGREGATIONS:
            raise invalid_argument(f"metric_aggregations holds {name}, not an aggregation.")
        if name not in names:
            names.append(name)
    return tuple(n for n in AGGREGATIONS if n in names)


def _resolve_date_ranges(request: Message, today: date) -> tuple[DateWindow, ...]:
    ranges = request.date_ranges
    if not ranges:
        raise invalid_argument("A report needs at least one date range.")
    if len(ranges) > MAX_DATE_RANGES:
        raise invalid_argument(
            f"A report takes at most {MAX_DATE_RANGES} date ranges; this one has {len(ranges)}."
        )
    windows = []
    for index, date_range in enumerate(ranges):
        where = f"date_ranges[{index}]"
        start = resolve_date(date_range.start_date, today, f"{where}.start_date")
        end = resolve_date(date_range.end_date, today, f"{where}.end_date")
        if start > end:
            raise invalid_argument(f"{where} starts on {start}, after its end date {end}.")
        if start < EARLIEST_DATE:
            raise invalid_argument(f"{where} starts on {start}, before GA4's {EARLIEST_DATE}.")
        windows.append(DateWindow(start, end, date_range.name or f"date_range_{index}"))
    return tuple(windows)


def resolve_date(text: str, today: date, where: str) -> date:
    """A GA date string: ``YYYY-MM-DD``, ``today``, ``yesterday`` or ``NdaysAgo``."""
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    days_ago = _DAYS_AGO.match(text)
    if days_ago and len(days_ago.group(1)) <= 5:
        return today - timedelta(days=int(days_ago.group(1)))
    if _ISO_DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise invalid_argument(
        f"{where} is {text!r}; expected YYYY-MM-DD, 'today', 'yesterday' or 'NdaysAgo'."
    )
