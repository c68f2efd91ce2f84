"""The emulator's contract, through the official client over gRPC and over REST alike.

Every behaviour is asked of both transports (the ``transport`` fixture), so a difference in the
REST gateway, the JSON mapping or the error mapping shows up as one failing parameter. Servers
run the demo properties (three time zones and currencies) with the clock pinned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pyarrow.compute as pc
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    CheckCompatibilityRequest,
    CohortSpec,
    Compatibility,
    Dimension,
    MetricAggregation,
    MetricType,
    RunPivotReportRequest,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core import exceptions

from connectors.auth import build_client
from connectors.emulator.currency import UNITS_PER_USD
from connectors.emulator.dataset import PropertyData
from connectors.emulator.errors import EmulatorError
from connectors.emulator.freshness import PENDING, Freshness
from connectors.emulator.generated import demo_properties, generate_property
from connectors.emulator.rest import error_body
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from tests.conftest import REPO_ROOT
from tests.emulator.conftest import END, NOW
from tests.emulator.support import fetch_all, request, rows

MONTH = ("2025-03-01", "2025-03-31")
USD, EUR, JPY = "100001", "100002", "100003"
ACQUISITION_FIELDS = [
    "firstUserSource",
    "firstUserMedium",
    "firstUserCampaignName",
    "firstUserDefaultChannelGroup",
    "firstUserSourceMedium",
]


class _Clock:
    """A clock tests can move; the server reads it on every request."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def demo() -> list[PropertyData]:
    return demo_properties(end=END, large_users=4_000)


@pytest.fixture(scope="module")
def server(demo: list[PropertyData]) -> Iterator[EmulatorServer]:
    with EmulatorServer(demo, rest_port=0, options=EmulatorOptions(clock=lambda: NOW)) as s:
        yield s


def _client(server: EmulatorServer, transport: str) -> BetaAnalyticsDataClient:
    address = server.rest_address if transport == "rest" else server.address
    client, _ = build_client(endpoint=address, transport=transport)  # type: ignore[arg-type]
    return client


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(server: EmulatorServer, transport: str) -> BetaAnalyticsDataClient:
    return _client(server, transport)


def _property(demo: list[PropertyData], property_id: str) -> PropertyData:
    return next(p for p in demo if p.property_id == property_id)


# --- shapes, types, paging ---------------------------------------------------------------


def test_report_shape_and_types(client: BetaAnalyticsDataClient) -> None:
    """Headers echo the request, metric types are GA's, every value is text of that type."""
    response = client.run_report(
        request(
            ["date", "firstUserDefaultChannelGroup"],
            ["newUsers", "totalRevenue", "userEngagementDuration"],
            MONTH,
            metric_aggregations=[MetricAggregation.TOTAL],
        )
    )
    assert [h.name for h in response.dimension_headers] == ["date", "firstUserDefaultChannelGroup"]
    assert [(h.name, h.type_) for h in response.metric_headers] == [
        ("newUsers", MetricType.TYPE_INTEGER),
        ("totalRevenue", MetricType.TYPE_CURRENCY),
        ("userEngagementDuration", MetricType.TYPE_SECONDS),
    ]
    got = rows(response)
    assert response.row_count == len(got) > 31
    for dims, metrics in got:
        assert len(dims) == 2 and len(metrics) == 3
        assert dims[0].startswith("202503") and len(dims[0]) == 8
        int(metrics[0])
        Decimal(metrics[1]), Decimal(metrics[2])
    assert response.totals[0].dimension_values[0].value == "RESERVED_TOTAL"
    assert int(response.totals[0].metric_values[0].value) == sum(int(m[0]) for _, m in got)
    assert response.kind == "analyticsData#runReport"
    assert response.metadata.time_zone == "America/New_York"
    assert response.metadata.currency_code == "USD"
    assert not response.metadata.data_loss_from_other_row


