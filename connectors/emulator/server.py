"""A local gRPC server speaking GA4's Data API, for the official client over loopback.

Handlers are registered generically on the real service name, so
``BetaAnalyticsDataClient`` talks to it unchanged. Report responses are returned as ready-made
bytes (the rows come pre-encoded from the engine), hence no response serializer for them.

Clients must lift gRPC's 4 MB default receive limit, as GA's own transport does: a full
250,000-row page is tens of megabytes. ``CHANNEL_OPTIONS`` holds the setting.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    BatchRunReportsResponse,
    CheckCompatibilityRequest,
    CheckCompatibilityResponse,
    Compatibility,
    DimensionCompatibility,
    DimensionHeader,
    DimensionValue,
    GetMetadataRequest,
    Metadata,
    MetricCompatibility,
    MetricHeader,
    MetricType,
    MetricValue,
    ResponseMetaData,
    Row,
    RunReportRequest,
    RunReportResponse,
)

from connectors.emulator.dataset import PropertyData
from connectors.emulator.engine import PropertyEngine
from connectors.emulator.errors import EmulatorError, invalid_argument
from connectors.emulator.faults import FaultInjector, FaultOptions
from connectors.emulator.fields import DIMENSIONS, METRICS, resolve_field
from connectors.emulator.filters import parse_filter
from connectors.emulator.freshness import Freshness
from connectors.emulator.metadata import build_metadata
from connectors.emulator.other_row import DEFAULT_ROWS_PER_DAY
from connectors.emulator.query import parse_property, parse_run_report
from connectors.emulator.quota import (
    CONCURRENT_EXHAUSTED,
    QuotaLedger,
    QuotaLimits,
    request_cost,
)
from connectors.emulator.rest import RestGateway
from connectors.emulator.thresholds import subject_to_thresholding
from connectors.emulator.wire import varint
from connectors.ga4_fields import STANDARD_FIELDS

logger = logging.getLogger(__name__)

SERVICE = "google.analytics.data.v1beta.BetaAnalyticsData"
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", -1),)
_METADATA_NAME = re.compile(r"^properties/([0-9]+)/metadata$")
MAX_BATCH_REQUESTS = 5
# The emulator's own wording; GA's texts for an empty report are not documented.
EMPTY_REASON = "No data matches the requested dates, dimensions and filters."
_BATCH_REPORTS_TAG = b"\x0a"  # BatchRunReportsResponse.reports = 1, length-delimited
# GA answers metadata for property 0 with the fields common to all properties.
_UNIVERSAL_PROPERTY = "0"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PortInUseError(OSError):
    """The emulator's gRPC or REST port is taken, so a second server would not be reached.

    gRPC on Linux would otherwise share the port (SO_REUSEPORT) and answer half the calls.
    """

    def __init__(self, host: str, port: int, what: str) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"{what} port {port} on {host} is already in use (another emulator or program "
            "listens there): stop it, or choose another port",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class EmulatorOptions:
    """Server behaviour beyond the data itself.

    ``clock`` is what "today" and quota windows are computed from; tests pin it.
    ``other_row_limit`` is the most distinct rows a report keeps before the rest become one
    "(other)" row (GA's 50,000 a day); ``faults`` injects errors, latency and short pages.
    """

    max_rows_per_page: int = 250_000
    default_limit: int = 10_000
    result_cache_seconds: float = 300.0
    result_cache_entries: int = 16
    result_cache_bytes: int = 512 * 2**20  # per property
    max_workers: int = 8
    quota: QuotaLimits = field(default_factory=QuotaLimits)
    clock: Callable[[], datetime] = _utc_now
    other_row_limit: int = DEFAULT_ROWS_PER_DAY
    faults: FaultOptions = field(default_factory=FaultOptions)


class EmulatorServer:
    """Serves ``properties`` on ``host:port`` (port 0 picks a free one) until stopped.

    With ``rest_port`` set (0 picks a free one) the same service also answers HTTP/JSON there,
    for clients on the REST transport.
    """

    def __init__(
        self,
        properties: Sequence[PropertyData],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rest_port: int | None = None,
        options: EmulatorOptions | None = None,
    ) -> None:
        ids = [p.property_id for p in properties]
        if len(set(ids)) != len(ids):
            raise ValueError(f"property ids must be unique, got {ids}")
        self._properties = tuple(properties)
        self._host = host
        self._port = port
        self.options = options or EmulatorOptions()
        self._engines: dict[str, PropertyEngine] = {}
        self._metadata: dict[str, bytes] = {}
        self._field_metadata = build_metadata(_UNIVERSAL_PROPERTY)
        self._quota = QuotaLedger(self.options.quota)
        self.faults = FaultInjector(self.options.faults)
        self._server: grpc.Server | None = None
        self._address: str | None = None
        self._rest_port = rest_port
        self._rest: RestGateway | None = None
        self._rest_address: str | None = None
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        """``host:port`` to dial; only known once started."""
        if self._address is None:
            raise RuntimeError("the emulator has not been started")
        return self._address

    @property
    def rest_address(self) -> str:
        """``host:port`` of the HTTP/JSON endpoint; only once started with a ``rest_port``."""
        if self._rest_address is None:
            raise RuntimeError("the emulator is not serving REST (started with a rest_port?)")
        return self._rest_address

    def start(self) -> str:
        """Load every property, bind and serve; returns the address to dial."""
        if self._server is not None:
            return self.address
        options = self.options
        for data in self._properties:
            self._engines[data.property_id] = PropertyEngine(
                data,
                cache_seconds=options.result_cache_seconds,
                cache_entries=options.result_cache_entries,
                cache_bytes=options.result_cache_bytes,
                other_row_limit=options.other_row_limit,
            )
        for property_id in (*self._engines, _UNIVERSAL_PROPERTY):
            self._metadata[property_id] = Metadata.serialize(build_metadata(property_id))
        # No SO_REUSEPORT: a second server on a taken port must fail, not share it.
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.max_workers),
            options=[("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers((self._handlers(),))
        try:
            port = server.add_insecure_port(f"{self._host}:{self._port}")
        except RuntimeError:
            port = 0
        if port == 0:
            self._close_engines()
            if _port_taken(self._host, self._port):
                raise PortInUseError(self._host, self._port, "gRPC")
            raise OSError(f"cannot serve gRPC on {self._host}:{self._port}: check the host")
        server.start()
        self._server = server
        self._stopped.clear()
        self._address = f"{self._host}:{port}"
        if self._rest_port is not None:
            rest = RestGateway(self._dispatch, host=self._host, port=self._rest_port)
            try:
                self._rest_address = rest.start()
            except OSError as error:
                self.stop()
                if error.errno == errno.EADDRINUSE:
                    raise PortInUseError(self._host, self._rest_port, "REST") from None
                raise
            self._rest = rest
            logger.info("GA4 emulator answering REST on http://%s", self._rest_address)
        logger.info(
            "GA4 emulator serving %d properties (%s) on %s",
            len(self._engines),
            ", ".join(self._engines),
            self._address,
        )
        return self._address

    def stop(self, grace: float | None = None) -> None:
        """Stop serving and release the databases; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._rest is not None:
            self._rest.stop()
            self._rest, self._rest_address = None, None
        server.stop(grace).wait()
        self._close_engines()
        self._address = None
        self._stopped.set()
        logger.info("GA4 emulator stopped")

    def _close_engines(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()

    def wait(self) -> None:
        """Block until ``stop`` is called from another thread."""
        self._stopped.wait()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _handlers(self) -> grpc.GenericRpcHandler:
        def unary(behaviour: Callable[[Any], bytes], request_type: Any) -> grpc.RpcMethodHandler:
            # Responses leave the behaviours as bytes already, so no serializer.
            return grpc.unary_unary_rpc_method_handler(
                _aborting(behaviour), request_deserializer=request_type.pb().FromString
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {name: unary(*handling) for name, handling in self._behaviours().items()},
        )

    def _behaviours(self) -> dict[str, tuple[Callable[[Any], bytes], Any]]:
        """Each RPC's behaviour and request type: the one place gRPC and REST both call."""
        return {
            "RunReport": (self._run_report, RunReportRequest),
            "GetMetadata": (self._get_metadata, GetMetadataRequest),
            "BatchRunReports": (self._batch_run_reports, BatchRunReportsRequest),
            "CheckCompatibility": (self._check_compatibility, CheckCompatibilityRequest),
        }

    def _dispatch(self, rpc: str, request: Any) -> bytes:
        return self._behaviours()[rpc][0](request)

    def _engine(self, property_id: str) -> PropertyEngine:
        engine = self._engines.get(property_id)
        if engine is None:
            raise EmulatorError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"The caller may not read property {property_id}: this server holds no such "
                "property, or the credentials lack access to it.",
            )
        return engine

    def _run_report(self, request: Any) -> bytes:
        engine = self._engine(parse_property(request.property))
        with self._quota.in_flight(engine.data.property_id):
            return self._answer_report(engine, request)

    def _answer_report(self, engine: PropertyEngine, request: Any) -> bytes:
        """One RunReport while it holds a concurrent-request slot: quota, faults, then rows."""
        data = engine.data
        now = self.options.clock()
        self._quota.admit(data.property_id, now)
        number = self.faults.before_report(CONCURRENT_EXHAUSTED)
        local_now = now.astimezone(ZoneInfo(data.time_zone))
        parsed = parse_run_report(
            request,
            today=local_now.date(),
            default_limit=self.options.default_limit,
            max_rows=self.options.max_rows_per_page,
            property_currency=data.currency_code,
            freshness=Freshness.at(local_now),
        )
        report = engine.report(parsed.query)
        returned = self.faults.page_rows(
            number, max(0, min(parsed.limit, report.row_count - parsed.offset))
        )
        page = report.page(parsed.offset, returned)
        days = sum((w.end - w.start).days + 1 for w in parsed.query.date_ranges)
        tokens = request_cost(returned, days)
        quota = self._quota.charge(data.property_id, tokens, now)
        response = RunReportResponse(
            dimension_headers=[DimensionHeader(name=n) for n in parsed.dimension_headers],
            metric_headers=[
                MetricHeader(name=header, type_=MetricType[STANDARD_FIELDS[name].metric_type])
                for header, name in zip(parsed.metric_headers, parsed.query.metrics, strict=True)
            ],
            totals=_rows(report.aggregates.get("TOTAL", [])),
            maximums=_rows(report.aggregates.get("MAXIMUM", [])),
            minimums=_rows(report.aggregates.get("MINIMUM", [])),
            row_count=report.row_count,
            metadata=ResponseMetaData(
                currency_code=parsed.currency_code,
                time_zone=data.time_zone,
                data_loss_from_other_row=report.data_loss_from_other_row,
                subject_to_thresholding=subject_to_thresholding(data, parsed.query, report),
                **({"empty_reason": EMPTY_REASON} if report.row_count == 0 else {}),
            ),
            property_quota=quota if parsed.return_property_quota else None,
            kind="analyticsData#runReport",
        )
        logger.debug(
            "RunReport property %s: rows %d-%d of %d, %d tokens",
            data.property_id,
            parsed.offset,
            parsed.offset + returned,
            report.row_count,
            tokens,
        )
        self.faults.after_report(number)
        # Fields may arrive in any order on the wire, so the pre-encoded rows just follow.
        return RunReportResponse.serialize(response) + page

    def _batch_run_reports(self, request: Any) -> bytes:
        self._engine(parse_property(request.property))
        if not request.requests:
            raise invalid_argument("A batch needs at least one request.")
        if len(request.requests) > MAX_BATCH_REQUESTS:
            raise invalid_argument(
                f"A batch takes at most {MAX_BATCH_REQUESTS} requests; "
                f"this one has {len(request.requests)}."
            )
        parts = []
        for index, report in enumerate(request.requests):
            if report.property and report.property != request.property:
                raise invalid_argument(
                    f"requests[{index}].property is {report.property!r}, "
                    f"not the batch's {request.property!r}."
                )
            report.property = request.property
            try:
                body = self._run_report(report)
            except EmulatorError as error:
                raise EmulatorError(error.code, f"requests[{index}]: {error.message}") from None
            parts += [_BATCH_REPORTS_TAG, varint(len(body)), body]
        tail = BatchRunReportsResponse(kind="analyticsData#batchRunReports")
        return b"".join(parts) + BatchRunReportsResponse.serialize(tail)

    def _check_compatibility(self, request: Any) -> bytes:
        """Every computed field is compatible with every other; the rest with nothing."""
        self._engine(parse_property(request.property))
        requested = [(d.name, "dimension") for d in request.dimensions]
        requested += [(m.name, "metric") for m in request.metrics]
        answerable = True
        for name, kind in requested:
            try:
                resolve_field(name, kind)
            except EmulatorError as error:
                if error.code != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                answerable = False
        for kind in ("dimension", "metric"):
            if request.HasField(f"{kind}_filter"):
                parse_filter(getattr(request, f"{kind}_filter"), kind=kind, where=f"{kind}_filter")
        wanted = request.compatibility_filter

        def verdict(name: str, computed: dict) -> Compatibility | None:
            ok = answerable and name in computed
            value = Compatibility.COMPATIBLE if ok else Compatibility.INCOMPATIBLE
            return value if wanted in (Compatibility.COMPATIBILITY_UNSPECIFIED, value) else None

        metadata = self._field_metadata
        response = CheckCompatibilityResponse(
            dimension_compatibilities=[
                DimensionCompatibility(dimension_metadata=field, compatibility=value)
                for field in metadata.dimensions
                if (value := verdict(field.api_name, DIMENSIONS)) is not None
            ],
            metric_compatibilities=[
                MetricCompatibility(metric_metadata=field, compatibility=value)
                for field in metadata.metrics
                if (value := verdict(field.api_name, METRICS)) is not None
            ],
        )
        return CheckCompatibilityResponse.serialize(response)

    def _get_metadata(self, request: Any) -> bytes:
        match = _METADATA_NAME.match(request.name)
        if match is None:
            raise invalid_argument(
                f"name must look like 'properties/<numeric id>/metadata', got {request.name!r}."
            )
        property_id = match.group(1)
        if property_id != _UNIVERSAL_PROPERTY:
            self._engine(property_id)
        return self._metadata[property_id]


def _port_taken(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails for being in use: gRPC's failed bind says no why."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _rows(values: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> list[Row]:
    return [
        Row(
            dimension_values=[DimensionValue(value=v) for v in dimensions],
            metric_values=[MetricValue(value=v) for v in metrics],
        )
        for dimensions, metrics in values
    ]


def _aborting(behaviour: Callable[[Any], bytes]) -> Callable[[Any, grpc.ServicerContext], bytes]:
    """Wrap a behaviour so a rejected request aborts the call with GA's status code."""

    def handle(request: Any, context: grpc.ServicerContext) -> bytes:
        try:
            return behaviour(request)
        except EmulatorError as error:
            logger.debug("rejected %s: %s", type(request).__name__, error.message)
            context.abort(error.code, error.message)
            raise  # unreachable: abort raises; keeps type checkers content

    return handle
