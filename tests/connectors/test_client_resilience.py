"""The connector against the emulator through the official client: big reports, "(other)"
rows, injected faults, quotas, wide reports and bad input, each ending in complete data or a
clear error."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import grpc
import pyarrow as pa
import pytest
from google.analytics.data_v1beta.types import RunReportRequest

from connectors.auth import build_client
from connectors.emulator.faults import FaultOptions
from connectors.emulator.generated import generate_property
from connectors.emulator.quota import QuotaLimits
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from connectors.errors import (
    FieldError,
    PermissionDeniedError,
    PropertyIdError,
    QuotaExhaustedError,
)
from connectors.ga4_client import Ga4Reports
from connectors.quota import QuotaPolicy
from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition
from connectors.retry import RetryPolicy
from tests.connectors.support import MovingClock, campaign_property, days_of, reports
from tests.emulator.support import make_client, request

JUNE = (date(2024, 6, 1), date(2024, 6, 30))
NOW = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)
GENERATED = "515151"
CAMPAIGNS = "626262"
NO_OTHER_ROW = 10**9


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


@pytest.fixture(scope="module")
def properties() -> list:
    generated = generate_property(
        property_id=GENERATED, seed=5, months=3, users=3_000, end=date(2024, 7, 31),
        time_zone="America/New_York",
    )  # fmt: skip
    # June: 100 new users a day, each with a campaign of their own; July 1st: 200 in one day.
    campaigns = campaign_property(CAMPAIGNS, {**days_of(*JUNE, 100), date(2024, 7, 1): 200})
    return [generated, campaigns]


@pytest.fixture(scope="module")
def reference(properties: list) -> Iterator[str]:
    """Fault-free, no "(other)" rows: what every other server's answers must equal."""
    options = EmulatorOptions(clock=lambda: NOW, other_row_limit=NO_OTHER_ROW)
    with EmulatorServer(properties, options=options) as server:
        yield server.address


def _serve(properties: list, **options: object) -> EmulatorServer:
    options.setdefault("clock", lambda: NOW)
    options.setdefault("other_row_limit", NO_OTHER_ROW)
    return EmulatorServer(properties, options=EmulatorOptions(**options))  # type: ignore[arg-type]


def test_600_000_rows_arrive_complete_over_three_pages() -> None:
    """A real 600,000-row month at GA's 250,000-row page cap: 3 pages, every row once."""
    big = campaign_property("737373", days_of(*JUNE, 20_000))
    with _serve([big]) as server:
        pages = list(reports(server.address, "737373").iter_pages(ACQUISITION, start=JUNE[0],
                                                                   end=JUNE[1]))  # fmt: skip
    assert [p.table.num_rows for p in pages] == [250_000, 250_000, 100_000]
    assert {p.row_count for p in pages} == {600_000}
    table = pa.concat_tables(p.table for p in pages)
    assert pa.compute.count_distinct(table.column("first_user_campaign_name")).as_py() == 600_000
    assert pa.compute.sum(table.column("new_users")).as_py() == 600_000


def test_high_cardinality_month_is_split_and_lands_without_other_row(
    properties: list, reference: str, caplog: pytest.LogCaptureFixture
) -> None:
    """3,000 rows against a 150-row "(other)" bound: halves down to days, equal to unsplit."""
    unsplit = reports(reference, CAMPAIGNS).fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
    assert len(unsplit.windows) == 1
    with _serve(properties, other_row_limit=150) as server:
        caplog.set_level(logging.WARNING, logger="connectors.ga4_client")
        split = reports(server.address, CAMPAIGNS).fetch(
            COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
        )
    assert len(split.windows) > 8
    assert not split.data_loss_from_other_row
    assert "(other)" not in split.table.column("first_user_campaign_name").to_pylist()
    assert split.table.num_rows == sum(count for _, _, count in split.windows) == 3_000
    assert _sorted(split.table).equals(_sorted(unsplit.table))
    assert "has an (other) row: fetching" in caplog.text


