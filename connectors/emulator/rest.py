"""GA4's Data API over HTTP/JSON on loopback, for the official client's REST transport.

Some networks block gRPC, so clients may talk REST to Google; the emulator must answer both.
Requests are turned into the same protobuf messages the gRPC server receives and handed to the
same behaviours (``dispatch``), so validation, quota and faults cannot differ between the two.
Only the envelope is REST's: the URIs of the client's transport, proto3 JSON (lowerCamelCase,
enums as numbers when the client asks with ``$alt=json;enum-encoding=int``), and errors as
``{"error": {"code", "message", "status"}}`` with the HTTP status GA maps each gRPC code to.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    BatchRunReportsResponse,
    CheckCompatibilityRequest,
    CheckCompatibilityResponse,
    GetMetadataRequest,
    Metadata,
    RunReportRequest,
    RunReportResponse,
)
from google.protobuf import json_format
from google.protobuf.message import Message

from connectors.emulator.errors import EmulatorError, invalid_argument, unimplemented

logger = logging.getLogger(__name__)

Dispatch = Callable[[str, Message], bytes]

# google.rpc.Code -> HTTP status, as Google's JSON APIs map them.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass(frozen=True)
class _Route:
    """One REST binding of an RPC: verb, URI pattern and the request field the path fills."""

    verb: str
    pattern: re.Pattern[str]
    rpc: str
    request_type: Any
    response_type: Any
    path_field: str


# `{property=properties/*}` binds one path segment; a trailing `:verb` names the method.
_PROPERTY = r"(properties/[^/:]*)"
_ROUTES = (
    _Route(
        "POST",
        re.compile(rf"^/v1beta/{_PROPERTY}:runReport$"),
        "RunReport",
        RunReportRequest,
        RunReportResponse,
        "property",
    ),
    _Route(
        "POST",
        re.compile(rf"^/v1beta/{_PROPERTY}:batchRunReports$"),
        "BatchRunReports",
        BatchRunReportsRequest,
        BatchRunReportsResponse,
        "property",
    ),
    _Route(
        "POST",
        re.compile(rf"^/v1beta/{_PROPERTY}:checkCompatibility$"),
        "CheckCompatibility",
        CheckCompatibilityRequest,
        CheckCompatibilityResponse,
        "property",
    ),
    _Route(
        "GET",
        re.compile(r"^/v1beta/(properties/[^/:]*/metadata)$"),
        "GetMetadata",
        GetMetadataRequest,
        Metadata,
        "name",
    ),
)
# Real methods of the service that the emulator does not answer: UNIMPLEMENTED, as over gRPC.
_NOT_EMULATED = re.compile(
    rf"^/v1beta/{_PROPERTY}(:runPivotReport|:batchRunPivotReports|:runRealtimeReport"
    r"|/audienceExports.*)$"
)


class RestGateway:
    """A threading HTTP server on ``host:port`` (0 picks a free port) in a daemon thread."""

    def __init__(self, dispatch: Dispatch, *, host: str, port: int) -> None:
        self._dispatch = dispatch
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind and serve; returns ``host:port``."""
        httpd = _HttpServer((self._host, self._port), _Handler)
        httpd.gateway = self
        thread = threading.Thread(target=httpd.serve_forever, name="ga4-emulator-rest", daemon=True)
        thread.start()
        self._httpd, self._thread = httpd, thread
        host, port = httpd.server_address[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def answer(self, verb: str, target: str, body: bytes) -> bytes:
        """The JSON body for one HTTP request; raises EmulatorError for GA's error answers."""
        url = urlsplit(target)
        path = unquote(url.path)
        for route in _ROUTES:
            match = route.pattern.match(path)
            if match and route.verb == verb:
                return self._call(route, match.group(1), url.query, body)
        if _NOT_EMULATED.match(path):
            raise unimplemented(f"The emulator does not answer {verb} {path}.")
        raise EmulatorError(grpc.StatusCode.NOT_FOUND, f"No method answers {verb} {path}.")

    def _call(self, route: _Route, bound: str, query: str, body: bytes) -> bytes:
        request = route.request_type.pb()()
        if route.verb == "POST":
            try:
                json_format.Parse(body or b"{}", request)
            except json_format.ParseError as error:
                raise invalid_argument(f"Invalid JSON payload received. {error}") from None
        setattr(request, route.path_field, bound)
        answer = route.response_type.pb().FromString(self._dispatch(route.rpc, request))
        numeric_enums = any("enum-encoding=int" in v for v in parse_qs(query).get("$alt", []))
        return json.dumps(_to_json(answer, numeric_enums), ensure_ascii=False).encode()


def error_body(error: EmulatorError) -> tuple[int, bytes]:
    """The HTTP status and GA's JSON error body for a rejected request."""
    status = HTTP_STATUS.get(error.code, 500)
    payload = {"error": {"code": status, "message": error.message, "status": error.code.name}}
    return status, json.dumps(payload, ensure_ascii=False).encode()


def _to_json(message: Message, numeric_enums: bool) -> dict[str, Any]:
    """Proto3 JSON as a dict; report rows take a quick path, the rest goes via json_format."""
    if isinstance(message, RunReportResponse.pb()):
        return _report_json(message, numeric_enums)
    if isinstance(message, BatchRunReportsResponse.pb()):
        head = json_format.MessageToDict(
            _without(message, "reports"), use_integers_for_enums=numeric_enums
        )
        reports = [_report_json(report, numeric_enums) for report in message.reports]
        return {**({"reports": reports} if reports else {}), **head}
    return json_format.MessageToDict(message, use_integers_for_enums=numeric_enums)


def _report_json(report: Message, numeric_enums: bool) -> dict[str, Any]:
    """json_format walks every value in Python and takes many seconds on a 250,000-row page;
    rows are plain strings, so they are written out directly and only the rest is converted."""
    head = json_format.MessageToDict(_without(report, "rows"), use_integers_for_enums=numeric_enums)
    if not report.rows:
        return head
    rows = [
        {
            "dimensionValues": [{"value": v.value} for v in row.dimension_values],
            "metricValues": [{"value": v.value} for v in row.metric_values],
        }
        for row in report.rows
    ]
    # Headers first, then rows, then the rest: the order GA's own answers read in.
    headers = {k: v for k, v in head.items() if k in ("dimensionHeaders", "metricHeaders")}
    return {**headers, "rows": rows, **head}


def _without(message: Message, field_name: str) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField(field_name)
    return copy


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    gateway: RestGateway


class _Handler(BaseHTTPRequestHandler):
    """Turns each HTTP exchange into one ``RestGateway.answer`` call."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's requests session expects
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, verb: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, payload = 200, self.server.gateway.answer(verb, self.path, body)
        except EmulatorError as error:
            logger.debug("rejected %s %s: %s", verb, self.path, error.message)
            status, payload = error_body(error)
        except Exception:
            logger.exception("REST %s %s failed", verb, self.path)
            status, payload = error_body(
                EmulatorError(grpc.StatusCode.INTERNAL, "Internal error encountered.")
            )
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("REST %s %s", self.address_string(), format % args)
