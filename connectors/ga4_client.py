"""Pull GA4 reports page by page as typed Arrow tables, the way a real property needs it.

Each page is decoded straight from its wire bytes into typed Arrow columns (see `decode.py`),
typed by the metric types GA declares in the response headers; the caller streams pages to disk
so a year of history never sits in Python lists.

Before a quota token is spent, every field is checked against the property's metadata and the
report's shape against CheckCompatibility. A month is requested at once; when GA folds rows
into "(other)" the window is halved down to single days. Pages follow `offset` until GA's
`rowCount`; a short page is asked for again, and a `rowCount` that moves restarts the window.
More than 10 metrics are fetched in groups sharing the dimensions and joined back on them.
Retries, quota and concurrency live in `retry.py` and `quota.py`.
"""

from __future__ import annotations

import difflib
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cached_property, partial

import pyarrow as pa
import pyarrow.compute as pc
import requests
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports.base import (
    DEFAULT_CLIENT_INFO,
)
from google.analytics.data_v1beta.types import (
    CheckCompatibilityRequest,
    Compatibility,
    DateRange,
    Dimension,
    GetMetadataRequest,
    Metric,
    MetricType,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.auth.credentials import Credentials

from connectors.ahead import AnswersAhead
from connectors.auth import identity_of
from connectors.decode import WireResponse
from connectors.errors import (
    EndpointUnreachableError,
    FieldError,
    PermissionDeniedError,
    PropertyIdError,
    QuotaExhaustedError,
    ReportIncompleteError,
)
from connectors.quota import QuotaGuard, QuotaPolicy, request_slot
from connectors.reports import ReportDefinition, column_name
from connectors.retry import Failure, RetryPolicy, call_with_retry, classify, unreachable
from connectors.windows import DateWindow, month_windows

log = logging.getLogger(__name__)

MAX_PAGE_ROWS = 250_000
MAX_DIMENSIONS = 9
MAX_METRICS = 10

# Older names GA still answers to, resolved against the property's metadata before use.
FIELD_ALIASES = {
    "firstUserDefaultChannelGrouping": "firstUserDefaultChannelGroup",
    "sessionDefaultChannelGrouping": "sessionDefaultChannelGroup",
    "firstTouchDate": "firstSessionDate",
}

# Metrics counted only on a user's first-session date: a report keyed by firstSessionDate
# holding only these has each row inside exactly one date window, so windows never overlap.
FIRST_SESSION_METRICS = frozenset({"newUsers"})

# How long to keep dialling a server that never answered: nothing listening on loopback will not
# change within a run, while Google may be behind a network that is briefly down.
EMULATOR_UNREACHABLE_SECONDS = 5.0
GOOGLE_UNREACHABLE_SECONDS = 60.0

_PROPERTY_ID = re.compile(r"^(?:properties/)?(\d{1,20})$")
_MEASUREMENT_ID = re.compile(r"^G-[A-Z0-9]+$", re.IGNORECASE)


def normalize_property_id(value: str | int) -> str:
    """Return the numeric id of `properties/123` or `123`; explain a `G-` measurement id."""
    text = str(value).strip()
    if _MEASUREMENT_ID.match(text):
        raise PropertyIdError(
            f"{text!r} is a measurement id (a web data stream's tag), not a property id. Use "
            "the numeric property id from GA4 Admin > Property settings, e.g. 123456789."
        )
    match = _PROPERTY_ID.match(text)
    if not match:
        raise PropertyIdError(
            f"{text!r} is not a GA4 property id: expected digits such as 123456789 or "
            "properties/123456789 (GA4 Admin > Property settings)."
        )
    return match.group(1)


@dataclass(frozen=True)
class ResponseFlags:
    """GA's data-quality metadata for one response, kept with every load."""

    currency_code: str
    time_zone: str
    data_loss_from_other_row: bool
    subject_to_thresholding: bool
    sampling: tuple[dict[str, int], ...] = ()
    empty_reason: str = ""


@dataclass(frozen=True)
class QuotaStatus:
    """Tokens GA reports as consumed and remaining, when asked with returnPropertyQuota."""

    tokens_per_day_consumed: int
    tokens_per_day_remaining: int
    tokens_per_hour_consumed: int
    tokens_per_hour_remaining: int


@dataclass(frozen=True)
class ReportPage:
    """One runReport page, typed, with the date window and attempt it belongs to.

    A page of a later `attempt` for the same window replaces every earlier page of that
    window: GA's rowCount moved under the paging, so the window was fetched again.
    """

    table: pa.Table
    offset: int
    row_count: int  # GA's total for the whole window, whatever the page size
    flags: ResponseFlags
    quota: QuotaStatus | None
    window: DateWindow | None = None
    attempt: int = 0


@dataclass
class FieldCatalog:
    """The property's metadata: which names exist, and each metric's declared type."""

    dimensions: set[str]
    metrics: dict[str, str]
    deprecated: dict[str, str] = field(default_factory=dict)

    def resolve(self, name: str, *, kind: str) -> str:
        """Map a requested name to the property's current name, or raise with a suggestion."""
        known = self.dimensions if kind == "dimension" else set(self.metrics)
        if name in known:
            return name
        current = self.deprecated.get(name) or FIELD_ALIASES.get(name)
        if current in known:
            log.warning("%s %s is deprecated; requesting %s", kind, name, current)
            return current
        other = self.metrics if kind == "dimension" else self.dimensions
        if name in other:
            raise FieldError(
                f"{name} is a {'metric' if kind == 'dimension' else 'dimension'}, not a {kind}."
            )
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise FieldError(f"{name} is not a {kind} of this GA4 property.{hint}")


class _SplitWindow(Exception):
    """Internal: the window's answer carries an "(other)" row and should be halved."""


@dataclass
class _WindowTally:
    """What one window cost, for the per-window log line."""

    pages: int = 0
    rows: int = 0
    tokens: int = 0
    requests: int = 0


@dataclass(frozen=True)
class FetchedReport:
    """A whole report in memory: the pages' union, and each window's flags."""

    table: pa.Table
    windows: tuple[tuple[DateWindow, ResponseFlags, int], ...]  # window, flags, GA's rowCount

    @property
    def data_loss_from_other_row(self) -> bool:
        return any(flags.data_loss_from_other_row for _, flags, _ in self.windows)


class Ga4Reports:
    """Runs reports for one property through the official client.

    `endpoint` is the emulator's address the client dials (None: Google), named in errors.
    `sleep`, `monotonic`, `now` and `rng` are injectable so tests of backoff, quota waits
    and resets never really wait.
    """

    def __init__(
        self,
        client: BetaAnalyticsDataClient,
        property_id: str,
        *,
        credentials: Credentials | None = None,
        endpoint: str | None = None,
        page_size: int = MAX_PAGE_ROWS,
        timeout: float = 600.0,
        max_metrics: int = MAX_METRICS,
        retry: RetryPolicy | None = None,
        quota: QuotaPolicy | None = None,
        short_page_retries: int = 2,
        window_restarts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < page_size <= MAX_PAGE_ROWS:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_ROWS}")
        if not 0 < max_metrics <= MAX_METRICS:
            raise ValueError(f"max_metrics must be between 1 and {MAX_METRICS}")
        self._client = client
        self._run_report_wire = _wire_run_report(client)
        self.property_id = normalize_property_id(property_id)
        self._identity = identity_of(credentials)
        self._endpoint = endpoint
        self._answered = False  # once the server answered, refusals are retried in full
        self._page_size = page_size
        self._timeout = timeout
        self._max_metrics = max_metrics
        self._retry = retry or RetryPolicy()
        self._short_page_retries = short_page_retries
        self._window_restarts = window_restarts
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.guard = QuotaGuard(self.property_id, policy=quota, now=now, sleep=sleep)
        self._compatible: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        self.report_requests = 0  # runReport calls answered, retries of short pages included
        self._ahead = AnswersAhead(f"property {self.property_id}", clock=monotonic)

    @property
    def resource(self) -> str:
        return f"properties/{self.property_id}"

    @property
    def answered_ahead(self) -> int:
        """runReport answers so far that had been fetched ahead (see `prefetch`)."""
        return self._ahead.taken

    @property
    def tokens_spent(self) -> int:
        """Tokens GA charged this client's requests so far."""
        return self.guard.spent

    @cached_property
    def catalog(self) -> FieldCatalog:
        """Fetched once per client: GetMetadata costs no quota tokens."""
        request = GetMetadataRequest(name=f"{self.resource}/metadata")
        response = self._call(self._client.get_metadata, request, what="GetMetadata")
        pb = type(response).pb(response)
        deprecated = {
            old: item.api_name
            for item in (*pb.dimensions, *pb.metrics)
            for old in item.deprecated_api_names
        }
        return FieldCatalog(
            dimensions={d.api_name for d in pb.dimensions},
            metrics={m.api_name: _type_name(m.type_) for m in pb.metrics},
            deprecated=deprecated,
        )

    def validate(
        self, dimensions: Sequence[str], metrics: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """Resolve every field and check the combination before a quota token is spent.

        More than 10 metrics are fine (they are fetched in groups); more than 9 dimensions
        are not: rows of separate requests could not be matched back faithfully.
        """
        if len(dimensions) > MAX_DIMENSIONS:
            raise FieldError(
                f"A GA4 report takes at most {MAX_DIMENSIONS} dimensions; got "
                f"{len(dimensions)} ({', '.join(dimensions)}). Split it into reports with "
                "fewer dimensions: rows of separate requests cannot be joined back exactly."
            )
        dims = [self.catalog.resolve(d, kind="dimension") for d in dimensions]
        mets = [self.catalog.resolve(m, kind="metric") for m in metrics]
        for group in self._metric_groups(mets):
            self._check_compatibility(dims, group)
        return dims, mets

    def iter_pages(
        self,
        report: ReportDefinition,
        *,
        start: date,
        end: date,
        currency_code: str | None = None,
    ) -> Iterator[ReportPage]:
        """Yield the report's pages for [start, end], a month (or less) per request.

        `currency_code` asks GA to convert revenue, so properties can be compared in one
        reporting currency; unset keeps the property's own currency. A window with an
        "(other)" row is fetched again in halves, down to single days; a single day that
        still has one is yielded flagged.
        """
        dims, mets = self.validate(report.dimensions, report.metrics)
        splittable = can_split_windows(dims, mets)
        pending = list(month_windows(start, end))
        while pending:
            window = pending.pop(0)
            tally = _WindowTally()
            before = (self.tokens_spent, self.report_requests)
            try:
                for page in self._window(report, dims, mets, window, currency_code, splittable):
                    tally.pages += 1
                    tally.rows += page.table.num_rows
                    yield page
            except _SplitWindow:
                pending[:0] = window.halves()
                log.warning(
                    "report %s window %s has an (other) row: fetching %s and %s instead",
                    report.name,
                    window,
                    *window.halves(),
                )
                continue
            tally.tokens = self.tokens_spent - before[0]
            tally.requests = self.report_requests - before[1]
            self._log_window(report, window, tally)

    def fetch(
        self,
        report: ReportDefinition,
        *,
        start: date,
        end: date,
        currency_code: str | None = None,
    ) -> FetchedReport:
        """The whole report in memory, with each window's flags: for small reports and tests."""
        by_window: dict[DateWindow, tuple[int, list[ReportPage]]] = {}
        for page in self.iter_pages(report, start=start, end=end, currency_code=currency_code):
            key = page.window or DateWindow(start, end)
            attempt, pages = by_window.get(key, (page.attempt, []))
            if page.attempt != attempt:
                attempt, pages = page.attempt, []
            by_window[key] = (attempt, [*pages, page])
        tables = [p.table for _, pages in by_window.values() for p in pages]
        windows = tuple(
            (window, pages[-1].flags, pages[-1].row_count)
            for window, (_, pages) in by_window.items()
        )
        return FetchedReport(pa.concat_tables(tables) if tables else pa.table({}), windows)

    def totals(
        self,
        metrics: Sequence[str],
        *,
        start: date,
        end: date,
        currency_code: str | None = None,
    ) -> dict[str, float]:
        """The window's totals, no dimensions: a cheap second opinion on what landed."""
        values: dict[str, float] = {}
        for names, request in self._totals_requests(metrics, start, end, currency_code):
            pb = RunReportResponse.pb().FromString(self._run_report(request).data)
            row = [float(v.value) for v in pb.rows[0].metric_values] if pb.rows else []
            values |= dict(zip(names, row or [0.0] * len(names), strict=True))
        return values

    def _totals_requests(
        self, metrics: Sequence[str], start: date, end: date, currency_code: str | None
    ) -> list[tuple[list[str], RunReportRequest]]:
        _, mets = self.validate([], metrics)
        return [
            (
                names,
                RunReportRequest(
                    property=self.resource,
                    metrics=[Metric(name=m) for m in group],
                    date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
                    currency_code=currency_code or "",
                    return_property_quota=True,
                ),
            )
            for names, group in zip(
                _chunks(list(metrics), self._max_metrics), self._metric_groups(mets), strict=True
            )
        ]

    # Fetching ahead --------------------------------------------------------------------

    def prefetch(
        self,
        report: ReportDefinition,
        *,
        start: date,
        end: date,
        currency_code: str | None = None,
        totals: Sequence[str] = (),
    ) -> bool:
        """Start asking, in the background, for what landing [start, end] will ask first;
        False when the quota guard allows nothing optional now.

        A backfill calls this for its next partition while it writes the current one, so the
        time GA takes to compute a report overlaps local work instead of adding to it. The
        requests are the very ones `iter_pages` (its first page) and `totals` will send, and
        those take the answers up instead of asking again; an answer never taken up (the run
        stopped) is the only extra cost. Nothing is fetched ahead before GA has said what the
        budgets hold, nor once one is near its reserve (`QuotaGuard.allows_optional`).
        """
        if not self.guard.allows_optional():
            return False
        dims, mets = self.validate(report.dimensions, report.metrics)
        wanted: list[tuple[RunReportRequest, ReportDefinition | None]] = (
            [(r, None) for _, r in self._totals_requests(totals, start, end, currency_code)]
            if totals
            else []
        )
        if len(self._metric_groups(mets)) == 1:  # joined metric groups are not worth it
            window = next(iter(month_windows(start, end)))
            wanted.append((self._page_request(dims, mets, window, 0, currency_code), report))
        for request, rows_of in wanted:
            self._ahead.submit(request, partial(self._answer_ahead, rows_of=rows_of))
        return True

    def close(self) -> None:
        """Drop answers fetched ahead and never taken up; stop the background thread."""
        self._ahead.close()

    def _answer_ahead(
        self, request: RunReportRequest, *, rows_of: ReportDefinition | None
    ) -> WireResponse | None:
        """Run in the background: one request, while the quota has room for optional ones.

        A page is decoded here too, so that work also overlaps the caller's (DuckDB and the
        decoder's Arrow and numpy kernels let go of the GIL).
        """
        if not self.guard.allows_optional():
            return None
        with request_slot(self.property_id):
            data = self._call(self._run_report_wire, request, what="RunReport (ahead)")
        response = WireResponse(data)
        if rows_of is not None:
            response.decode(rows_of)
        return response

    # Windows and pages -----------------------------------------------------------------

    def _window(
        self,
        report: ReportDefinition,
        dims: list[str],
        mets: list[str],
        window: DateWindow,
        currency_code: str | None,
        splittable: bool,
    ) -> Iterator[ReportPage]:
        groups = self._metric_groups(mets)
        if len(groups) == 1:
            pages = self._pages(report, dims, mets, window, currency_code)
            first = next(pages)
            self._check_other_row(report, window, first.flags, splittable)
            yield first
            yield from pages
            return
        yield self._joined(report, dims, groups, window, currency_code, splittable)

    def _check_other_row(
        self, report: ReportDefinition, window: DateWindow, flags: ResponseFlags, splittable: bool
    ) -> None:
        if not flags.data_loss_from_other_row:
            return
        if window.days > 1 and splittable:
            raise _SplitWindow
        log.warning(
            "report %s window %s still has an (other) row%s; landing it flagged",
            report.name,
            window,
            "" if splittable else " (its rows would overlap across windows, so it is not split)",
        )

    def _pages(
        self,
        report: ReportDefinition,
        dims: list[str],
        mets: list[str],
        window: DateWindow,
        currency_code: str | None,
    ) -> Iterator[ReportPage]:
        """Every page of one window until rowCount; restarts when rowCount moves."""
        for attempt in range(self._window_restarts + 1):
            offset, total = 0, None
            while True:
                page = self._page(report, dims, mets, window, offset, currency_code, attempt)
                total = page.row_count if total is None else total
                if page.row_count == total:
                    page = self._complete_page(
                        page, report, dims, mets, window, currency_code, total
                    )
                if page.row_count != total:
                    log.warning(
                        "report %s window %s: GA's rowCount went from %d to %d between pages; "
                        "fetching the window again",
                        report.name,
                        window,
                        total,
                        page.row_count,
                    )
                    break
                yield page
                offset += page.table.num_rows
                if offset >= total:
                    return
        raise ReportIncompleteError(
            f"Report {report.name} window {window}: GA's rowCount kept changing between pages "
            f"over {self._window_restarts + 1} attempts; try again later."
        )

    def _complete_page(
        self,
        page: ReportPage,
        report: ReportDefinition,
        dims: list[str],
        mets: list[str],
        window: DateWindow,
        currency_code: str | None,
        total: int,
    ) -> ReportPage:
        """Ask again for a page shorter than due; a short page is never taken as the end."""
        due = min(self._page_size, total - page.offset)
        best = page
        for retry in range(self._short_page_retries):
            if best.table.num_rows >= due:
                return best
            log.warning(
                "report %s window %s: %d rows at offset %d where %d were due; asking again (%d)",
                report.name,
                window,
                best.table.num_rows,
                page.offset,
                due,
                retry + 1,
            )
            again = self._page(report, dims, mets, window, page.offset, currency_code, page.attempt)
            if again.row_count != total:
                return again
            if again.table.num_rows > best.table.num_rows:
                best = again
        if best.table.num_rows == 0 and due > 0:
            raise ReportIncompleteError(
                f"Report {report.name} window {window}: GA said {total} rows but answers none "
                f"at offset {page.offset}; try again later."
            )
        if best.table.num_rows < due:
            # Rows are positional, so the next page starts right after what did arrive.
            log.warning(
                "report %s window %s: GA keeps sending %d rows at offset %d; going on from there",
                report.name,
                window,
                best.table.num_rows,
                page.offset,
            )
        return best

    def _page(
        self,
        report: ReportDefinition,
        dims: list[str],
        mets: list[str],
        window: DateWindow,
        offset: int,
        currency_code: str | None,
        attempt: int,
    ) -> ReportPage:
        request = self._page_request(dims, mets, window, offset, currency_code)
        page = decode_page(self._run_report(request), report, offset=offset)
        log.debug(
            "report %s window %s page at offset %d: %d rows of %d",
            report.name,
            window,
            offset,
            page.table.num_rows,
            page.row_count,
        )
        return replace(page, window=window, attempt=attempt)

    def _page_request(
        self,
        dims: list[str],
        mets: list[str],
        window: DateWindow,
        offset: int,
        currency_code: str | None,
    ) -> RunReportRequest:
        return RunReportRequest(
            property=self.resource,
            dimensions=[Dimension(name=d) for d in dims],
            metrics=[Metric(name=m) for m in mets],
            date_ranges=[
                DateRange(start_date=window.start.isoformat(), end_date=window.end.isoformat())
            ],
            limit=self._page_size,
            offset=offset,
            currency_code=currency_code or "",
            return_property_quota=True,
        )

    def _joined(
        self,
        report: ReportDefinition,
        dims: list[str],
        groups: list[list[str]],
        window: DateWindow,
        currency_code: str | None,
        splittable: bool,
    ) -> ReportPage:
        """Fetch each metric group for the window and outer-join them on the dimensions.

        A row one group lacks had only zeros there (GA leaves such rows out), hence 0.
        TODO(memory): joined windows sit in memory whole; fine for a month of a wide report.
        """
        names = _chunks(list(report.metrics), self._max_metrics)
        keys = [column_name(d) for d in report.dimensions]
        joined: pa.Table | None = None
        flags: list[ResponseFlags] = []
        last: ReportPage | None = None
        for group, group_names in zip(groups, names, strict=True):
            part = ReportDefinition(report.name, report.dimensions, tuple(group_names))
            pages: dict[int, list[ReportPage]] = {}
            for page in self._pages(part, dims, group, window, currency_code):
                if not pages:
                    self._check_other_row(report, window, page.flags, splittable)
                pages.setdefault(page.attempt, []).append(page)
            final = pages[max(pages)]
            table = pa.concat_tables(p.table for p in final)
            flags.append(final[-1].flags)
            last = final[-1]
            joined = table if joined is None else _outer_join(joined, table, keys)
        assert joined is not None and last is not None
        ordered = joined.select([*keys, *(column_name(m) for m in report.metrics)])
        merged = replace(
            flags[0],
            data_loss_from_other_row=any(f.data_loss_from_other_row for f in flags),
            subject_to_thresholding=any(f.subject_to_thresholding for f in flags),
            sampling=tuple(s for f in flags for s in f.sampling),
        )
        return ReportPage(
            table=ordered,
            offset=0,
            row_count=ordered.num_rows,
            flags=merged,
            quota=last.quota,
            window=window,
        )

    def _metric_groups(self, metrics: list[str]) -> list[list[str]]:
        return _chunks(metrics, self._max_metrics) or [[]]

    def _log_window(
        self, report: ReportDefinition, window: DateWindow, tally: _WindowTally
    ) -> None:
        left = self.guard.remaining
        log.info(
            "property %s report %s window %s: %d pages, %d rows, %d requests, %d tokens; "
            "%s tokens left today, %s this hour",
            self.property_id,
            report.name,
            window,
            tally.pages,
            tally.rows,
            tally.requests,
            tally.tokens,
            left.get("daily", "?"),
            left.get("hourly", "?"),
        )

    # Calls -----------------------------------------------------------------------------

    def _check_compatibility(self, dims: list[str], mets: list[str]) -> None:
        """Ask GA once per report shape whether the fields go together; name those that don't."""
        shape = (tuple(dims), tuple(mets))
        if shape in self._compatible:
            return
        request = CheckCompatibilityRequest(
            property=self.resource,
            dimensions=[Dimension(name=d) for d in dims],
            metrics=[Metric(name=m) for m in mets],
        )
        try:
            response = self._call(
                self._client.check_compatibility, request, what="CheckCompatibility"
            )
        except gexc.MethodNotImplemented:
            log.warning("CheckCompatibility is not answered here; fields checked by name only")
            self._compatible.add(shape)
            return
        pb = type(response).pb(response)
        incompatible = Compatibility.INCOMPATIBLE
        bad = [
            item.dimension_metadata.api_name
            for item in pb.dimension_compatibilities
            if item.compatibility == incompatible and item.dimension_metadata.api_name in dims
        ] + [
            item.metric_metadata.api_name
            for item in pb.metric_compatibilities
            if item.compatibility == incompatible and item.metric_metadata.api_name in mets
        ]
        if bad:
            raise FieldError(
                f"GA4 property {self.property_id} cannot report {', '.join(bad)} together "
                f"with the other fields of this request ({', '.join([*dims, *mets])}). "
                "Drop them or request them in a separate report."
            )
        self._compatible.add(shape)

    def _run_report(self, request: RunReportRequest) -> WireResponse:
        """One runReport: quota checked first, a concurrency slot held, retries bounded."""
        response = self._ahead.take(request)
        while response is None:
            self.guard.before_request()
            try:
                with request_slot(self.property_id):
                    data = self._call(self._run_report_wire, request, what="RunReport")
            except QuotaExhaustedError as error:
                if error.budget == "hourly" and self.guard.wait_for_hour():
                    continue
                raise
            response = WireResponse(data)
        self.report_requests += 1
        pb = response.header
        if pb.HasField("property_quota"):
            q = pb.property_quota
            self.guard.record(
                cost=q.tokens_per_day.consumed,
                daily_left=q.tokens_per_day.remaining,
                hourly_left=min(
                    q.tokens_per_hour.remaining, q.tokens_per_project_per_hour.remaining
                ),
            )
        return response

    def _call(self, method, request, *, what: str):
        """Call with explicit timeout and our own retries; translate GA's refusals."""
        if self._answered:
            give_up: float | None = None
        elif self._endpoint:
            give_up = EMULATOR_UNREACHABLE_SECONDS
        else:
            give_up = GOOGLE_UNREACHABLE_SECONDS
        try:
            response = call_with_retry(
                lambda: method(request=request, retry=None, timeout=self._timeout),
                policy=self._retry,
                what=f"property {self.property_id} {what}",
                sleep=self._sleep,
                clock=self._monotonic,
                rng=self._rng,
                unreachable_seconds=give_up,
            )
        except (gexc.ServiceUnavailable, requests.ConnectionError) as exc:
            raise self._unreachable(exc) from None
        except gexc.PermissionDenied:
            if self._endpoint:
                raise PermissionDeniedError(
                    f"The GA4 emulator at {self._endpoint} does not serve property "
                    f"{self.property_id}: check the property id against the ones it lists when "
                    "it starts."
                ) from None
            raise PermissionDeniedError(
                f"No access to GA4 property {self.property_id} for {self._identity}. In GA4 "
                "Admin > Property access management, add it with at least the Viewer role, "
                "and check the property id."
            ) from None
        except gexc.InvalidArgument as exc:
            raise FieldError(f"GA4 refused the request: {exc.message}") from None
        except gexc.TooManyRequests as exc:
            failure = classify(exc)
            if failure in (Failure.DAILY_TOKENS, Failure.HOURLY_TOKENS):
                budget = "daily" if failure is Failure.DAILY_TOKENS else "hourly"
                raise self.guard.exhausted(budget, reason=f"GA said: {exc.message}") from None
            raise QuotaExhaustedError(
                f"GA kept refusing property {self.property_id}'s {what} through every retry "
                f"({_printable(str(exc.message))}). Too many requests were in flight for the "
                "property: run fewer at once (a lower --parallel, or fewer runs in the UI); "
                "the same command resumes.",
                budget="concurrent",
            ) from None
        else:
            self._answered = True
            return response

    def _unreachable(self, error: Exception) -> EndpointUnreachableError:
        """The error for a server that could not be reached, or stayed unavailable, to the end."""
        transport = getattr(getattr(self._client, "transport", None), "kind", "grpc")
        reason = unreachable(error)
        if reason is None:
            said = _printable(str(getattr(error, "message", None) or type(error).__name__))
            where = self._endpoint or "analyticsdata.googleapis.com"
            return EndpointUnreachableError(
                f"The GA4 Data API at {where} answers, but stayed unavailable through every "
                f"retry ({transport}; {said}). Try again later; the same command resumes."
            )
        if self._endpoint:
            return EndpointUnreachableError(
                f"no GA4 Data API answers at {self._endpoint} ({transport}; {reason}): check "
                "the address and port, and that GA_LTV_TRANSPORT matches the server "
                "(grpc or rest)"
            )
        return EndpointUnreachableError(
            f"The GA4 Data API (analyticsdata.googleapis.com, {transport}) cannot be reached "
            f"({reason}): check the network connection, proxy and firewall, or try again later"
        )


# The official client's own path for runReport, called on its channel below.
RUN_REPORT_METHOD = "/google.analytics.data.v1beta.BetaAnalyticsData/RunReport"


def _wire_run_report(client: BetaAnalyticsDataClient) -> Callable[..., bytes]:
    """runReport answering the response's wire bytes.

    Over gRPC the call goes out on the official client's channel, with its credentials, its
    client headers and its error mapping; only the parse into Python objects is left out, since
    `WireResponse` reads the rows straight from the bytes. Other transports (REST) and wrapped
    clients answer parsed, and are serialized back.
    """
    transport = getattr(client, "transport", None)
    if isinstance(client, BetaAnalyticsDataClient) and getattr(transport, "kind", "") == "grpc":
        stub = transport.grpc_channel.unary_unary(  # type: ignore[union-attr]
            RUN_REPORT_METHOD,
            request_serializer=RunReportRequest.serialize,
            response_deserializer=None,  # keep the bytes
        )
        wrapped = gapic_v1.method.wrap_method(stub, client_info=DEFAULT_CLIENT_INFO)

        def over_grpc(*, request: RunReportRequest, retry=None, timeout=None) -> bytes:
            routing = gapic_v1.routing_header.to_grpc_metadata((("property", request.property),))
            return wrapped(request, retry=retry, timeout=timeout, metadata=(routing,))

        return over_grpc

    def parsed(*, request: RunReportRequest, retry=None, timeout=None) -> bytes:
        response = client.run_report(request=request, retry=retry, timeout=timeout)
        return RunReportResponse.serialize(response)

    return parsed


def can_split_windows(dimensions: Sequence[str], metrics: Sequence[str]) -> bool:
    """Whether shorter date windows give disjoint rows whose union is the whole report.

    True with a `date` dimension, or keyed by `firstSessionDate` with first-session metrics
    only; otherwise one row could appear in two windows and could not be added back up.
    """
    if "date" in dimensions:
        return True
    return "firstSessionDate" in dimensions and set(metrics) <= FIRST_SESSION_METRICS


def _printable(text: str, limit: int = 200) -> str:
    """Text fit for a one-line message: no control characters or binary bytes, bounded."""
    clean = "".join(c if c.isprintable() and c.isascii() else " " for c in text)
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _outer_join(left: pa.Table, right: pa.Table, keys: list[str]) -> pa.Table:
    """Full outer join on the dimension columns; metrics a side lacks become 0."""
    joined = left.join(right, keys=keys, join_type="full outer", coalesce_keys=True)
    columns = []
    for name in joined.column_names:
        column = joined.column(name)
        if name not in keys and column.null_count:
            column = pc.fill_null(column, pa.scalar(0, type=column.type))
        columns.append(column)
    return pa.table(columns, names=joined.column_names)


def _type_name(value: int) -> str:
    return MetricType(value).name


def decode_page(response: WireResponse, report: ReportDefinition, *, offset: int) -> ReportPage:
    """Turn one response into an Arrow table named and typed for the raw tables."""
    table = response.decode(report)
    pb = response.header
    meta = pb.metadata
    flags = ResponseFlags(
        currency_code=meta.currency_code,
        time_zone=meta.time_zone,
        data_loss_from_other_row=meta.data_loss_from_other_row,
        subject_to_thresholding=meta.subject_to_thresholding,
        sampling=tuple(
            {
                "samples_read_count": s.samples_read_count,
                "sampling_space_size": s.sampling_space_size,
            }
            for s in meta.sampling_metadatas
        ),
        empty_reason=meta.empty_reason,
    )
    quota = None
    if pb.HasField("property_quota"):
        q = pb.property_quota
        quota = QuotaStatus(
            tokens_per_day_consumed=q.tokens_per_day.consumed,
            tokens_per_day_remaining=q.tokens_per_day.remaining,
            tokens_per_hour_consumed=q.tokens_per_hour.consumed,
            tokens_per_hour_remaining=q.tokens_per_hour.remaining,
        )
    return ReportPage(
        table=table,
        offset=offset,
        row_count=pb.row_count,
        flags=flags,
        quota=quota,
    )