def test_a_single_day_over_the_limit_lands_flagged(
    properties: list, caplog: pytest.LogCaptureFixture
) -> None:
    day = date(2024, 7, 1)
    with _serve(properties, other_row_limit=150) as server:
        caplog.set_level(logging.WARNING, logger="connectors.ga4_client")
        fetched = reports(server.address, CAMPAIGNS).fetch(ACQUISITION, start=day, end=day)
    assert fetched.data_loss_from_other_row
    campaigns = fetched.table.column("first_user_campaign_name").to_pylist()
    assert len(campaigns) == 150 and campaigns.count("(other)") == 1
    assert pa.compute.sum(fetched.table.column("new_users")).as_py() == 200  # nothing lost
    assert "still has an (other) row; landing it flagged" in caplog.text


def test_injected_faults_are_retried_and_data_equals_a_fault_free_run(
    properties: list, reference: str
) -> None:
    expected = reports(reference, GENERATED, page_size=150).fetch(
        COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
    )
    faults = FaultOptions(
        seed=3, unavailable_rate=0.2, deadline_exceeded_rate=0.1, concurrency_exhausted_rate=0.2
    )
    with _serve(properties, faults=faults) as server:
        got = reports(server.address, GENERATED, page_size=150).fetch(
            COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
        )
        injected = dict(server.faults.injected)
    assert {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"} <= set(injected)
    assert expected.table.num_rows > 1_000  # several pages of 150
    assert got.table.equals(expected.table)


def test_dropped_connection_and_short_page_mid_pagination(
    properties: list, reference: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = reports(reference, GENERATED, page_size=300).fetch(
        COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
    )
    # RunReport 1 is the first page; 3 and 5 are pages further on.
    faults = FaultOptions(drop_page=3, short_page=5)
    with _serve(properties, faults=faults) as server:
        caplog.set_level(logging.WARNING)
        got = reports(server.address, GENERATED, page_size=300).fetch(
            COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
        )
        injected = dict(server.faults.injected)
    assert injected == {"DROPPED": 1, "SHORT_PAGE": 1}
    assert "where 300 were due; asking again" in caplog.text
    assert got.table.equals(expected.table)


class _DriftingClient:
    """The official client, except that one answer reports a different rowCount."""

    def __init__(self, inner, drift_on_call: int) -> None:
        self._inner = inner
        self._drift_on_call = drift_on_call
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def run_report(self, **kwargs):
        self.calls += 1
        response = self._inner.run_report(**kwargs)
        if self.calls == self._drift_on_call:
            response.row_count += 1
        return response


def test_row_count_changing_between_pages_restarts_the_window(reference: str) -> None:
    client, _ = build_client(endpoint=reference)
    expected = Ga4Reports(client, GENERATED, page_size=500).fetch(
        COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
    )
    drifting = _DriftingClient(client, drift_on_call=3)
    connector = Ga4Reports(drifting, GENERATED, page_size=500)  # type: ignore[arg-type]
    pages = list(connector.iter_pages(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]))
    assert [p.attempt for p in pages][:2] == [0, 0]
    assert pages[2].attempt == 1 and pages[2].offset == 0  # the window starts over
    fetched = Ga4Reports(_DriftingClient(client, 3), GENERATED, page_size=500).fetch(  # type: ignore[arg-type]
        COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
    )
    assert fetched.table.equals(expected.table)


def test_concurrent_requests_stay_under_the_property_limit(properties: list) -> None:
    """Six threads, a server allowing 2 in flight: the per-property slots keep them queued."""
    options = {"quota": QuotaLimits(concurrent_requests=2),
               "faults": FaultOptions(latency_seconds=0.05)}  # fmt: skip
    with _serve(properties, **options) as server:
        # Unguarded, the official client alone trips GA's concurrency quota.
        raw = make_client(server.address)
        refused: list[str] = []

        def unguarded() -> None:
            try:
                raw.run_report(request(["date"], ["newUsers"], JUNE_TEXT, property_id=GENERATED))
            except Exception as error:
                refused.append(str(error))

        _run_in_threads(unguarded, 6)
        assert any("Exhausted concurrent requests quota" in text for text in refused)

        # Through the connector, with no retries allowed, nobody is refused.
        tables: list[pa.Table] = []

        def guarded() -> None:
            connector = reports(server.address, GENERATED, retry=RetryPolicy(attempts=1))
            tables.append(connector.fetch(ACQUISITION, start=JUNE[0], end=JUNE[1]).table)

        _run_in_threads(guarded, 6)
    assert len(tables) == 6 and all(t.equals(tables[0]) for t in tables)


JUNE_TEXT = (JUNE[0].isoformat(), JUNE[1].isoformat())


def _run_in_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_daily_quota_stops_before_it_is_spent(properties: list) -> None:
    """Pages cost a token each; the run stops while a reserve is left, saying when it resets."""
    with _serve(properties, quota=QuotaLimits(tokens_per_day=30)) as server:
        connector = reports(server.address, GENERATED, page_size=40)
        with pytest.raises(QuotaExhaustedError) as stopped:
            connector.fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
    message = str(stopped.value)
    assert stopped.value.budget == "daily"
    assert f"property {GENERATED}" in message
    assert "this run used 2" in message  # 20 or more tokens, all accounted for
    assert "midnight Pacific time" in message and "Run the same command again" in message
    assert 0 < connector.guard.remaining["daily"] < 10  # stopped short of zero


def test_hourly_quota_refusal_waits_for_the_next_hour(properties: list) -> None:
    """GA refuses on the hourly budget; the client waits (on a fake clock) and completes."""
    clock = MovingClock(datetime(2024, 8, 1, 12, 50, tzinfo=UTC))
    limits = QuotaLimits(tokens_per_hour=15, tokens_per_project_per_hour=15)
    with _serve(properties, quota=limits, clock=clock) as server:
        # No reserve: let GA itself refuse, which is what a shared property looks like.
        policy = QuotaPolicy(reserve_factor=0, minimum_reserve=0, max_hourly_wait=_HOUR)
        connector = reports(server.address, GENERATED, page_size=40, quota=policy,
                            sleep=clock.sleep, now=clock)  # fmt: skip
        fetched = connector.fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
    assert clock.now >= datetime(2024, 8, 1, 13, 0, tzinfo=UTC)
    assert fetched.table.num_rows == fetched.windows[0][2]


_HOUR = datetime(2024, 1, 1, 1, tzinfo=UTC) - datetime(2024, 1, 1, tzinfo=UTC)


def test_hourly_quota_refusal_stops_when_waiting_is_not_allowed(properties: list) -> None:
    limits = QuotaLimits(tokens_per_hour=15, tokens_per_project_per_hour=15)
    with _serve(properties, quota=limits) as server:
        policy = QuotaPolicy(reserve_factor=0, minimum_reserve=0)
        connector = reports(server.address, GENERATED, page_size=40, quota=policy)
        with pytest.raises(QuotaExhaustedError, match=r"hourly token quota \(GA said: Exhau"):
            connector.fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])


