"""Rows encoded by column decode, through protobuf itself, to the strings that went in."""

from __future__ import annotations

import pyarrow as pa
from google.analytics.data_v1beta.types import RunReportResponse

from connectors.emulator.wire import encode_rows, varint


def _decode(data: bytes) -> list[tuple[list[str], list[str]]]:
    response = RunReportResponse.pb().FromString(data)
    return [
        ([v.value for v in row.dimension_values], [v.value for v in row.metric_values])
        for row in response.rows
    ]


def test_varint_matches_protobuf() -> None:
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(300) == b"\xac\x02"
    assert varint(2**21) == b"\x80\x80\x80\x01"


def test_rows_round_trip_with_long_and_unicode_values() -> None:
    # Lengths cross the one-, two- and three-byte varint boundaries.
    long_values = ["x" * 127, "y" * 128, "z" * 20_000]
    dimensions = [pa.array(["", "🎉 ok", "מבצע"]), pa.array(long_values)]
    metrics = [pa.array(["1", "2.5", "0"])]
    encoded = encode_rows(dimensions, metrics)
    assert encoded.count == 3
    assert _decode(bytes(encoded.page(0, 10))) == [
        (["", "x" * 127], ["1"]),
        (["🎉 ok", "y" * 128], ["2.5"]),
        (["מבצע", "z" * 20_000], ["0"]),
    ]


def test_pages_are_slices_of_whole_rows() -> None:
    encoded = encode_rows([pa.array([str(i) for i in range(10)])], [])
    assert _decode(bytes(encoded.page(3, 4))) == [([str(i)], []) for i in range(3, 7)]
    assert _decode(bytes(encoded.page(8, 5))) == [(["8"], []), (["9"], [])]
    assert bytes(encoded.page(12, 5)) == b""


def test_no_rows_encode_to_nothing() -> None:
    encoded = encode_rows([pa.array([], pa.string())], [pa.array([], pa.string())])
    assert encoded.count == 0
    assert bytes(encoded.page(0, 10)) == b""
