"""Page decoding: the wire scan gives exactly what a plain walk over the rows gives.

The reference here is written independently of `connectors.decode`: it walks the proto-plus
wrappers and types values with Python's own parsers, so a shared mistake is unlikely.
"""

from __future__ import annotations

import logging
import random
from datetime import date, datetime

import pyarrow as pa
import pytest
from google.analytics.data_v1beta.types import MetricType, RunReportResponse
from google.protobuf.message import DecodeError

from connectors import decode
from connectors.ga4_client import decode_page
from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition, column_name

# GA's declared types for COHORT_ACTIVITY's metrics, in order.
COHORT_TYPES = (
    MetricType.TYPE_CURRENCY,
    MetricType.TYPE_CURRENCY,
    MetricType.TYPE_INTEGER,
    MetricType.TYPE_INTEGER,
    MetricType.TYPE_INTEGER,
    MetricType.TYPE_INTEGER,
    MetricType.TYPE_SECONDS,
)

TRICKY_TEXTS = [
    "",
    "(not set)",
    "(other)",
    "a" * 12,  # the longest text a string view holds inline
    "a" * 13,  # the shortest that points into the page
    "é" * 6,  # 12 bytes, multi-byte characters
    "ab€" + "x" * 9,  # a character across the inline boundary
    "x" * 125,  # the longest with one-byte lengths throughout
    "x" * 126,  # a two-byte field length
    "y" * 127,
    "z" * 128,  # a two-byte text length
    "😀 emoji 👩‍👩‍👧",
    "مرحبا بالعالم",  # right to left
    "עברית (other)",
    "tab\tnew\nline\x00nul",
    "q" * 1000,
    "\u200f\u202e mixed direction",
]
TRICKY_DATES = ["20240101", "20241231", "(other)", "20000229"]
TRICKY_INTEGERS = ["0", "-1", "42", "9007199254740993", "-9223372036854775808"]
TRICKY_FLOATS = ["0", "-0", "1.5", "-12.25", "1e-05", "3.4E+38", "0.1", "123456789.987654321"]


def make_response(
    rows: list[tuple[list[str], list[str]]],
    metric_types: tuple[int, ...] = COHORT_TYPES,
) -> RunReportResponse:
    """A response as the client would hand it over, with GA's metadata around the rows."""
    pb = RunReportResponse.pb()()
    for i, metric_type in enumerate(metric_types):
        pb.metric_headers.add(name=f"metric{i}", type_=metric_type)
    for dims, mets in rows:
        row = pb.rows.add()
        for value in dims:
            row.dimension_values.add(value=value)
        for value in mets:
            row.metric_values.add(value=value)
    pb.row_count = len(rows)
    pb.metadata.currency_code = "EUR"
    pb.metadata.time_zone = "Europe/Berlin"
    pb.kind = "analyticsData#runReport"
    return RunReportResponse.wrap(pb)


def random_rows(
    count: int, report: ReportDefinition, metric_types: tuple[int, ...], seed: int
) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        dims = [
            rng.choice(TRICKY_DATES) if name in decode.DATE_DIMENSIONS else _text(rng)
            for name in report.dimensions
        ]
        mets = [
            rng.choice(TRICKY_INTEGERS if t == MetricType.TYPE_INTEGER else TRICKY_FLOATS)
            for t in metric_types
        ]
        rows.append((dims, mets))
    return rows


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TRICKY_TEXTS)
    alphabet = "abc XYZ/._-()éü中文😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))


def reference_table(response: RunReportResponse, report: ReportDefinition) -> pa.Table:
    """The output contract, spelled out with Python's parsers over the proto-plus rows."""
    types = [MetricType(h.type_) for h in response.metric_headers]
    columns = {}
    for i, name in enumerate(report.dimensions):
        texts = [row.dimension_values[i].value for row in response.rows]
        if name in decode.DATE_DIMENSIONS:
            values = [
                None if t == "(other)" else datetime.strptime(t, "%Y%m%d").date() for t in texts
            ]
            columns[column_name(name)] = pa.array(values, pa.date32())
        else:
            columns[column_name(name)] = pa.array(texts, pa.string())
    for i, name in enumerate(report.metrics):
        texts = [row.metric_values[i].value for row in response.rows]
        if types[i] == MetricType.TYPE_INTEGER:
            columns[column_name(name)] = pa.array([int(t) for t in texts], pa.int64())
        else:
            columns[column_name(name)] = pa.array([float(t) for t in texts], pa.float64())
    return pa.table(columns)


