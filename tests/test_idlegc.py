"""The servers' collector: young garbage is collected when no request is in flight."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from streamtape.simulator.idlegc import (
    DEFERRED,
    DUE_AFTER,
    IdleCollector,
    collect_due,
    defer_young_collections,
)
from streamtape.simulator.runner import LoopbackServer


class Cycle:
    """An object that only the collector can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


class GarbageApp:
    """``/garbage`` leaves a cycle behind once a middle collection is due; ``/hold`` waits."""

    def __init__(self) -> None:
        self.freed = threading.Event()
        self.release = threading.Event()
        self.holding = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/hold":
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 10)
        elif scope["path"] == "/garbage":
            for _ in range(DUE_AFTER):  # the young collections a burst of streams runs
                gc.collect(0)
            weakref.finalize(Cycle(), self.freed.set)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def collector_paused() -> Iterator[tuple[int, int, int]]:
    """Counters at zero and only explicit collections; yields the thresholds it restores."""
    before = gc.get_threshold()
    gc.collect()
    gc.disable()
    try:
        yield before
    finally:
        gc.enable()
        gc.set_threshold(*before)


@pytest.fixture
def no_automatic_collection(collector_paused: tuple[int, int, int]) -> None:
    """Deferred, with only explicit collections running: what frees the cycle is the middleware."""
    defer_young_collections()


@pytest.mark.usefixtures("no_automatic_collection")
def test_garbage_is_collected_once_the_last_request_ends() -> None:
    app = GarbageApp()
    with LoopbackServer(IdleCollector(app)) as server:
        assert httpx.get(f"{server.url}/garbage").status_code == 200
        assert app.freed.wait(10)


@pytest.mark.usefixtures("no_automatic_collection")
def test_nothing_is_collected_while_a_request_is_in_flight() -> None:
    app = GarbageApp()
    with LoopbackServer(IdleCollector(app)) as server:
        held = threading.Thread(target=httpx.get, args=(f"{server.url}/hold",), daemon=True)
        held.start()
        assert app.holding.wait(10)
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/garbage").status_code == 200
            # The /garbage request's end has run by the time the next one is answered.
            assert client.get("/ping").status_code == 200
            assert not app.freed.is_set()
        app.release.set()
        held.join(10)
        assert app.freed.wait(10)


@pytest.mark.usefixtures("no_automatic_collection")
def test_collect_due_runs_only_what_the_counters_say() -> None:
    assert collect_due() == 0
    for _ in range(DUE_AFTER):
        gc.collect(0)
    Cycle()
    assert collect_due() >= 1
    assert gc.get_count()[1] == 0


@pytest.mark.usefixtures("collector_paused")
def test_a_process_that_did_not_defer_keeps_its_collector() -> None:
    for _ in range(DUE_AFTER):
        gc.collect(0)
    Cycle()
    assert collect_due() == 0
    assert gc.get_count()[1] == DUE_AFTER


def test_deferring_moves_only_the_middle_trigger(collector_paused: tuple[int, int, int]) -> None:
    young, _, old = collector_paused
    defer_young_collections()
    assert gc.get_threshold() == (young, DEFERRED, old)
