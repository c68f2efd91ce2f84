"""Requests sent before they are needed, their answers kept until the caller gets there.

Over a long backfill the server's time to compute each report adds up: a month of a large
property can take GA seconds. Sending the next partition's first requests while this one is
decoded and written hides that time, at the price of holding a page or two in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

# Requests waiting to be taken up; the oldest is dropped beyond that. A backfill keeps up to
# two partitions' worth in flight (each report's totals and first page), the next one's sent
# before this one's are all taken.
MAX_PENDING = 8
# An answer older than this is not used: the data may have moved on since.
MAX_AGE_SECONDS = 600.0


class AnswersAhead:
    """Requests sent on one background thread, keyed by their serialized bytes.

    `take` hands over the answer to exactly the request that was sent ahead, or None, and then
    the caller asks in the usual way; so a failed or missing answer costs nothing but time.
    """

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[bytes, tuple[float, Future[Any]]] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self.taken = 0  # answers handed over

    def submit(self, request: Any, answer: Callable[[Any], Any]) -> None:
        """Start `answer(request)` in the background, unless the same request is pending."""
        key = type(request).serialize(request)
        with self._lock:
            if key in self._pending:
                return
            while len(self._pending) >= MAX_PENDING:
                _, (_, oldest) = self._pending.popitem(last=False)
                oldest.cancel()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="ga4-ahead")
            self._pending[key] = (self._clock(), self._pool.submit(answer, request))

    def take(self, request: Any) -> Any:
        """The answer to `request` if it was sent ahead and came back fine, else None."""
        if not self._pending:
            return None
        key = type(request).serialize(request)
        with self._lock:
            item = self._pending.pop(key, None)
        if item is None:
            return None
        sent, future = item
        if self._clock() - sent > MAX_AGE_SECONDS:
            future.cancel()
            return None
        try:
            answer = future.result()
        except Exception as exc:  # the caller sends it again and meets the error itself
            log.info("%s: a request sent ahead failed (%s); sending it again",
                     self._name, type(exc).__name__)  # fmt: skip
            return None
        self.taken += answer is not None
        return answer

    def close(self) -> None:
        """Forget every pending answer; a request in flight finishes on its own."""
        with self._lock:
            pending = [future for _, future in self._pending.values()]
            self._pending.clear()
            pool, self._pool = self._pool, None
        for future in pending:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
