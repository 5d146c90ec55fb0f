"""When each recorded read is released during replay.

Replay runs against absolute deadlines on one monotonic clock: ``deadline_i =
(t_i - t_0) / speed``, computed from the recorded offsets, never from a running sum
of sleeps (cumulative sleeps drift by hundreds of ms over a long stream). A late
release goes out at once and never shifts the deadlines after it.

Everything here is pure or takes its clock and sleep as arguments, so the transports
(sync and async) share one schedule and the tests need no real time.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from streamtape.core.exchange import Exchange
from streamtape.core.stats import percentiles
from streamtape.errors import PacingError

Clock = Callable[[], int]
"""A monotonic clock in nanoseconds, like ``time.perf_counter_ns``."""

SPIN_NS = 1_000_000
"""Threads sleep until this close to a deadline, then spin (``time.sleep`` overshoots ~0.1 ms)."""

ASYNC_SPIN_NS = 2_000_000
"""Tasks sleep until this close, then yield-spin (asyncio rounds timeouts up to whole ms)."""


_SPEED_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*[xX]?\s*$")


@dataclass(frozen=True)
class Pacing:
    """How fast to replay: ``speed`` divides recorded gaps, ``max_gap_s`` caps each one.

    ``speed=math.inf`` means instant (every read released at once); that is the only
    representation of instant, so ``speed`` is always a positive number.
    """

    speed: float = 1.0
    max_gap_s: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.speed, bool) or not isinstance(self.speed, (int, float)):
            raise PacingError(f"pacing speed must be a number, got {self.speed!r}")
        if math.isnan(self.speed) or self.speed <= 0:
            raise PacingError(
                f"pacing speed must be > 0 (got {self.speed!r}); use 'instant' for no delays"
            )
        if self.max_gap_s is not None and (math.isnan(self.max_gap_s) or self.max_gap_s < 0):
            raise PacingError(f"max_gap_s must be >= 0 or None, got {self.max_gap_s!r}")

    @property
    def instant(self) -> bool:
        """Whether every deadline is zero."""
        return math.isinf(self.speed)

    @classmethod
    def original(cls) -> Pacing:
        """The recorded timing, unchanged."""
        return cls(1.0)

    @classmethod
    def instantly(cls) -> Pacing:
        """No delays at all."""
        return cls(math.inf)

    @classmethod
    def parse(cls, value: str | float | Pacing) -> Pacing:
        """Accept what users write: ``"original"``, ``"instant"``, ``2.0``, ``"2x"``, ``"0.5"``.

        A speed of ``0`` (as in ``tcpreplay``-style tools) means instant.
        """
        if isinstance(value, Pacing):
            return value
        if isinstance(value, bool):
            raise PacingError(f"pacing must be 'original', 'instant' or a speed, got {value!r}")
        if isinstance(value, (int, float)):
            return cls.instantly() if value == 0 else cls(float(value))
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("original", "realtime", "1x"):
                return cls.original()
            if text in ("instant", "inf", "fast"):
                return cls.instantly()
            m = _SPEED_RE.match(text)
            if m:
                speed = float(m.group(1))
                return cls.instantly() if speed == 0 else cls(speed)
        raise PacingError(
            f"cannot understand pacing {value!r}: use 'original', 'instant', "
            "or a speed factor such as 2.0 or '2x' (twice as fast)"
        )


def _offsets_of(source: Exchange | Iterable[int]) -> list[int]:
    if isinstance(source, Exchange):
        return [source.headers_ns, *(r.t_ns for r in source.reads)]
    return [int(t) for t in source]


def schedule(source: Exchange | Iterable[int], pacing: Pacing | str | float = 1.0) -> list[int]:
    """Deadlines in ns from the replay start, one per recorded offset.

    For an ``Exchange`` the first deadline is for the response headers
    (``headers_ns``) and the rest for each read (``read.t_ns``); all recorded offsets
    count from the moment the request was sent. Plain offsets use the same origin.

    Offsets below zero count as zero, and an offset earlier than the one before it
    counts as equal to it (bytes must go out in order). Each gap is scaled from the
    absolute offsets, so rounding never accumulates; ``max_gap_s`` removes the excess
    of any longer gap and every later deadline moves earlier by exactly that much.
    """
    pacing = Pacing.parse(pacing)
    offsets = _offsets_of(source)
    if pacing.instant:
        return [0] * len(offsets)
    cap_ns = None if pacing.max_gap_s is None else round(pacing.max_gap_s * 1e9)
    deadlines: list[int] = []
    floor = 0
    prev_scaled = 0
    removed = 0
    for raw in offsets:
        floor = max(floor, raw)
        scaled = floor if pacing.speed == 1.0 else round(floor / pacing.speed)
        gap = scaled - prev_scaled
        if cap_ns is not None and gap > cap_ns:
            removed += gap - cap_ns
        deadlines.append(scaled - removed)
        prev_scaled = scaled
    return deadlines


def sleep_until(
    deadline_ns: int,
    *,
    clock: Clock = time.perf_counter_ns,
    sleep: Callable[[float], object] = time.sleep,
    spin_ns: int = SPIN_NS,
) -> int:
    """Block until ``clock() >= deadline_ns``; return how late that was (ns, >= 0).

    Sleeps coarsely until ``spin_ns`` before the deadline, then spins on the clock,
    because ``time.sleep`` alone overshoots by about 0.1 ms. Already late: returns
    at once.
    """
    while True:
        now = clock()
        remaining = deadline_ns - now
        if remaining <= 0:
            return -remaining
        if remaining > spin_ns:
            sleep((remaining - spin_ns) / 1e9)


async def asleep_until(
    deadline_ns: int,
    *,
    clock: Clock = time.perf_counter_ns,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    spin_ns: int = ASYNC_SPIN_NS,
) -> int:
    """Wait until ``clock() >= deadline_ns`` without blocking the loop; return lateness (ns).

    Sleeps until ``spin_ns`` before the deadline (asyncio rounds timeouts up to whole
    ms), then yields with ``sleep(0)`` while checking the clock, so other tasks run.
    A clock that stands still across a yield is virtual (a loop that fast-forwards its
    time, as under ``looptime``): spinning on it would never end, so the rest is one
    timed sleep, which such a loop skips at once.
    """
    before_yield: int | None = None
    while True:
        now = clock()
        remaining = deadline_ns - now
        if remaining <= 0:
            return -remaining
        if remaining > spin_ns:
            await sleep((remaining - spin_ns) / 1e9)
            before_yield = None
        elif now == before_yield:
            await sleep(remaining / 1e9)
            return max(0, clock() - deadline_ns)
        else:
            before_yield = now
            await sleep(0)


def loop_clock() -> Clock:
    """The running event loop's clock in ns, which async replay paces on.

    asyncio's own loops read ``time.monotonic``, so they get it exactly in integer ns;
    any other loop (uvloop, or ``looptime``'s fast-forwarding one) is read through
    ``loop.time()``, so code under a virtual clock sees the recorded gaps in its time.
    """
    loop = asyncio.get_running_loop()
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic_ns
    loop_time = loop.time
    return lambda: round(loop_time() * 1_000_000_000)


@dataclass(frozen=True)
class LatenessStats:
    """How late releases were, so a replay can report its own fidelity."""

    count: int
    late_count: int
    """Releases more than ``threshold_ns`` late."""
    max_ns: int
    mean_ns: float
    p50_ns: int
    p99_ns: int


@dataclass
class Pacer:
    """Releases one exchange's reads on their deadlines and records how late each was.

    ``start()`` anchors the schedule at ``clock()`` (call it when the request is
    received); ``wait(i)`` / ``await await_(i)`` block until deadline ``i``.
    """

    deadlines: Sequence[int]
    clock: Clock = time.perf_counter_ns
    lateness_ns: list[int] = field(default_factory=list)
    start_ns: int | None = None

    @classmethod
    def for_exchange(
        cls, exchange: Exchange, pacing: Pacing | str | float, clock: Clock = time.perf_counter_ns
    ) -> Pacer:
        """A pacer for the headers (index 0) and reads (index 1..n) of ``exchange``."""
        return cls(schedule(exchange, pacing), clock=clock)

    def start(self, at_ns: int | None = None) -> None:
        """Anchor deadline 0 at ``at_ns`` (default: now)."""
        self.start_ns = self.clock() if at_ns is None else at_ns

    def _absolute(self, index: int) -> int:
        if self.start_ns is None:
            self.start()
        assert self.start_ns is not None
        return self.start_ns + self.deadlines[index]

    def wait(self, index: int, sleep: Callable[[float], object] = time.sleep) -> int:
        """Block until deadline ``index``; record and return the lateness."""
        late = sleep_until(self._absolute(index), clock=self.clock, sleep=sleep)
        self.lateness_ns.append(late)
        return late

    async def await_(
        self, index: int, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> int:
        """Wait (async) until deadline ``index``; record and return the lateness."""
        late = await asleep_until(self._absolute(index), clock=self.clock, sleep=sleep)
        self.lateness_ns.append(late)
        return late

    def stats(self, threshold_ns: int = 1_000_000) -> LatenessStats:
        """Summary of the recorded lateness."""
        data = self.lateness_ns
        if not data:
            return LatenessStats(0, 0, 0, 0.0, 0, 0)
        p50, p99 = percentiles(data, (50, 99), method="nearest")
        return LatenessStats(
            count=len(data),
            late_count=sum(1 for x in data if x > threshold_ns),
            max_ns=max(data),
            mean_ns=sum(data) / len(data),
            p50_ns=round(p50),
            p99_ns=round(p99),
        )
