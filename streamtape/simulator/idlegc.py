"""Collect the young garbage when no request is in flight, not in the middle of streams.

Why: a burst of 500 paced streams brings about 50,000 live objects into being
(coroutines, futures, the HTTP protocol's state), and CPython's collector walks all
of them at every 10th young collection: a 3-5 ms pause in which every read falling
due waits, the largest share of a busy server's pacing error. A process that serves
streams defers that trigger (``defer_young_collections``) and ``IdleCollector`` runs
the same collections the moment its last request has ended, so the work is the same
and no stream waits for it. A server that is never idle still collects, at the
deferred trigger.
"""

from __future__ import annotations

import gc
from typing import Any

DUE_AFTER = 10
"""Young collections after which CPython collects the middle generation (its default)."""

DEFERRED = 1000
"""The middle generation's trigger while deferred: reached only by a server never idle."""


def defer_young_collections() -> None:
    """Move the middle generation's automatic trigger out of the way, process-wide.

    Only for a process that runs an ``IdleCollector``; the other thresholds stay.
    """
    young, _, old = gc.get_threshold()
    gc.set_threshold(young, DEFERRED, old)


def collect_due() -> int:
    """Run the collection CPython's counters say is due, if any; how many objects it freed.

    Only while deferred: otherwise CPython's own triggers run, and a process that did
    not defer (a test suite running ``streamtape.serve``) keeps its collector as it was.
    """
    _, deferred, old_after = gc.get_threshold()
    if deferred != DEFERRED:
        return 0
    _, middle, old = gc.get_count()
    if old >= old_after:
        return gc.collect(2)
    if middle >= DUE_AFTER:
        return gc.collect(1)
    return 0


class IdleCollector:
    """ASGI middleware: counts the HTTP requests in flight and collects when none is left."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:  # the response is out: a pause now delays nobody
                collect_due()
