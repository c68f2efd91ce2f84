"""A server that cannot be reached ends in one clear error within seconds, on either transport.

Nothing listening and a server of the other transport (REST client on the gRPC port or the
reverse) are what a newcomer meets first; retrying those for minutes helps nobody.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import date

import pytest
from google.api_core import exceptions as gexc

from connectors.auth import build_client
from connectors.emulator.faults import FaultOptions
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from connectors.errors import EndpointUnreachableError, QuotaExhaustedError
from connectors.ga4_client import Ga4Reports
from connectors.reports import ACQUISITION
from connectors.retry import RetryPolicy

PROPERTY = "424242"


class FakeTime:
    """A monotonic clock that moves only when slept on, so backoff costs no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    prop = generate_property(property_id=PROPERTY, months=1, users=200, end=date(2024, 6, 30))
    with EmulatorServer([prop], rest_port=0) as serving:
        yield serving


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _connector(endpoint: str, transport: str, fake: FakeTime) -> Ga4Reports:
    client, _ = build_client(endpoint=endpoint, transport=transport)  # type: ignore[arg-type]
    return Ga4Reports(
        client, PROPERTY, endpoint=endpoint, sleep=fake.sleep, monotonic=lambda: fake.now
    )


@pytest.mark.parametrize(
    ("transport", "target", "reason"),
    [
        ("grpc", "closed", "connection refused"),
        ("rest", "closed", "connection refused"),
        ("rest", "grpc", "the server does not speak HTTP/1.1"),
        ("grpc", "rest", "the server does not speak gRPC"),
    ],
)
def test_no_answering_server_gives_one_clear_error_within_seconds(
    server: EmulatorServer, transport: str, target: str, reason: str
) -> None:
    endpoint = {
        "closed": _closed_port(),
        "grpc": server.address,
        "rest": server.rest_address,
    }[target]
    fake = FakeTime()
    started = time.monotonic()
    with pytest.raises(EndpointUnreachableError) as caught:
        _ = _connector(endpoint, transport, fake).catalog
    message = str(caught.value)
    assert message.startswith(f"no GA4 Data API answers at {endpoint} ({transport}; {reason}")
    assert "GA_LTV_TRANSPORT matches the server (grpc or rest)" in message
    assert message.isascii() and message.isprintable()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert fake.now <= 5.0  # backoff given up within a few seconds ...
    assert time.monotonic() - started < 3.0  # ... and the calls themselves fail fast


def test_a_server_that_answered_once_is_retried_in_full_when_it_goes_away() -> None:
    """A dropped connection mid-run keeps the whole retry budget: the server may come back."""
    prop = generate_property(property_id=PROPERTY, months=1, users=200, end=date(2024, 6, 30))
    fake = FakeTime()
    with EmulatorServer([prop]) as serving:
        endpoint = serving.address
        client, _ = build_client(endpoint=endpoint)
        connector = Ga4Reports(
            client, PROPERTY, endpoint=endpoint, sleep=fake.sleep, monotonic=lambda: fake.now,
            retry=RetryPolicy(attempts=6, initial_seconds=4.0, total_seconds=3_600),
        )  # fmt: skip
        _ = connector.catalog
    with pytest.raises(EndpointUnreachableError, match=f"no GA4 Data API answers at {endpoint}"):
        connector.validate(["date"], ["sessions"])
    assert len(fake.sleeps) == 5  # every attempt of the policy, not cut short


class _Refusing:
    """A client whose every call fails the way gRPC fails when Google cannot be reached."""

    transport = type("Transport", (), {"kind": "grpc"})()

    def get_metadata(self, **_: object) -> None:
        raise gexc.ServiceUnavailable(
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:142.250.0.1:443: "
            "Failed to connect to remote host: Connection refused"
        )


def test_google_out_of_reach_is_worded_as_a_network_problem() -> None:
    fake = FakeTime()
    connector = Ga4Reports(
        _Refusing(), PROPERTY, sleep=fake.sleep, monotonic=lambda: fake.now,  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=100, total_seconds=3_600),
    )  # fmt: skip
    with pytest.raises(EndpointUnreachableError) as caught:
        _ = connector.catalog
    message = str(caught.value)
    assert "analyticsdata.googleapis.com" in message and "network connection" in message
    assert "GA_LTV_TRANSPORT" not in message
    assert fake.now <= 60.0


@pytest.mark.parametrize(
    ("faults", "error", "message"),
    [
        (
            FaultOptions(unavailable_rate=1.0),
            EndpointUnreachableError,
            "answers, but stayed unavailable through every retry",
        ),
        (
            FaultOptions(concurrency_exhausted_rate=1.0),
            QuotaExhaustedError,
            "kept refusing property 424242's RunReport through every retry",
        ),
    ],
    ids=["unavailable", "too-many-in-flight"],
)
def test_a_server_that_answers_but_keeps_refusing_is_named_as_such(
    faults: FaultOptions, error: type[Exception], message: str
) -> None:
    """A server up but failing is not a wrong address, and GA's own wording arrives without
    gRPC's internals around it."""
    prop = generate_property(property_id=PROPERTY, months=1, users=200, end=date(2024, 6, 30))
    fake = FakeTime()
    with EmulatorServer([prop], options=EmulatorOptions(faults=faults)) as serving:
        client, _ = build_client(endpoint=serving.address)
        connector = Ga4Reports(
            client, PROPERTY, endpoint=serving.address, sleep=fake.sleep,
            monotonic=lambda: fake.now, retry=RetryPolicy(attempts=3, initial_seconds=1.0),
        )  # fmt: skip
        with pytest.raises(error, match=message) as caught:
            connector.fetch(ACQUISITION, start=date(2024, 6, 1), end=date(2024, 6, 30))
    text = str(caught.value)
    assert "_InactiveRpcError" not in text and "check the address" not in text
    assert "\n" not in text
