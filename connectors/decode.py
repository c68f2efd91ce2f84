"""Turn runReport rows into typed Arrow columns at close to wire speed.

A 250,000-row page holds 3.25 million values; touching each one from Python costs seconds. So the
page is serialised once (upb does that in C), and the values are located in the wire bytes with
numpy, many rows at a time: every row has the same shape, one DimensionValue per dimension and
one MetricValue per metric, so the scan advances one field per step across a block of rows.
The values become Arrow string-view arrays pointing into those bytes, then ordinary string
columns. Anything the scan does not expect (an unknown field, a missing value, an odd encoding)
sends the page to the plain row walk, which is slower but reads whatever protobuf accepts.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.analytics.data_v1beta.types import MetricType, RunReportResponse
from google.protobuf.message import Message

from connectors.reports import DATE_DIMENSIONS, ReportDefinition, column_name

log = logging.getLogger(__name__)

OTHER_ROW_VALUE = "(other)"

# Declared metric type -> Arrow type. Currency stays fractional: never text, never an integer.
_METRIC_ARROW_TYPES = {MetricType.TYPE_INTEGER: pa.int64()}

# Wire tags (field number << 3 | 2 for length-delimited fields) of the messages read here.
_ROW_TAG = 0x1A  # RunReportResponse.rows = 3
_DIMENSION_TAG = 0x0A  # Row.dimension_values = 1
_METRIC_TAG = 0x12  # Row.metric_values = 2
_DIMENSION_VALUE_TAG = 0x0A  # DimensionValue.value = 1
_METRIC_VALUE_TAG = 0x22  # MetricValue.value = 4

# The scan's 8-byte loads reach up to 23 bytes past a row's end (a value's headers, then the
# first 12 bytes of its text), so the page must have that many bytes after its last row: GA's
# trailing metadata usually provides them, otherwise the page is padded.
_PAD = 32
# Rows scanned together: about half a megabyte of page, so it stays in cache across the fields.
_BLOCK_ROWS = 4096
# A string-view holds up to 12 bytes inline; longer ones point into the page's bytes.
_INLINE = 12
# Masks keeping a view's first min(n, 12) text bytes: 4 in the upper half of its first word
# (the lower half holds the length), 8 in its second word.
_FIRST_WORD_MASK = np.array(
    [((1 << (8 * min(n, 4))) - 1) << 32 for n in range(_INLINE + 1)], dtype=np.uint64
)
_SECOND_WORD_MASK = np.array(
    [(1 << (8 * max(n - 4, 0))) - 1 for n in range(_INLINE + 1)], dtype=np.uint64
)
_LOW = np.uint64(0xFF)


class WireResponse:
    """A runReport response kept as its wire bytes: rows located, everything else parsed.

    Parsing a big page into protobuf objects costs more time and memory than the decode itself,
    so only the fields around the rows (headers, rowCount, metadata, quota) become a message.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._decoded: tuple[ReportDefinition, pa.Table] | None = None
        split = _split_rows(data)
        if split is None:  # malformed for the scan: protobuf decides, and raises if it must
            self.header = RunReportResponse.pb().FromString(data)
            self.spans: tuple[np.ndarray, np.ndarray] | None = None
        else:
            starts, ends, rest = split
            self.header = RunReportResponse.pb().FromString(rest)
            self.spans = (starts, ends)

    def decode(self, report: ReportDefinition) -> pa.Table:
        """The rows as a typed table (see `typed_table`), decoded once per report."""
        if self._decoded is not None:
            if self._decoded[0] != report:
                raise ValueError(f"this page was decoded for report {self._decoded[0].name}")
            return self._decoded[1]
        n_dims, n_mets = len(report.dimensions), len(report.metrics)
        texts = None
        if self.spans is not None:
            texts = _scan_values(self.data, *self.spans, n_dims, n_mets)
        if texts is None:
            full = RunReportResponse.pb().FromString(self.data)
            log.info("page of %d rows decoded by walking rows: unexpected wire layout",
                     len(full.rows))  # fmt: skip
            texts = walk_rows(full, n_dims, n_mets)
        table = typed_table(texts, report, [h.type_ for h in self.header.metric_headers])
        # The table holds copies of the texts: the page's bytes can go while it waits.
        self._decoded, self.data, self.spans = (report, table), b"", None
        return table