def test_paging_returns_every_row_once(client: BetaAnalyticsDataClient) -> None:
    report = request(["date", "firstUserSource", "firstUserCampaignName"], ["sessions"], MONTH)
    whole = rows(client.run_report(RunReportRequest(report, limit=100_000)))
    paged, counts = fetch_all(client, report, page_size=333)
    assert paged == whole
    assert set(counts) == {len(whole)} and len(counts) == -(-len(whole) // 333)


def test_both_transports_give_identical_messages(server: EmulatorServer) -> None:
    """REST is only another envelope: the parsed messages must be equal field for field."""
    grpc_client, rest_client = _client(server, "grpc"), _client(server, "rest")
    report = request(
        ["firstUserSourceMedium"],
        ["totalUsers", "purchaseRevenue"],
        MONTH,
        ("2025-04-01", "2025-04-30"),
        metric_aggregations=[MetricAggregation.TOTAL, MetricAggregation.MAXIMUM],
        currency_code="GBP",
    )
    assert grpc_client.run_report(report) == rest_client.run_report(report)
    batch = BatchRunReportsRequest(
        property=f"properties/{USD}", requests=[report, request(["date"], ["newUsers"], MONTH)]
    )
    assert grpc_client.batch_run_reports(batch) == rest_client.batch_run_reports(batch)
    name = f"properties/{JPY}/metadata"
    assert grpc_client.get_metadata(name=name) == rest_client.get_metadata(name=name)
    check = CheckCompatibilityRequest(
        property=f"properties/{USD}",
        dimensions=[Dimension(name="date")],
        compatibility_filter=Compatibility.COMPATIBLE,
    )
    assert grpc_client.check_compatibility(check) == rest_client.check_compatibility(check)


# --- errors ------------------------------------------------------------------------------

ERRORS = [
    # (request, HTTP status, text the message must hold: the field at fault)
    (request(["dateOfBirth"], ["newUsers"], MONTH), 400, "dateOfBirth"),
    (request(["date"], ["sessions"], ("2025-01-01", "soon")), 400, "date_ranges[0].end_date"),
    (request(["date"], ["sessions"], MONTH, limit=-1), 400, "limit"),
    (request(["date"], ["sessions"], MONTH, currency_code="XYZ"), 400, "currency_code"),
    (request(["date"], ["sessions"], MONTH, property_id="G-1234"), 400, "measurement id"),
    (request(["date"], ["sessions"], MONTH, property_id="999"), 403, "999"),
    (request(["country"], ["sessions"], MONTH), 501, "country"),
    (request(["date"], ["sessions"], MONTH, cohort_spec=CohortSpec()), 501, "cohort_spec"),
]


@pytest.mark.parametrize(("report", "status", "named"), ERRORS)
def test_rejections_carry_status_and_field(
    client: BetaAnalyticsDataClient, report: RunReportRequest, status: int, named: str
) -> None:
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        client.run_report(report)
    assert caught.value.code == status
    assert named in caught.value.message


def test_batch_errors_name_the_request(client: BetaAnalyticsDataClient) -> None:
    batch = BatchRunReportsRequest(
        property=f"properties/{USD}",
        requests=[request(["date"], ["sessions"], MONTH), request(["nope"], ["sessions"], MONTH)],
    )
    with pytest.raises(exceptions.BadRequest, match=r"requests\[1\].*nope"):
        client.batch_run_reports(batch)


def test_methods_not_emulated_are_unimplemented(client: BetaAnalyticsDataClient) -> None:
    with pytest.raises(exceptions.MethodNotImplemented):
        client.run_pivot_report(RunPivotReportRequest(property=f"properties/{USD}"))


def test_unknown_metadata_property_is_forbidden(client: BetaAnalyticsDataClient) -> None:
    # PermissionDenied over gRPC; REST's 403 is its parent class, Forbidden.
    with pytest.raises(exceptions.Forbidden, match="123"):
        client.get_metadata(name="properties/123/metadata")


def _http(server: EmulatorServer, method: str, path: str, body: bytes | None = None) -> tuple:
    url = f"http://{server.rest_address}{path}"
    call = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"),
    [
        ("GET", "/v1beta/properties/100001:runReport", None, 404, "GET"),
        ("POST", "/v2/elsewhere", b"{}", 404, "/v2/elsewhere"),
        ("POST", f"/v1beta/properties/{USD}:runReport", b"{not json", 400, "JSON"),
        ("POST", f"/v1beta/properties/{USD}:runReport", b'{"dateRanges": 3}', 400, "dateRanges"),
        ("POST", f"/v1beta/properties/{USD}:runReport", b"{}", 400, "dimension or metric"),
    ],
)
def test_rest_errors_are_google_json_errors(
    server: EmulatorServer, method: str, path: str, body: bytes | None, status: int, named: str
) -> None:
    code, payload = _http(server, method, path, body)
    assert code == status
    assert set(payload) == {"error"}
    assert payload["error"]["code"] == status
    assert named in payload["error"]["message"]
    assert payload["error"]["status"] in ("NOT_FOUND", "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)
def test_grpc_codes_map_to_http_statuses(code: grpc.StatusCode, status: int) -> None:
    """Quota and fault errors reach REST clients with the status their retry logic expects."""
    got, body = error_body(EmulatorError(code, "quota 'tokensPerDay' exhausted"))
    assert got == status
    assert json.loads(body) == {
        "error": {"code": status, "message": "quota 'tokensPerDay' exhausted", "status": code.name}
    }


def test_rest_answers_enums_as_the_client_asks(server: EmulatorServer) -> None:
    body = json.dumps(
        {
            "metrics": [{"name": "sessions"}],
            "dateRanges": [{"startDate": MONTH[0], "endDate": MONTH[1]}],
        }
    ).encode()
    path = f"/v1beta/properties/{USD}:runReport"
    _, by_name = _http(server, "POST", path, body)
    _, by_number = _http(server, "POST", path + "?%24alt=json%3Benum-encoding%3Dint", body)
    assert by_name["metricHeaders"] == [{"name": "sessions", "type": "TYPE_INTEGER"}]
    assert by_number["metricHeaders"] == [{"name": "sessions", "type": MetricType.TYPE_INTEGER}]
    assert by_name["rowCount"] == 1 and by_name["metadata"]["timeZone"] == "America/New_York"


# --- currency ----------------------------------------------------------------------------


def _by_date(response: RunReportResponse) -> dict[str, tuple[str, ...]]:
    return {dims[0]: metrics for dims, metrics in rows(response)}


@pytest.mark.parametrize(("property_id", "target"), [(USD, "EUR"), (EUR, "JPY"), (JPY, "USD")])
def test_currency_code_converts_revenue_at_the_fixed_rate(
    client: BetaAnalyticsDataClient, property_id: str, target: str
) -> None:
    metrics = ["totalRevenue", "purchaseRevenue", "sessions"]
    own = client.run_report(request(["date"], metrics, MONTH, property_id=property_id))
    converted = client.run_report(
        request(["date"], metrics, MONTH, property_id=property_id, currency_code=target)
    )
    assert converted.metadata.currency_code == target
    source = own.metadata.currency_code
    assert source != target
    rate = UNITS_PER_USD[target] / UNITS_PER_USD[source]
    before, after = _by_date(own), _by_date(converted)
    assert before.keys() == after.keys() and len(before) == 31
    assert any(Decimal(v[0]) != 0 for v in before.values())
    for day, values in before.items():
        assert after[day][2] == values[2]  # sessions are not money
        for index in (0, 1):
            # Each fact is converted and rounded to 6 places before summing.
            assert abs(Decimal(after[day][index]) - Decimal(values[index]) * rate) < Decimal("0.01")


def test_requesting_the_property_currency_changes_nothing(client: BetaAnalyticsDataClient) -> None:
    report = request(["date"], ["totalRevenue"], MONTH, property_id=EUR)
    assert rows(client.run_report(report)) == rows(
        client.run_report(RunReportRequest(report, currency_code="EUR"))
    )


# --- response metadata -------------------------------------------------------------------


def test_each_property_answers_in_its_time_zone_and_currency(
    client: BetaAnalyticsDataClient,
) -> None:
    expected = {
        USD: ("America/New_York", "USD"),
        EUR: ("Europe/Berlin", "EUR"),
        JPY: ("Asia/Tokyo", "JPY"),
    }
    for property_id, (zone, currency) in expected.items():
        meta = client.run_report(
            request(["date"], ["newUsers"], MONTH, property_id=property_id)
        ).metadata
        assert (meta.time_zone, meta.currency_code) == (zone, currency)


def test_empty_report_says_why(client: BetaAnalyticsDataClient) -> None:
    empty = client.run_report(request(["date"], ["sessions"], ("2020-01-01", "2020-01-31")))
    assert empty.row_count == 0 and not empty.rows
    assert empty.metadata.empty_reason
    full = client.run_report(request(["date"], ["sessions"], MONTH))
    assert full.row_count and not full.metadata.empty_reason


@pytest.mark.parametrize(
    ("property_id", "dimensions", "metric", "flagged"),
    [
        (EUR, ["date", "firstUserSource"], "totalUsers", True),  # Google signals, small counts
        (EUR, ["date", "firstUserSource"], "activeUsers", True),
        (EUR, [], "totalUsers", False),  # one big total: nothing to withhold
        (EUR, ["date", "firstUserSource"], "sessions", False),  # not a user count
        (USD, ["date", "firstUserSource"], "totalUsers", False),  # signals off
    ],
)
def test_thresholding_is_flagged_for_small_user_counts(
    client: BetaAnalyticsDataClient,
    property_id: str,
    dimensions: list[str],
    metric: str,
    flagged: bool,
) -> None:
    response = client.run_report(request(dimensions, [metric], MONTH, property_id=property_id))
    assert response.metadata.subject_to_thresholding is flagged


def test_keep_empty_rows_returns_rows_whose_metrics_are_all_zero(
    client: BetaAnalyticsDataClient,
) -> None:
    report = request(["date", "firstUserSource"], ["transactions"], MONTH, limit=100_000)
    dropped = rows(client.run_report(report))
    kept = rows(client.run_report(RunReportRequest(report, keep_empty_rows=True)))
    assert dropped and all(m != ("0",) for _, m in dropped)
    zeros = [r for r in kept if r[1] == ("0",)]
    assert zeros
    assert [r for r in kept if r[1] != ("0",)] == dropped


# --- data that is not final --------------------------------------------------------------

FRESH = "300003"
# Ten in the morning UTC on the day after END: END and the day before are still filling in.
T = datetime(END.year, END.month, END.day, 10, tzinfo=UTC) + timedelta(days=1)
WINDOW = ((END - timedelta(days=3)).isoformat(), END.isoformat())


@pytest.fixture(scope="module")
def clock() -> _Clock:
    return _Clock(T)


@pytest.fixture(scope="module")
def fresh_property() -> PropertyData:
    return generate_property(
        property_id=FRESH, seed=5, months=2, users=20_000, end=END, time_zone="UTC"
    )


@pytest.fixture(scope="module")
def fresh_server(fresh_property: PropertyData, clock: _Clock) -> Iterator[EmulatorServer]:
    with EmulatorServer([fresh_property], rest_port=0, options=EmulatorOptions(clock=clock)) as s:
        yield s


def _sessions_truth(data: PropertyData) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for day, sessions in zip(
        data.activity["date"].to_pylist(), data.activity["sessions"].to_pylist(), strict=True
    ):
        totals[day.strftime("%Y%m%d")] += sessions
    return totals


def test_recent_days_fill_in_then_settle(
    fresh_server: EmulatorServer,
    fresh_property: PropertyData,
    clock: _Clock,
    transport: str,
) -> None:
    client = _client(fresh_server, transport)
    report = request(
        ["date", "firstUserSource"], ["sessions", "newUsers"], WINDOW, property_id=FRESH
    )

    def by_day(at: datetime) -> tuple[dict[str, int], set[tuple[str, str]]]:
        """Sessions per day, and the (day, source) pairs that acquired new users."""
        clock.now = at
        sessions: dict[str, int] = defaultdict(int)
        acquiring = set()
        for dims, metrics in rows(client.run_report(report)):
            sessions[dims[0]] += int(metrics[0])
            if int(metrics[1]):
                acquiring.add(dims)
        return sessions, acquiring

    try:
        early, early_keys = by_day(T)
        later, _ = by_day(T + timedelta(hours=12))
        settled, settled_keys = by_day(T + timedelta(days=3))
        again, _ = by_day(T + timedelta(days=4))
    finally:
        clock.now = T
    truth = _sessions_truth(fresh_property)
    final_days = [(END - timedelta(days=n)).strftime("%Y%m%d") for n in (3, 2)]
    fresh_days = [(END - timedelta(days=n)).strftime("%Y%m%d") for n in (1, 0)]
    for day in final_days:
        assert early[day] == later[day] == settled[day] == truth[day]
    for day in fresh_days:
        assert early[day] <= later[day] < truth[day]
    assert sum(early[d] for d in fresh_days) < sum(later[d] for d in fresh_days)
    assert settled == again == {d: truth[d] for d in final_days + fresh_days}
    # Users who arrived on a fresh day are not attributed yet (older users active on those days
    # keep their sources); once settled they are.
    assert {source for day, source in early_keys if day in fresh_days} == {PENDING}
    assert {source for day, source in settled_keys if day in fresh_days} > {"google"}
    assert PENDING not in {source for day, source in early_keys if day in final_days}
    assert PENDING not in {source for _, source in settled_keys}


def test_every_acquisition_field_reads_data_not_available_while_fresh(
    fresh_server: EmulatorServer, clock: _Clock, transport: str
) -> None:
    client = _client(fresh_server, transport)
    report = request(ACQUISITION_FIELDS, ["newUsers"], (END.isoformat(),) * 2, property_id=FRESH)
    clock.now = T
    pending = rows(client.run_report(report))
    clock.now = T + timedelta(days=3)
    try:
        settled = rows(client.run_report(report))
    finally:
        clock.now = T
    assert [dims for dims, _ in pending] == [(PENDING,) * len(ACQUISITION_FIELDS)]
    assert len(settled) > 5 and all(PENDING not in dims for dims, _ in settled)
    assert sum(int(m[0]) for _, m in pending) < sum(int(m[0]) for _, m in settled)


# --- several properties, and the command line ---------------------------------------------


def test_demo_properties_differ_in_zone_currency_and_size(demo: list[PropertyData]) -> None:
    assert [p.property_id for p in demo] == [USD, EUR, JPY]
    assert len({p.time_zone for p in demo}) == 3
    assert [p.currency_code for p in demo] == ["USD", "EUR", "JPY"]
    yen = _property(demo, JPY).activity["total_revenue"]
    assert pc.all(pc.equal(yen, pc.round(yen))).as_py()  # no fractional yen
    assert pc.max(yen).as_py() > 1_000
    assert _property(demo, EUR).google_signals and not _property(demo, USD).google_signals


def test_serve_command_answers_grpc_and_rest() -> None:
    """``ga-ltv emulator serve`` with both ports, asked over REST, then stopped with Ctrl-C."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "pipelines.cli", "emulator", "serve"]
    command += ["--port", "0", "--rest-port", "0", "--large-users", "2000"]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        grpc_address = lines[0].rsplit(" ", 1)[1].strip()
        rest_address = lines[1].rsplit("//", 1)[1].strip()
        assert [line.split()[1] for line in lines[2:]] == [
            f"properties/{p}" for p in (USD, EUR, JPY)
        ]
        for address, kind in ((grpc_address, "grpc"), (rest_address, "rest")):
            client, _ = build_client(endpoint=address, transport=kind)  # type: ignore[arg-type]
            meta = client.run_report(
                request([], ["newUsers"], ("7daysAgo", "yesterday"), property_id=JPY)
            )
            assert meta.metadata.currency_code == "JPY"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("hours", [0, 10, 23, 40])
def test_fresh_days_report_the_documented_share(
    fresh_server: EmulatorServer, fresh_property: PropertyData, clock: _Clock, hours: int
) -> None:
    """Active users of each fresh day, over the truth, follow ``Freshness.share`` closely."""
    client = _client(fresh_server, "grpc")
    at = datetime(END.year, END.month, END.day, tzinfo=UTC) + timedelta(hours=hours)
    report = request(["date"], ["totalUsers"], WINDOW, property_id=FRESH)
    clock.now = at
    try:
        reported = {dims[0]: int(m[0]) for dims, m in rows(client.run_report(report))}
    finally:
        clock.now = T
    truth: dict[str, int] = defaultdict(int)
    for day in fresh_property.activity["date"].to_pylist():
        truth[day.strftime("%Y%m%d")] += 1
    freshness = Freshness.at(at)
    for key, count in reported.items():
        share = freshness.share(datetime.strptime(key, "%Y%m%d").date())
        if share == 1.0:
            assert count == truth[key]
        else:
            assert count < truth[key]
            assert abs(count / truth[key] - share) < 0.05, (key, share)
