"""Faults a server can inject, so clients prove they survive what real GA properties do.

Everything is drawn from one seeded generator under a lock, so a seed and the same sequence
of requests give the same faults. Counted faults (a dropped page, a short page) count
RunReport requests from 1 in the order the server receives them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from connectors.emulator.errors import EmulatorError

logger = logging.getLogger(__name__)

# What GA's front end answers when a backend is briefly away, and what a client sees when the
# connection drops under a response. Clients retry all of these.
UNAVAILABLE_MESSAGE = "The service is currently unavailable."
DEADLINE_MESSAGE = "Deadline expired before operation could complete."
DROPPED_MESSAGE = "Connection reset by peer"


@dataclass(frozen=True)
class FaultOptions:
    """Per-server fault injection; all off by default.

    Rates are per RunReport request, from 0 to 1. ``drop_page`` aborts the Nth RunReport
    (UNAVAILABLE, as a connection dropped mid-pagination looks to a client); ``short_page``
    makes the Nth RunReport return half the rows it should, once, with the true rowCount.
    ``concurrency_exhausted_rate`` answers RESOURCE_EXHAUSTED as GA does when too many
    requests for the property are in flight.
    """

    seed: int = 0
    unavailable_rate: float = 0.0
    deadline_exceeded_rate: float = 0.0
    concurrency_exhausted_rate: float = 0.0
    latency_seconds: float = 0.0
    drop_page: int | None = None
    short_page: int | None = None

    def __post_init__(self) -> None:
        rates = (
            self.unavailable_rate,
            self.deadline_exceeded_rate,
            self.concurrency_exhausted_rate,
        )
        if not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rates) > 1.0:
            # One draw split into bands: past 1, the later kinds would silently get less.
            raise ValueError(
                "fault rates add up to more than 1; they are shares of the same requests"
            )
        if self.latency_seconds < 0:
            raise ValueError("latency_seconds must not be negative")


class FaultInjector:
    """Decides, request by request, which fault (if any) a RunReport meets."""

    def __init__(
        self, options: FaultOptions, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.options = options
        self._sleep = sleep
        self._random = random.Random(options.seed)
        self._lock = threading.Lock()
        self._requests = 0
        self.injected: dict[str, int] = {}

    def before_report(self, concurrency_message: str) -> int:
        """Sleep the added latency, maybe raise a fault; returns the request's number."""
        options = self.options
        with self._lock:
            self._requests += 1
            number = self._requests
            draw = self._random.random()
        if options.latency_seconds:
            self._sleep(options.latency_seconds)
        faults = (
            (options.unavailable_rate, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE),
            (options.deadline_exceeded_rate, grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE_MESSAGE),
            (
                options.concurrency_exhausted_rate,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                concurrency_message,
            ),
        )
        # One draw, split into bands, so adding a fault kind never reshuffles the others.
        threshold = 0.0
        for rate, code, message in faults:
            threshold += rate
            if draw < threshold:
                self._count(code.name)
                raise EmulatorError(code, message)
        return number

    def after_report(self, number: int) -> None:
        """Drop the response of the configured page, as a broken connection would."""
        if number == self.options.drop_page:
            self._count("DROPPED")
            raise EmulatorError(grpc.StatusCode.UNAVAILABLE, DROPPED_MESSAGE)

    def page_rows(self, number: int, rows: int) -> int:
        """How many of the ``rows`` due this request actually sends."""
        if number == self.options.short_page and rows > 1:
            self._count("SHORT_PAGE")
            return rows // 2
        return rows

    def _count(self, name: str) -> None:
        with self._lock:
            self.injected[name] = self.injected.get(name, 0) + 1
        logger.debug("injected fault %s", name)
