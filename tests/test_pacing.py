"""Pacing: the schedule math, and the waiting loops driven by an injected clock."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.core.pacing import (
    LatenessStats,
    Pacer,
    Pacing,
    PacingError,
    asleep_until,
    schedule,
    sleep_until,
)
from streamtape.errors import StreamtapeError

MS = 1_000_000


def _exchange(headers_ns: int, reads: list[int]) -> Exchange:
    return Exchange(
        request=RecordedRequest(method="GET", url="http://x/"),
        status=200,
        headers_ns=headers_ns,
        reads=[Read(t, b"x") for t in reads],
    )


# --- Pacing.parse -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "speed"),
    [
        ("original", 1.0),
        ("instant", math.inf),
        ("INSTANT", math.inf),
        (2.0, 2.0),
        (1, 1.0),
        ("2x", 2.0),
        ("0.5", 0.5),
        (" 1.5X ", 1.5),
        ("1e1", 10.0),
        (0, math.inf),
        ("0", math.inf),
    ],
)
def test_parse_accepts(value: str | float, speed: float) -> None:
    assert Pacing.parse(value).speed == speed


def test_parse_passes_pacing_through() -> None:
    p = Pacing(3.0, max_gap_s=0.1)
    assert Pacing.parse(p) is p


@pytest.mark.parametrize("value", ["fastest", "", "-2", "2y", "x", True, -1.0, math.nan])
def test_parse_rejects_junk(value: str | float) -> None:
    with pytest.raises(PacingError) as info:
        Pacing.parse(value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StreamtapeError)


def test_constructor_validates() -> None:
    with pytest.raises(PacingError, match="instant"):
        Pacing(0)
    with pytest.raises(PacingError):
        Pacing(1.0, max_gap_s=-1)


# --- schedule -----------------------------------------------------------------------


def test_original_speed_keeps_offsets_exactly() -> None:
    ex = _exchange(5 * MS, [6 * MS, 20 * MS, 21 * MS + 7])
    assert schedule(ex, "original") == [5 * MS, 6 * MS, 20 * MS, 21 * MS + 7]


def test_speed_divides_absolute_offsets() -> None:
    assert schedule([10, 20, 30, 45], 2.0) == [5, 10, 15, 22]
    # 3 is odd: each deadline is rounded from its own absolute offset, not summed gaps.
    offsets = [i * 1_000_001 for i in range(1000)]
    got = schedule(offsets, 3.0)
    assert got == [round(t / 3.0) for t in offsets]


def test_slower_than_original() -> None:
    assert schedule([10, 20], 0.5) == [20, 40]


def test_instant_is_all_zero() -> None:
    assert schedule(_exchange(5 * MS, [7 * MS, 9 * MS]), "instant") == [0, 0, 0]


def test_max_gap_caps_and_shifts_later_deadlines() -> None:
    # Gaps: 5 ms (headers), 1 ms, 100 ms, 2 ms, 50 ms; cap 10 ms.
    ex = _exchange(5 * MS, [6 * MS, 106 * MS, 108 * MS, 158 * MS])
    got = schedule(ex, Pacing(1.0, max_gap_s=0.010))
    assert got == [5 * MS, 6 * MS, 16 * MS, 18 * MS, 28 * MS]


def test_max_gap_applies_to_first_gap_and_after_speed() -> None:
    got = schedule([100 * MS, 110 * MS], Pacing(2.0, max_gap_s=0.020))
    # Scaled: 50 ms, 55 ms; the first gap (50 ms) is capped at 20 ms.
    assert got == [20 * MS, 25 * MS]


def test_max_gap_zero_collapses_everything() -> None:
    assert schedule([3, 9, 27], Pacing(1.0, max_gap_s=0)) == [0, 0, 0]


def test_negative_and_unsorted_offsets_are_clamped() -> None:
    assert schedule([-5, 10, 4, 20], 1.0) == [0, 10, 10, 20]


def test_empty() -> None:
    assert schedule([], 1.0) == []
    assert schedule(_exchange(0, []), 1.0) == [0]


@given(
    st.lists(st.integers(min_value=-(10**6), max_value=10**12), max_size=50),
    st.sampled_from([0.25, 1.0, 3.0, 7.5, math.inf]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=5)),
)
def test_schedule_is_monotonic_nonnegative_and_capped(
    offsets: list[int], speed: float, cap: float | None
) -> None:
    got = schedule(offsets, Pacing(speed, max_gap_s=cap))
    assert len(got) == len(offsets)
    assert all(d >= 0 for d in got)
    assert got == sorted(got)
    if cap is not None:
        cap_ns = round(cap * 1e9)
        gaps = [b - a for a, b in zip([0, *got], got, strict=False)]
        assert all(g <= cap_ns for g in gaps)


# --- waiting with an injected clock ---------------------------------------------------


class FakeClock:
    """A clock that advances by ``tick`` per reading and by the requested amount per sleep."""

    def __init__(self, now: int = 0, tick: int = 100_000) -> None:
        self.now = now
        self.tick = tick
        self.sleeps: list[float] = []
        self.readings = 0

    def __call__(self) -> int:
        self.readings += 1
        t = self.now
        self.now += self.tick
        return t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1e9)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def test_sleep_until_sleeps_coarsely_then_spins() -> None:
    clock = FakeClock(now=0, tick=100_000)
    late = sleep_until(50 * MS, clock=clock, sleep=clock.sleep)
    # One coarse sleep to 1 ms before the deadline, measured from the first reading.
    assert clock.sleeps == [pytest.approx(0.049)]
    # Then only clock readings (spin): 49.1 ms, 49.2 ms, ... 50.0 ms.
    assert clock.readings == 1 + 10
    assert late == 0


def test_sleep_until_already_late_returns_at_once() -> None:
    clock = FakeClock(now=10 * MS)
    late = sleep_until(4 * MS, clock=clock, sleep=clock.sleep)
    assert late == 6 * MS
    assert clock.sleeps == []
    assert clock.readings == 1


def test_sleep_until_within_spin_window_does_not_sleep() -> None:
    clock = FakeClock(now=0, tick=250_000)
    assert sleep_until(MS // 2, clock=clock, sleep=clock.sleep) == 0
    assert clock.sleeps == []


def test_sleep_until_resleeps_after_early_wakeup() -> None:
    """A sleep that returns early (signal, coarse timer) leads to another sleep, not a long spin."""
    now = [0]
    sleeps: list[float] = []

    def clock() -> int:
        now[0] += 1000
        return now[0]

    def short_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += round(seconds * 1e9) // 2

    sleep_until(100 * MS, clock=clock, sleep=short_sleep)
    assert len(sleeps) > 3
    assert sleeps == sorted(sleeps, reverse=True)


def test_asleep_until_sleeps_then_yields() -> None:
    clock = FakeClock(now=0, tick=500_000)
    late = asyncio.run(asleep_until(30 * MS, clock=clock, sleep=clock.asleep))
    assert clock.sleeps[0] == pytest.approx(0.028)
    # After the coarse sleep, only zero-length yields.
    assert clock.sleeps[1:] and all(s == 0 for s in clock.sleeps[1:])
    assert late == 0


def test_asleep_until_late_returns_at_once() -> None:
    clock = FakeClock(now=9 * MS)
    assert asyncio.run(asleep_until(MS, clock=clock, sleep=clock.asleep)) == 8 * MS
    assert clock.sleeps == []


def test_asleep_until_lets_other_tasks_run_while_spinning() -> None:
    ran: list[int] = []

    async def other() -> None:
        for i in range(3):
            ran.append(i)
            await asyncio.sleep(0)

    async def main() -> None:
        deadline = time.perf_counter_ns() + MS
        await asyncio.gather(asleep_until(deadline), other())

    asyncio.run(main())
    assert ran == [0, 1, 2]


def test_real_clock_never_returns_before_deadline() -> None:
    for delay in (0, 200_000, 3 * MS):
        deadline = time.perf_counter_ns() + delay
        sleep_until(deadline)
        assert time.perf_counter_ns() >= deadline

    async def main() -> None:
        for delay in (0, 200_000, 3 * MS):
            deadline = time.perf_counter_ns() + delay
            await asleep_until(deadline)
            assert time.perf_counter_ns() >= deadline

    asyncio.run(main())


# --- Pacer ------------------------------------------------------------------------------


def test_pacer_releases_on_deadlines_and_records_lateness() -> None:
    clock = FakeClock(now=1000 * MS, tick=1000)
    pacer = Pacer.for_exchange(_exchange(2 * MS, [5 * MS, 9 * MS]), "original", clock=clock)
    pacer.start()
    assert pacer.wait(0, sleep=clock.sleep) == 0
    assert clock.now >= 1002 * MS
    clock.now = 1020 * MS  # the consumer stalled: read 1 is late ...
    assert pacer.wait(1, sleep=clock.sleep) == 15 * MS
    # ... and read 2 keeps its own deadline instead of shifting.
    clock.now = 1020 * MS
    assert pacer.wait(2, sleep=clock.sleep) == 11 * MS
    stats = pacer.stats()
    assert stats == LatenessStats(
        count=3, late_count=2, max_ns=15 * MS, mean_ns=26 * MS / 3, p50_ns=11 * MS, p99_ns=15 * MS
    )


def test_pacer_async_and_empty_stats() -> None:
    clock = FakeClock(now=0, tick=1000)
    pacer = Pacer([0, 3 * MS], clock=clock)
    assert pacer.stats().count == 0

    async def main() -> None:
        pacer.start(at_ns=0)
        await pacer.await_(0, sleep=clock.asleep)
        await pacer.await_(1, sleep=clock.asleep)

    asyncio.run(main())
    assert clock.now >= 3 * MS
    assert pacer.lateness_ns == [0, 0]


def test_asleep_until_on_a_virtual_clock_sleeps_the_rest_in_one_go() -> None:
    """A loop clock that stands still while tasks yield (looptime) must not be spun on."""
    now = [0]
    sleeps: list[float] = []

    def clock() -> int:
        return now[0]  # moves only when the loop sleeps, as a fast-forwarding loop does

    async def virtual_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += round(seconds * 1e9)

    late = asyncio.run(asleep_until(30 * MS, clock=clock, sleep=virtual_sleep))
    # The coarse sleep, one yield that shows the clock standing still, then the rest.
    assert sleeps == [pytest.approx(0.028), 0, pytest.approx(0.002)]
    assert late == 0 and now[0] == 30 * MS
