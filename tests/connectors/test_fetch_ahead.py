"""Asking GA ahead for the next partition: the same answers, no request sent twice, and never
at the expense of a tight quota."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest

from connectors import ahead
from connectors.ahead import AnswersAhead
from connectors.decode import WireResponse
from connectors.emulator.generated import generate_property
from connectors.emulator.quota import QuotaLimits
from connectors.emulator.server import EmulatorOptions
from connectors.ga4_client import Ga4Reports
from connectors.reports import COHORT_ACTIVITY, ReportDefinition
from tests.connectors.support import CountingEmulator, reports

PROPERTY = "626262"
MARCH = (date(2024, 3, 1), date(2024, 3, 31))
APRIL = (date(2024, 4, 1), date(2024, 4, 30))


@pytest.fixture(scope="module")
def prop():
    return generate_property(property_id=PROPERTY, seed=5, months=4, users=3_000,
                             end=date(2024, 4, 30))  # fmt: skip


@pytest.fixture
def emulator(prop) -> Iterator[CountingEmulator]:
    with CountingEmulator([prop]) as server:
        yield server


def _land(connector: Ga4Reports, window: tuple[date, date]) -> tuple[pa.Table, float]:
    pages = list(connector.iter_pages(COHORT_ACTIVITY, start=window[0], end=window[1]))
    total = connector.totals(["totalRevenue"], start=window[0], end=window[1])["totalRevenue"]
    return pa.concat_tables(page.table for page in pages), total


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the requests sent ahead never arrived"
        time.sleep(0.01)


def test_answers_fetched_ahead_are_taken_up_and_never_asked_twice(
    emulator: CountingEmulator,
) -> None:
    expected = _land(reports(emulator.address, PROPERTY), APRIL)
    before = emulator.count(APRIL[0])
    connector = reports(emulator.address, PROPERTY)
    _land(connector, MARCH)  # GA's first answers say how much quota is left
    connector.prefetch(COHORT_ACTIVITY, start=APRIL[0], end=APRIL[1], totals=["totalRevenue"])
    _wait_for(lambda: emulator.count(APRIL[0]) == before + 2)
    requests_before = connector.report_requests
    table, total = _land(connector, APRIL)
    assert table.equals(expected[0]) and total == expected[1]
    assert emulator.count(APRIL[0]) == before + 2, "the page and the totals were asked again"
    assert connector.answered_ahead == 2
    assert connector.report_requests == requests_before + 2  # counted when taken up
    connector.close()


def test_nothing_is_fetched_ahead_before_ga_has_said_what_quota_is_left(
    emulator: CountingEmulator,
) -> None:
    connector = reports(emulator.address, PROPERTY)
    connector.prefetch(COHORT_ACTIVITY, start=APRIL[0], end=APRIL[1])
    _land(connector, APRIL)
    assert emulator.count(APRIL[0]) == 2  # the page and the totals, each asked once
    assert connector.answered_ahead == 0


def test_a_tight_quota_is_not_spent_ahead(prop) -> None:
    # 100 tokens a day: after March's answers, less than ten times the reserve of 10 is left.
    options = EmulatorOptions(quota=QuotaLimits(tokens_per_day=100))
    with CountingEmulator([prop], options=options) as server:
        connector = reports(server.address, PROPERTY)
        _land(connector, MARCH)
        assert connector.guard.remaining["daily"] < 100
        assert connector.prefetch(COHORT_ACTIVITY, start=APRIL[0], end=APRIL[1]) is False
        _land(connector, APRIL)
        assert server.count(APRIL[0]) == 2
        assert connector.answered_ahead == 0


def test_an_answer_ahead_that_failed_is_asked_for_again(emulator: CountingEmulator) -> None:
    expected = _land(reports(emulator.address, PROPERTY), APRIL)
    connector = reports(emulator.address, PROPERTY)
    _land(connector, MARCH)
    before = emulator.count(APRIL[0])
    emulator.refuse_once.add(APRIL[0].isoformat())
    connector.prefetch(COHORT_ACTIVITY, start=APRIL[0], end=APRIL[1])
    _wait_for(lambda: emulator.count(APRIL[0]) > before)
    assert _land(connector, APRIL) == expected
    assert connector.answered_ahead == 0


class _Request:
    """Stands in for a protobuf request: AnswersAhead needs only `serialize`."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @staticmethod
    def serialize(request: _Request) -> bytes:
        return request.key


def test_an_old_answer_is_not_used() -> None:
    now = [0.0]
    answers = AnswersAhead("test", clock=lambda: now[0])
    answers.submit(_Request(b"a"), lambda r: b"answer " + r.key)
    assert answers.take(_Request(b"a")) == b"answer a"
    answers.submit(_Request(b"a"), lambda r: b"answer " + r.key)
    now[0] = ahead.MAX_AGE_SECONDS + 1
    assert answers.take(_Request(b"a")) is None
    assert answers.taken == 1
    answers.close()


def test_pending_requests_are_bounded_and_dropped_on_close() -> None:
    gate = threading.Event()
    answers = AnswersAhead("test")
    for index in range(ahead.MAX_PENDING + 2):
        answers.submit(_Request(bytes([index])), lambda r: gate.wait(5) and r.key)
    assert answers.take(_Request(b"\x00")) is None  # the oldest was dropped
    gate.set()
    assert answers.take(_Request(bytes([ahead.MAX_PENDING + 1]))) == bytes([ahead.MAX_PENDING + 1])
    answers.close()
    assert answers.take(_Request(bytes([ahead.MAX_PENDING]))) is None


def test_a_page_fetched_ahead_is_decoded_in_the_background(
    emulator: CountingEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding is the connector's own CPU work: done on the thread that fetched ahead, it
    overlaps the caller's writing instead of adding to it."""
    threads: list[str] = []
    original = WireResponse.decode

    def decode(self: WireResponse, report: ReportDefinition) -> pa.Table:
        if self._decoded is None:
            threads.append(threading.current_thread().name)
        return original(self, report)

    monkeypatch.setattr(WireResponse, "decode", decode)
    connector = reports(emulator.address, PROPERTY)
    _land(connector, MARCH)
    assert threads == ["MainThread"]
    assert connector.prefetch(COHORT_ACTIVITY, start=APRIL[0], end=APRIL[1]) is True
    _land(connector, APRIL)
    assert connector.answered_ahead == 1
    assert threads[1].startswith("ga4-ahead")
    assert len(threads) == 2  # taken up decoded: not decoded again