def decode_table(pb: Message, report: ReportDefinition) -> pa.Table:
    """The page's rows as a typed table; `pb` is the protobuf under a `RunReportResponse`
    (a response already parsed, as the REST transport gives it)."""
    return WireResponse(pb.SerializeToString()).decode(report)


def typed_table(
    texts: list[pa.Array], report: ReportDefinition, metric_types: list[int]
) -> pa.Table:
    """Columns named by `column_name` from the value texts, dimensions then metrics.

    Dates become DATE with the "(other)" row's date NULL; other dimensions stay text;
    TYPE_INTEGER metrics become int64 and all others float64, as GA declares them.
    """
    declared = [MetricType(t) for t in metric_types]
    columns: dict[str, pa.Array] = {}
    for i, api_name in enumerate(report.dimensions):
        values = texts[i]
        columns[column_name(api_name)] = (
            parse_ga_dates(values) if api_name in DATE_DIMENSIONS else values
        )
    n_dims = len(report.dimensions)
    for i, api_name in enumerate(report.metrics):
        arrow_type = _METRIC_ARROW_TYPES.get(declared[i], pa.float64())
        columns[column_name(api_name)] = pc.cast(texts[n_dims + i], arrow_type)
    return pa.table(columns)


def parse_ga_dates(values: pa.Array) -> pa.Array:
    """`20240131` -> DATE; the "(other)" row carries no date and becomes NULL."""
    cleaned = pc.if_else(pc.equal(values, OTHER_ROW_VALUE), pa.scalar(None, pa.string()), values)
    return pc.cast(pc.strptime(cleaned, format="%Y%m%d", unit="s"), pa.date32())


def walk_rows(pb: Message, n_dims: int, n_mets: int) -> list[pa.Array]:
    """The value texts, dimensions then metrics, read row by row: slow, but reads anything."""
    rows = pb.rows
    dims = [[r.dimension_values[i].value for r in rows] for i in range(n_dims)]
    mets = [[r.metric_values[i].value for r in rows] for i in range(n_mets)]
    return [pa.array(values, pa.string()) for values in dims + mets]


def _scan_values(
    data: bytes, position: np.ndarray, row_end: np.ndarray, n_dims: int, n_mets: int
) -> list[pa.Array] | None:
    """The value texts of the rows at `position`..`row_end` of `data`, or None if they differ
    from one value per requested dimension and metric."""
    if sys.byteorder != "little":  # string views are built as little-endian words
        return None
    if len(data) + _PAD >= 2**31:  # views address the bytes with int32 offsets
        return None
    last = int(row_end[-1]) if len(row_end) else 0
    padded = data if len(data) - last >= _PAD else data + bytes(_PAD)
    # Unaligned little-endian 8-byte loads at every byte offset, without copying.
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    fields = [(_DIMENSION_TAG, _DIMENSION_VALUE_TAG)] * n_dims
    fields += [(_METRIC_TAG, _METRIC_VALUE_TAG)] * n_mets
    views = [np.empty((len(position), 2), dtype=np.uint64) for _ in fields]
    # A block of rows at a time, all fields, so each row's bytes are fetched from memory once.
    for block_start in range(0, len(position), _BLOCK_ROWS):
        block = slice(block_start, block_start + _BLOCK_ROWS)
        at, end = position[block], row_end[block]
        for (tag, value_tag), view in zip(fields, views, strict=True):
            at = _next_values(words, at, end, tag, value_tag, view[block])
            if at is None:
                return None
        if not np.array_equal(at, end):  # a row holds more than the report asked for
            return None
    data_buffer = pa.py_buffer(padded)
    texts = []
    for view in views:
        array = pa.Array.from_buffers(
            pa.string_view(), len(view), [None, pa.py_buffer(view), data_buffer]
        )
        # Every view's bytes lie inside the page: the scan checked each text against its row.
        text = array.cast(pa.string())
        try:
            text.validate(full=True)  # UTF-8, cheaper on plain strings than on views
        except pa.ArrowInvalid as exc:
            log.warning("wire scan built an invalid column (%s); walking rows instead", exc)
            return None
        texts.append(text)
    return texts


