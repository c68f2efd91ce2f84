"""The connector against the emulator, through the official client over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest
from google.analytics.data_v1beta.types import RunReportResponse

from connectors.auth import build_client
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from connectors.errors import FieldError, PermissionDeniedError
from connectors.ga4_client import Ga4Reports
from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition

MONTH = (date(2024, 3, 1), date(2024, 3, 31))


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    prop = generate_property(
        property_id="424242", seed=11, months=4, users=4_000, end=date(2024, 4, 30),
        time_zone="Europe/Berlin", currency_code="EUR",
    )  # fmt: skip
    with EmulatorServer([prop]) as server:
        yield server.address


def _reports(address: str, property_id: str = "424242", page_size: int = 250_000) -> Ga4Reports:
    client, credentials = build_client(endpoint=address)
    return Ga4Reports(client, property_id, credentials=credentials, page_size=page_size)


def _fetch(reports: Ga4Reports, report: ReportDefinition) -> tuple[pa.Table, int, int]:
    pages = list(reports.iter_pages(report, start=MONTH[0], end=MONTH[1]))
    table = pa.concat_tables(page.table for page in pages)
    return table, len(pages), pages[0].row_count


def test_pages_until_row_count(emulator: str) -> None:
    whole, whole_pages, row_count = _fetch(_reports(emulator), COHORT_ACTIVITY)
    assert whole_pages == 1
    assert whole.num_rows == row_count > 1_500
    paged, pages, _ = _fetch(_reports(emulator, page_size=500), COHORT_ACTIVITY)
    assert pages == -(-row_count // 500) >= 3
    assert paged.num_rows == row_count
    # Every row exactly once: the paged result is the whole result, row for row.
    dims = [c for c in paged.column_names if c.startswith(("date", "first"))]
    assert paged.group_by(dims).aggregate([]).num_rows == row_count
    assert paged.sort_by([(c, "ascending") for c in dims]).equals(
        whole.sort_by([(c, "ascending") for c in dims])
    )


def test_grpc_pages_are_read_from_their_wire_bytes(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over gRPC no page becomes proto-plus or protobuf objects row by row: that parse costs
    more time and memory than decoding the bytes, so the client's own parser must not run."""
    expected, _, _ = _fetch(_reports(emulator), COHORT_ACTIVITY)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a runReport response was parsed into objects")

    monkeypatch.setattr(RunReportResponse, "deserialize", refuse)
    reports = _reports(emulator)
    table, _, _ = _fetch(reports, COHORT_ACTIVITY)
    assert table.equals(expected)
    assert reports.tokens_spent > 0  # the quota header was still read


def test_metrics_typed_by_declared_type(emulator: str) -> None:
    table, _, _ = _fetch(_reports(emulator), COHORT_ACTIVITY)
    schema = table.schema
    assert schema.field("date").type == pa.date32()
    assert schema.field("first_session_date").type == pa.date32()
    assert schema.field("first_user_source").type == pa.string()
    for integer in ("transactions", "ecommerce_purchases", "sessions", "screen_page_views"):
        assert schema.field(integer).type == pa.int64(), integer
    for fractional in ("total_revenue", "purchase_revenue", "user_engagement_duration"):
        assert schema.field(fractional).type == pa.float64(), fractional
    revenue = table.column("total_revenue").to_pylist()
    assert any(value != int(value) for value in revenue), "currency must keep its cents"


def test_response_flags_kept(emulator: str) -> None:
    page = next(_reports(emulator).iter_pages(ACQUISITION, start=MONTH[0], end=MONTH[1]))
    assert page.flags.currency_code == "EUR"
    assert page.flags.time_zone == "Europe/Berlin"
    assert page.flags.data_loss_from_other_row is False
    assert page.table.column("new_users").type == pa.int64()


def test_unknown_dimension_named_with_suggestion(emulator: str) -> None:
    with pytest.raises(FieldError, match=r"firstUserSorce.*Did you mean firstUserSource"):
        _reports(emulator).validate(["firstUserSorce"], ["newUsers"])


def test_metric_asked_as_dimension(emulator: str) -> None:
    with pytest.raises(FieldError, match="newUsers is a metric"):
        _reports(emulator).validate(["newUsers"], ["sessions"])


def test_renamed_dimension_resolved(emulator: str) -> None:
    dims, _ = _reports(emulator).validate(["firstUserDefaultChannelGrouping"], ["newUsers"])
    assert dims == ["firstUserDefaultChannelGroup"]


def test_property_without_access(emulator: str) -> None:
    with pytest.raises(PermissionDeniedError, match="property 999"):
        next(_reports(emulator, property_id="999").iter_pages(
            ACQUISITION, start=MONTH[0], end=MONTH[1]
        ))  # fmt: skip