def test_more_metrics_than_a_request_takes_are_split_and_joined(reference: str) -> None:
    whole = reports(reference, GENERATED).fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
    connector = reports(reference, GENERATED, max_metrics=3)  # 7 metrics -> 3 requests
    split = connector.fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
    assert connector.report_requests == 3
    assert split.table.schema == whole.table.schema
    assert _sorted(split.table).equals(_sorted(whole.table))


def test_metrics_missing_from_one_group_are_zero(reference: str) -> None:
    """newUsers and sessions come from different requests whose rows differ; outer join."""
    wide = ReportDefinition("wide", ("date", "firstUserSource"), ("newUsers", "sessions"))
    whole = reports(reference, GENERATED).fetch(wide, start=JUNE[0], end=JUNE[1])
    split = reports(reference, GENERATED, max_metrics=1).fetch(wide, start=JUNE[0], end=JUNE[1])
    assert split.table.column("new_users").null_count == 0
    assert _sorted(split.table).equals(_sorted(whole.table))


def test_more_than_nine_dimensions_is_refused_before_any_request(reference: str) -> None:
    connector = reports(reference, GENERATED)
    dims = ["date", "year", "month", "yearMonth", "firstSessionDate", "firstUserSource",
            "firstUserMedium", "firstUserCampaignName", "firstUserDefaultChannelGroup",
            "firstUserSourceMedium"]  # fmt: skip
    with pytest.raises(FieldError, match=r"at most 9 dimensions; got 10.*cannot be joined"):
        connector.validate(dims, ["newUsers"])
    assert connector.report_requests == 0