def _next_values(
    words: np.ndarray,
    position: np.ndarray,
    row_end: np.ndarray,
    tag: int,
    value_tag: int,
    view: np.ndarray,
) -> np.ndarray | None:
    """Read one `tag` field holding a `value_tag` string at `position` in every row.

    Writes the strings' views into `view` and returns the positions after the field, or None
    if any row differs.
    """
    if not (position < row_end).all():  # a row holds fewer values than the report asked for
        return None
    first = words[position]
    second = words[position + 8]
    header = first.view(np.uint8).reshape(-1, 8)
    length = header[:, 3]
    # The common shape: four one-byte header fields (tag, length, tag, length), then the text.
    simple = (
        (header[:, 0] == tag)
        & (header[:, 2] == value_tag)
        & (header[:, 1] == length + 2)
        & (length < 126)
    )
    start = position + 4
    length = length.astype(np.int64)
    if not simple.all():
        odd = np.flatnonzero(~simple)
        found = _general_values(words, position[odd], tag, value_tag)
        if found is None:
            return None
        start[odd], length[odd] = found
        # Realign those rows' text bytes the way the common shape has them: 4 then 8 bytes.
        first[odd] = words[start[odd] - 4]
        second[odd] = words[start[odd] + 4]
    end = start + length
    if (end > row_end).any():
        return None
    inline = np.minimum(length, _INLINE)
    np.bitwise_and(first, _FIRST_WORD_MASK[inline], out=view[:, 0])
    view[:, 0] |= length.astype(np.uint64)
    np.bitwise_and(second, _SECOND_WORD_MASK[inline], out=view[:, 1])
    long = np.flatnonzero(length > _INLINE)
    if long.size:
        # Past 12 bytes the second word holds buffer 0 and the text's offset in it.
        view[long, 1] = start[long].astype(np.uint64) << np.uint64(32)
    return end


def _general_values(
    words: np.ndarray, position: np.ndarray, tag: int, value_tag: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Like `_next_values` for the few rows with multi-byte lengths: (text starts, lengths)."""
    if not ((words[position] & _LOW) == tag).all():
        return None
    field = _varints(words, position + 1)
    if field is None:
        return None
    field_length, width = field
    inner = position + 1 + width
    if not ((words[inner] & _LOW) == value_tag).all():
        return None
    text = _varints(words, inner + 1)
    if text is None:
        return None
    length, width = text
    start = inner + 1 + width
    if not np.array_equal(start + length, inner + field_length):
        return None
    return start, length


def _varints(words: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Decode the varints at `position`: (values, widths), or None past 5 bytes.

    Five bytes hold 35 bits, more than any length in a page whose offsets fit in int32.
    """
    value = np.zeros(len(position), dtype=np.int64)
    width = np.zeros(len(position), dtype=np.int64)
    going = np.arange(len(position))
    for shift in range(0, 35, 7):
        byte = (words[position[going] + shift // 7] & _LOW).astype(np.int64)
        value[going] |= (byte & 0x7F) << shift
        width[going] += 1
        going = going[byte >= 0x80]
        if not going.size:
            return value, width
    return None


def _split_rows(data: bytes) -> tuple[np.ndarray, np.ndarray, bytes] | None:
    """Start and end offsets of every row in the page, and the page's other fields as bytes;
    None if the bytes are malformed.

    A Python loop, but one step per row: about 0.2 s per million rows.
    """
    starts: list[int] = []
    ends: list[int] = []
    rest: list[bytes] = []
    size = len(data)
    position = 0
    try:
        while position < size:
            if data[position] == _ROW_TAG:
                length = data[position + 1]
                if length < 0x80:
                    position += 2
                elif data[position + 2] < 0x80:  # rows of 128 bytes to 16 kB
                    length = (length & 0x7F) | (data[position + 2] << 7)
                    position += 3
                else:
                    length, position = _varint(data, position + 1)
                starts.append(position)
                position += length
                ends.append(position)
                continue
            field_start = position
            key, position = _varint(data, position)
            wire_type = key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 2:
                length, position = _varint(data, position)
                position += length
            elif wire_type == 5:
                position += 4
            else:
                return None
            rest.append(data[field_start:position])
    except IndexError:
        return None
    if position != size:
        return None
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), b"".join(rest)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """One varint from `data`: (value, position after it)."""
    value = 0
    shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")