def rows_last(response: RunReportResponse) -> bytes:
    """The same response with every other field before the rows: fields may come in any order
    on the wire (the emulator writes rows last), and the rows must be found either way."""
    pb = RunReportResponse.pb(response)
    header = RunReportResponse.pb()()
    header.CopyFrom(pb)
    header.ClearField("rows")
    rows_only = RunReportResponse.pb()()
    rows_only.rows.extend(pb.rows)
    return header.SerializeToString() + rows_only.SerializeToString()


def decoded(response: RunReportResponse, report: ReportDefinition) -> pa.Table:
    """The page decoded from its protobuf, and from its bytes laid out rows last: they agree."""
    from_message = decode.decode_table(RunReportResponse.pb(response), report)
    assert decode.WireResponse(rows_last(response)).decode(report).equals(from_message)
    return from_message


def walked_table(response: RunReportResponse, report: ReportDefinition) -> pa.Table:
    """`decode_table` forced onto its row-walking fallback."""
    original = decode._scan_values
    decode._scan_values = lambda *args: None
    try:
        return decode.decode_table(RunReportResponse.pb(response), report)
    finally:
        decode._scan_values = original


def scanned(response: RunReportResponse, report: ReportDefinition) -> bool:
    """Whether the wire scan, not the fallback, reads this page."""
    data = RunReportResponse.pb(response).SerializeToString()
    split = decode._split_rows(data)
    assert split is not None
    starts, ends, _ = split
    n_dims, n_mets = len(report.dimensions), len(report.metrics)
    return decode._scan_values(data, starts, ends, n_dims, n_mets) is not None


@pytest.mark.parametrize("seed", range(4))
def test_random_pages_match_reference(seed: int) -> None:
    rows = random_rows(300, COHORT_ACTIVITY, COHORT_TYPES, seed)
    response = make_response(rows)
    assert scanned(response, COHORT_ACTIVITY)
    got = decoded(response, COHORT_ACTIVITY)
    assert got.equals(reference_table(response, COHORT_ACTIVITY))
    assert got.equals(walked_table(response, COHORT_ACTIVITY))


def test_every_tricky_text_in_every_dimension() -> None:
    """Each edge value at each column position, so each meets every neighbour's encoding."""
    rows = []
    for shift in range(len(TRICKY_TEXTS)):
        texts = [TRICKY_TEXTS[(shift + k) % len(TRICKY_TEXTS)] for k in range(4)]
        rows.append((["20240101", "(other)", *texts], ["-1.5", "1e-05", *["7"] * 4, "0.25"]))
    response = make_response(rows)
    assert scanned(response, COHORT_ACTIVITY)
    got = decoded(response, COHORT_ACTIVITY)
    assert got.equals(reference_table(response, COHORT_ACTIVITY))
    assert got.column("first_user_source").to_pylist()[: len(TRICKY_TEXTS)] == [
        TRICKY_TEXTS[(shift + 1) % len(TRICKY_TEXTS)] for shift in range(len(TRICKY_TEXTS))
    ]