class _CountingClient:
    def __init__(self, inner) -> None:
        self._inner = inner
        self.compatibility_calls = 0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def check_compatibility(self, **kwargs):
        self.compatibility_calls += 1
        return self._inner.check_compatibility(**kwargs)


def test_incompatible_fields_are_named_and_shapes_checked_once(reference: str) -> None:
    client, _ = build_client(endpoint=reference)
    counting = _CountingClient(client)
    connector = Ga4Reports(counting, GENERATED)  # type: ignore[arg-type]
    # The emulator marks every field of a shape it cannot answer; GA names the culprits.
    with pytest.raises(FieldError, match=r"cannot report [a-zA-Z, ]*country"):
        connector.validate(["date", "country"], ["newUsers"])
    connector.validate(["date"], ["newUsers"])
    connector.validate(["date"], ["newUsers"])
    assert counting.compatibility_calls == 2


def test_unknown_field_gets_a_suggestion(reference: str) -> None:
    with pytest.raises(FieldError, match=r"totalRevenu is not a metric.*Did you mean totalRevenue"):
        reports(reference, GENERATED).validate(["date"], ["totalRevenu"])


class _ServiceAccount:
    """Just what the connector reads from service-account credentials."""

    service_account_email = "ga-reader@example-project.iam.gserviceaccount.com"


def test_permission_denied_names_the_identity_and_property(reference: str) -> None:
    client, _ = build_client(endpoint=reference)
    connector = Ga4Reports(client, "999", credentials=_ServiceAccount())  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError) as denied:
        connector.fetch(ACQUISITION, start=JUNE[0], end=JUNE[1])
    message = str(denied.value)
    assert "ga-reader@example-project.iam.gserviceaccount.com" in message
    assert "property 999" in message and "Viewer role" in message
    assert denied.value.__cause__ is None and denied.value.__suppress_context__


def test_measurement_id_is_refused_before_any_request(reference: str) -> None:
    client, _ = build_client(endpoint=reference)
    with pytest.raises(PropertyIdError, match="measurement id"):
        Ga4Reports(client, "G-ABC123XYZ")


def test_rest_transport_pages_retries_and_splits(properties: list, reference: str) -> None:
    """The same connector over the REST transport: faults retried, "(other)" windows split."""
    expected = reports(reference, CAMPAIGNS, page_size=700).fetch(
        COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1]
    )
    options = EmulatorOptions(
        clock=lambda: NOW, other_row_limit=1_000,
        faults=FaultOptions(seed=3, unavailable_rate=0.2, concurrency_exhausted_rate=0.1),
    )  # fmt: skip
    with EmulatorServer(properties, rest_port=0, options=options) as server:
        client, _ = build_client(endpoint=server.rest_address, transport="rest")
        connector = Ga4Reports(client, CAMPAIGNS, page_size=700, sleep=lambda _: None,
                               retry=RetryPolicy(attempts=12))  # fmt: skip
        got = connector.fetch(COHORT_ACTIVITY, start=JUNE[0], end=JUNE[1])
        injected = dict(server.faults.injected)
    assert injected.get("UNAVAILABLE", 0) >= 1
    assert len(got.windows) > 1 and not got.data_loss_from_other_row
    assert _sorted(got.table).equals(_sorted(expected.table))


def test_grpc_status_codes_reach_the_client_unchanged(properties: list) -> None:
    """The emulator's faults are real gRPC statuses, as GA's front end sends them."""
    with _serve(properties, faults=FaultOptions(unavailable_rate=1.0)) as server:
        raw = make_client(server.address)
        report = RunReportRequest(request(["date"], ["newUsers"], JUNE_TEXT,
                                          property_id=GENERATED))  # fmt: skip
        with pytest.raises(Exception) as failed:
            raw.run_report(report, retry=None)
    assert failed.value.grpc_status_code == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
