"""How fast one full runReport page becomes typed Arrow columns, several ways, side by side.

Builds a 250,000-row COHORT_ACTIVITY page in memory (GA's page limit) and times converting it
by walking the proto-plus wrappers, by walking the protobuf under them (the decoder before the
wire scan, and still its fallback), and with `connectors.decode.decode_table`; these start from
the parsed message. The connector's own path, `connectors.decode.WireResponse`, starts from the
bytes gRPC hands over, and is timed against parsing those bytes into a message at all. Every
way must give the same table. Optionally also times landing the table: Parquet, then DuckDB.

    .venv/bin/python benchmarks/bench_decode.py [--rows N] [--repeat N] [--land]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from google.analytics.data_v1beta.types import MetricType, RunReportResponse

from connectors.decode import WireResponse, decode_table, typed_table, walk_rows
from connectors.reports import COHORT_ACTIVITY

METRIC_TYPES = (
    MetricType.TYPE_CURRENCY,  # totalRevenue
    MetricType.TYPE_CURRENCY,  # purchaseRevenue
    MetricType.TYPE_INTEGER,  # transactions
    MetricType.TYPE_INTEGER,  # ecommercePurchases
    MetricType.TYPE_INTEGER,  # sessions
    MetricType.TYPE_INTEGER,  # screenPageViews
    MetricType.TYPE_SECONDS,  # userEngagementDuration
)
CHANNELS = (
    "Organic Search", "Direct", "Paid Search", "Organic Social", "Email", "Referral",
    "Paid Social", "Display", "Affiliates", "Cross-network", "Organic Video", "Unassigned",
)  # fmt: skip
MEDIUMS = ("organic", "(none)", "cpc", "email", "referral", "social", "display", "affiliate")


def _pools(rng: random.Random) -> dict[str, list[str]]:
    """Value pools shaped like a shop's GA4 property: a few big sources, a long tail."""
    sources = ["google", "(direct)", "bing", "facebook.com", "l.instagram.com", "newsletter"]
    sources += [f"partner{i}.example.com" for i in range(300)]
    sources += ["yandex.ru", "baidu.com", "naver.com", "t.co", "duckduckgo", "ecosia.org"]
    campaigns = ["(not set)", "(organic)", "(direct)", "(referral)"]
    campaigns += [f"brand_search_{c}_2024" for c in ("uk", "de", "fr", "es", "it", "nl")]
    campaigns += [
        f"{season}_{kind}_{i:03d}"
        for season in ("spring_sale", "black_friday", "summer", "xmas_gifts")
        for kind in ("retargeting", "prospecting", "newsletter")
        for i in range(40)
    ]
    campaigns += ["Été 2024 : soldes", "Weihnachtsaktion 🎄", "عرض رمضان", "セール", "מבצע קיץ"]
    end = date(2024, 3, 31)
    first_dates = [(end - timedelta(days=d)).strftime("%Y%m%d") for d in range(730)]
    return {
        "date": [(end - timedelta(days=d)).strftime("%Y%m%d") for d in range(31)],
        "first": first_dates,
        "source": sources,
        "campaign": campaigns,
        "revenue": ["0"] * 20 + [f"{rng.uniform(1, 900):.2f}" for _ in range(400)],
    }


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def build_response(rows: int, seed: int = 1) -> RunReportResponse:
    """A page as GA would send it: headers, rows (the last one "(other)"), metadata, quota.

    Rows are encoded straight to wire bytes (values pre-encoded per pool) and parsed once by
    protobuf, which takes a second or two rather than the minute the Python API would take.
    """
    rng = random.Random(seed)
    pools = _pools(rng)
    dimension = {k: [_field(0x0A, _field(0x0A, v.encode())) for v in vs] for k, vs in pools.items()}
    dimension["channel"] = [_field(0x0A, _field(0x0A, v.encode())) for v in CHANNELS]
    dimension["medium"] = [_field(0x0A, _field(0x0A, v.encode())) for v in MEDIUMS]

    def metric(text: str) -> bytes:
        return _field(0x12, _field(0x22, text.encode()))

    revenue = [metric(v) for v in pools["revenue"]]
    small = [metric(str(n)) for n in range(60)]
    views = [metric(str(n)) for n in range(1, 800)]
    seconds = [metric(str(n)) for n in range(0, 40_000, 7)]
    choice = rng.choice
    body = []
    for _ in range(rows - 1):
        row = b"".join(
            (
                choice(dimension["date"]),
                choice(dimension["first"]),
                choice(dimension["channel"]),
                choice(dimension["source"]),
                choice(dimension["medium"]),
                choice(dimension["campaign"]),
                choice(revenue),
                choice(revenue),
                choice(small[:4]),
                choice(small[:4]),
                choice(small),
                choice(views),
                choice(seconds),
            )
        )
        body.append(_field(0x1A, row))
    other = b"".join(_field(0x0A, _field(0x0A, b"(other)")) for _ in range(6))
    body.append(_field(0x1A, other + b"".join(choice(small) for _ in range(7))))

    head = RunReportResponse.pb()()
    for api_name in COHORT_ACTIVITY.dimensions:
        head.dimension_headers.add(name=api_name)
    for api_name, metric_type in zip(COHORT_ACTIVITY.metrics, METRIC_TYPES, strict=True):
        head.metric_headers.add(name=api_name, type_=metric_type)
    head.row_count = rows
    head.metadata.currency_code = "EUR"
    head.metadata.time_zone = "Europe/Berlin"
    head.metadata.data_loss_from_other_row = True
    head.property_quota.tokens_per_day.consumed = 12
    head.property_quota.tokens_per_day.remaining = 199_988
    head.kind = "analyticsData#runReport"
    pb = RunReportResponse.pb()()
    pb.ParseFromString(head.SerializeToString() + b"".join(body))  # fields merge in any order
    return RunReportResponse.wrap(pb)


