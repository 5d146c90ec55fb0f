"""One timer that releases every paced stream of an event loop.

Why: a replay server with 500 open streams must not run 500 sleep-and-spin loops
(``core.pacing.asleep_until`` spins through the last 2 ms of every wait, which is
right for one in-process stream and ruinous for hundreds). Here each stream parks on
a future in one deadline heap, and a single loop timer wakes at the earliest
deadline and releases everything due, in deadline order.

asyncio wakes timers up to a millisecond late (epoll rounds timeouts up to whole ms),
so the timer aims ``early_ns`` before a deadline and releases every stream due within
``early_ns`` of now: releases land within about half a millisecond either side of
their deadline instead of up to a millisecond after it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from streamtape.core.pacing import Clock

EARLY_NS = 500_000
"""Half the granularity of asyncio's timer, the widest error either side of a deadline."""


class PacingScheduler:
    """Wait for absolute deadlines (ns on ``clock``), all served by one timer per loop."""

    def __init__(self, clock: Clock = time.perf_counter_ns, early_ns: int = EARLY_NS) -> None:
        self._clock = clock
        self._early = early_ns
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_for: int | None = None

    def __len__(self) -> int:
        """How many waits are parked (cancelled ones included until their time passes)."""
        return len(self._heap)

    async def until(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` (at once when it is already within reach)."""
        if deadline_ns - self._clock() <= self._early:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline_ns, next(self._order), waiter))
        if self._timer_for is None or deadline_ns < self._timer_for:
            self._arm(loop, deadline_ns)
        await waiter

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline_ns: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0, deadline_ns - self._early - self._clock()) / 1e9
        self._timer = loop.call_later(delay, self._release, loop)
        self._timer_for = deadline_ns

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = self._timer_for = None
        heap = self._heap
        horizon = self._clock() + self._early
        while heap and heap[0][0] <= horizon:
            waiter = heapq.heappop(heap)[2]
            if not waiter.done():  # a stream whose client left was cancelled meanwhile
                waiter.set_result(None)
        if heap:
            self._arm(loop, heap[0][0])