def test_rows_over_16_kb_and_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three-byte row lengths, and blocks of rows that do not divide the page evenly."""
    monkeypatch.setattr(decode, "_BLOCK_ROWS", 7)
    rows = random_rows(50, COHORT_ACTIVITY, COHORT_TYPES, seed=9)
    rows[3] = (["20240102", "20240101", *["w" * 5000] * 4], rows[3][1])
    response = make_response(rows)
    assert scanned(response, COHORT_ACTIVITY)
    got = decoded(response, COHORT_ACTIVITY)
    assert got.equals(reference_table(response, COHORT_ACTIVITY))


@pytest.mark.parametrize(
    ("metric_type", "arrow_type"),
    [
        (MetricType.TYPE_INTEGER, pa.int64()),
        (MetricType.TYPE_CURRENCY, pa.float64()),  # money is never an integer
        (MetricType.TYPE_SECONDS, pa.float64()),
        (MetricType.TYPE_FLOAT, pa.float64()),
        (MetricType.TYPE_STANDARD, pa.float64()),
        (MetricType.METRIC_TYPE_UNSPECIFIED, pa.float64()),
    ],
)
def test_metric_typed_by_declared_type(metric_type: int, arrow_type: pa.DataType) -> None:
    response = make_response([(["20240105", *["s"] * 4], ["12"])], metric_types=(metric_type,))
    table = decoded(response, ACQUISITION)
    assert table.schema.field("new_users").type == arrow_type
    assert table.column("new_users").to_pylist() == [12]


def test_other_row_dates_are_null() -> None:
    rows = [
        (["(other)", "20240131", *["(other)"] * 4], ["1", "2", "3", "4", "5", "6", "7"]),
        (["20240131", "(other)", *["(other)"] * 4], ["1", "2", "3", "4", "5", "6", "7"]),
    ]
    table = decoded(make_response(rows), COHORT_ACTIVITY)
    assert table.column("date").to_pylist() == [None, date(2024, 1, 31)]
    assert table.column("first_session_date").to_pylist() == [date(2024, 1, 31), None]
    # Only dates lose "(other)": text dimensions keep it as GA sent it.
    assert table.column("first_user_source").to_pylist() == ["(other)", "(other)"]


def test_empty_response_gives_empty_typed_table() -> None:
    response = make_response([])
    table = decoded(response, COHORT_ACTIVITY)
    assert table.num_rows == 0
    assert table.schema.equals(reference_table(make_response([]), COHORT_ACTIVITY).schema)
    assert table.schema.field("date").type == pa.date32()
    assert table.schema.field("sessions").type == pa.int64()
    assert table.schema.field("total_revenue").type == pa.float64()


def _with_unknown_field(response: RunReportResponse) -> RunReportResponse:
    """The same rows with an extra field in the first value, as a newer GA might send.

    Needs a first row shorter than 126 bytes, so every length in it is one byte.
    """
    pb = RunReportResponse.pb(response)
    wire = bytearray(pb.SerializeToString())
    # First row: 0x1A len 0x0A len 0x0A len text. Put field 15 (varint 1) after its first text.
    at = wire.index(b"\x1a")
    row_length, text_length = wire[at + 1], wire[at + 5]
    assert row_length < 0x7E and text_length < 0x7E
    wire[at + 1] += 2
    wire[at + 3] += 2
    insert_at = at + 6 + text_length
    wire[insert_at:insert_at] = b"\x78\x01"
    changed = RunReportResponse.pb()()
    changed.ParseFromString(bytes(wire))
    return RunReportResponse.wrap(changed)


@pytest.mark.parametrize(
    "case",
    [
        "unknown field in a value",  # kept by protobuf and written back: the scan gives up
        "value without text",  # an unset oneof reads as ""
        "more values than asked",  # the walk reads the first ones, as before
        "totals and maximums",  # repeated rows under other fields must not be read as rows
    ],
)
def test_odd_pages_still_match(case: str, caplog: pytest.LogCaptureFixture) -> None:
    rows = random_rows(20, COHORT_ACTIVITY, COHORT_TYPES, seed=3)
    rows[0] = (["20240101", "20240101", "Direct", "(direct)", "(none)", "(not set)"], ["1"] * 7)
    response = make_response(rows)
    pb = RunReportResponse.pb(response)
    if case == "unknown field in a value":
        response = _with_unknown_field(response)
    elif case == "value without text":
        pb.rows[5].dimension_values[3].Clear()
    elif case == "more values than asked":
        for row in pb.rows:
            row.dimension_values.add(value="extra")
            row.metric_values.add(value="99")
    else:
        for field in (pb.totals, pb.maximums, pb.minimums):
            field.add().metric_values.add(value="123")
    with caplog.at_level(logging.INFO, logger="connectors.decode"):
        got = decoded(response, COHORT_ACTIVITY)
    assert got.equals(reference_table(response, COHORT_ACTIVITY))
    fell_back = "walking rows" in caplog.text
    assert fell_back == (case != "totals and maximums")


def _both_decoders(response: RunReportResponse):
    pb = RunReportResponse.pb(response)
    yield lambda report: decode.decode_table(pb, report)
    yield lambda report: decode.WireResponse(rows_last(response)).decode(report)


def test_fewer_values_than_asked_fails_like_the_walk() -> None:
    for decoder in _both_decoders(make_response([(["20240101", "x"], ["1"])])):
        with pytest.raises(IndexError):
            decoder(COHORT_ACTIVITY)


def test_unparsable_metric_fails() -> None:
    rows = [(["20240101", "20240101", *["x"] * 4], ["1.5", "2", "3", "4", "five", "6", "7"])]
    for decoder in _both_decoders(make_response(rows)):
        with pytest.raises(pa.ArrowInvalid):
            decoder(COHORT_ACTIVITY)


def test_decode_page_keeps_metadata_and_quota() -> None:
    response = make_response(random_rows(10, COHORT_ACTIVITY, COHORT_TYPES, seed=5))
    pb = RunReportResponse.pb(response)
    pb.row_count = 1234
    pb.metadata.subject_to_thresholding = True
    pb.property_quota.tokens_per_day.consumed = 7
    pb.property_quota.tokens_per_hour.remaining = 4993
    page = decode_page(
        decode.WireResponse(RunReportResponse.serialize(response)), COHORT_ACTIVITY, offset=500
    )
    assert not page.flags.data_loss_from_other_row
    assert page.table.equals(reference_table(response, COHORT_ACTIVITY))
    assert (page.offset, page.row_count) == (500, 1234)
    assert page.flags.currency_code == "EUR"
    assert page.flags.subject_to_thresholding
    assert page.quota is not None
    assert page.quota.tokens_per_day_consumed == 7
    assert page.quota.tokens_per_hour_remaining == 4993


@pytest.mark.parametrize("trailing", [0, 1, 20, 30, 31, 32, 33, 40])
def test_last_row_near_the_end_of_the_page(trailing: int) -> None:
    """Whatever follows the rows, the scan's loads past the last row stay inside the page."""
    rows = [(["20240101", "20240101", "x" * 130, "", "y" * 12, "z" * 200], ["1"] * 7)] * 3
    response = make_response(rows)
    pb = RunReportResponse.pb(response)
    pb.ClearField("metadata")
    pb.kind = "k" * trailing
    assert scanned(response, COHORT_ACTIVITY)
    got = decoded(response, COHORT_ACTIVITY)
    assert got.equals(reference_table(response, COHORT_ACTIVITY))


def test_wire_response_reads_fields_on_either_side_of_the_rows() -> None:
    """Fields may come in any order on the wire: the emulator, for one, puts rows last."""
    response = make_response(random_rows(40, COHORT_ACTIVITY, COHORT_TYPES, seed=11))
    RunReportResponse.pb(response).row_count = 40
    wire = decode.WireResponse(rows_last(response))
    assert not wire.header.rows
    assert (wire.header.row_count, wire.header.metadata.currency_code) == (40, "EUR")
    assert wire.decode(COHORT_ACTIVITY).equals(reference_table(response, COHORT_ACTIVITY))


def test_wire_response_refuses_malformed_bytes() -> None:
    wire = RunReportResponse.pb(make_response(random_rows(3, ACQUISITION, (1,), seed=2)))
    with pytest.raises(DecodeError):
        decode.WireResponse(wire.SerializeToString()[:-3])