def decode_via_proto_plus(response: RunReportResponse) -> pa.Table:
    """The natural first version: one pass over the proto-plus rows (the faster of the two
    obvious ways; one pass per column is twice as slow)."""
    n_dims, n_mets = len(COHORT_ACTIVITY.dimensions), len(COHORT_ACTIVITY.metrics)
    dims: list[list[str]] = [[] for _ in range(n_dims)]
    mets: list[list[str]] = [[] for _ in range(n_mets)]
    for row in response.rows:
        for column, value in zip(dims, row.dimension_values, strict=False):
            column.append(value.value)
        for column, value in zip(mets, row.metric_values, strict=False):
            column.append(value.value)
    texts = [pa.array(values, pa.string()) for values in dims + mets]
    return typed_table(texts, COHORT_ACTIVITY, [h.type_ for h in response.metric_headers])


def decode_via_pb_walk(response: RunReportResponse) -> pa.Table:
    pb = RunReportResponse.pb(response)
    texts = walk_rows(pb, len(COHORT_ACTIVITY.dimensions), len(COHORT_ACTIVITY.metrics))
    return typed_table(texts, COHORT_ACTIVITY, [h.type_ for h in pb.metric_headers])


def decode_via_wire_scan(response: RunReportResponse) -> pa.Table:
    return decode_table(RunReportResponse.pb(response), COHORT_ACTIVITY)


def land(table: pa.Table) -> None:
    """Parquet on disk, then one insert into DuckDB: what the pipeline does with a page."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "page.parquet"
        pq.write_table(table, path)
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        con.execute(
            "create table cohort_activity as select * from read_parquet(?) limit 0", [str(path)]
        )
        con.execute("insert into cohort_activity select * from read_parquet(?)", [str(path)])
        con.close()


def timed(name: str, run: Callable[[], object], repeat: int, rows: int) -> tuple[float, object]:
    """Median wall time of `repeat` runs, printed with rows per second."""
    seconds = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    spread = ", ".join(f"{s:.3f}" for s in seconds)
    print(f"{name:<28} median {median:8.3f} s  {rows / median:>12,.0f} rows/s  runs: {spread}")
    return median, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=7, help="runs of the fast decoders")
    parser.add_argument("--slow-repeat", type=int, default=3, help="runs of the proto-plus walk")
    parser.add_argument("--land", action="store_true", help="also time Parquet + DuckDB insert")
    args = parser.parse_args()

    started = time.perf_counter()
    response = build_response(args.rows)
    size = RunReportResponse.pb(response).ByteSize()
    print(
        f"page: {args.rows:,} rows, {len(COHORT_ACTIVITY.dimensions)} dimensions, "
        f"{len(COHORT_ACTIVITY.metrics)} metrics, {size / 1e6:.1f} MB on the wire "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    wire, new = timed("wire scan (decode_table)", lambda: decode_via_wire_scan(response),
                      args.repeat, args.rows)  # fmt: skip
    walk, old = timed("protobuf walk", lambda: decode_via_pb_walk(response), args.repeat, args.rows)
    plus, slow = timed("proto-plus walk", lambda: decode_via_proto_plus(response),
                       args.slow_repeat, args.rows)  # fmt: skip
    data = RunReportResponse.serialize(response)
    parse, _ = timed("bytes: parse to message", lambda: RunReportResponse.deserialize(data),
                     args.repeat, args.rows)  # fmt: skip
    from_bytes, direct = timed("bytes: WireResponse.decode",
                               lambda: WireResponse(data).decode(COHORT_ACTIVITY),
                               args.repeat, args.rows)  # fmt: skip
    if not (new.equals(old) and new.equals(slow) and new.equals(direct)):
        raise SystemExit("the decoders disagree")
    print("tables identical: yes")
    if args.land:
        timed("parquet + duckdb insert", lambda: land(new), args.repeat, args.rows)
    print(f"from the bytes, WireResponse vs parse + proto-plus walk: "
          f"{(parse + plus) / from_bytes:.1f}x faster")  # fmt: skip
    print(f"wire scan vs proto-plus walk: {plus / wire:.1f}x faster")
    print(f"wire scan vs protobuf walk:   {walk / wire:.1f}x faster")


if __name__ == "__main__":
    main()
