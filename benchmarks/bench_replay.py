"""Replay pacing error as the client sees it, against naive asyncio pacing, in one run.

Run: python benchmarks/bench_replay.py [--quick] [--runs N] [--reads N]

One in-memory chat stream (300 reads, gaps uniform in 5-40 ms, seeded; about 7 s)
is replayed at its original pacing through ``ReplayTransport`` inside a real
``httpx.Client`` (``iter_raw``) and ``httpx.AsyncClient`` (``aiter_raw``). The
client notes when each read arrives, counted from the moment it sent the request,
and compares that with the read's recorded offset. The same schedule is also paced
by three baselines with no httpx in the way: cumulative ``asyncio.sleep(gap)``,
``asyncio.sleep(deadline - now)`` to absolute deadlines without the final spin, and
a thread doing ``time.sleep(deadline - now)`` without the spin.

Prints, per method and run: median, p99 and max |error|, drift at the last read (in
ms and in % of the stream's duration) and the CPU the process used while pacing;
then the median over runs, the best run, and ratios against the baselines. Runs of
the methods take turns, so load on a shared machine spreads over all of them.

Targets (streamtape, sync and async): median |error| <= 0.2 ms, p99 <= 1 ms, drift
< 0.1 % of the duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import httpx
from _streams import chat_events

from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.core.stats import percentile
from streamtape.transport import ReplayTransport

URL = "https://api.example.test/v1/chat/completions"
REQUEST_BODY = json.dumps(
    {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    separators=(",", ":"),
).encode()
REQUEST_HEADERS = [("content-type", "application/json")]

HEADERS_MS = 150.0
"""When the response headers were recorded (time to headers)."""
FIRST_READ_MS = 200.0
"""When the first read was recorded (time to first byte)."""
GAP_MS = (5.0, 40.0)

TARGET_MEDIAN_MS = 0.2
TARGET_P99_MS = 1.0
TARGET_DRIFT_PCT = 0.1

WORDS = ("replay", "the", "bytes", "with", "pauses", "between", "them", "token", "stream")


# --------------------------------------------------------------------------- the stream


def chat_exchange(reads: int, seed: int) -> Exchange:
    """A chat-completion stream of ``reads`` reads (one SSE event each, the last [DONE])."""
    if reads < 3:
        raise ValueError("a chat stream needs at least 3 reads (role, stop, [DONE])")
    rng = random.Random(seed)

    bodies = chat_events(" " + rng.choice(WORDS) for _ in range(max(0, reads - 3)))

    t_ms = FIRST_READ_MS
    out: list[Read] = []
    for i, data in enumerate(bodies):
        if i:
            t_ms += rng.uniform(*GAP_MS)
        out.append(Read(round(t_ms * 1e6), data))
    return Exchange(
        request=RecordedRequest(
            method="POST", url=URL, headers=list(REQUEST_HEADERS), body=REQUEST_BODY
        ),
        status=200,
        response_headers=[("content-type", "text/event-stream; charset=utf-8")],
        reads=out,
        headers_ns=round(HEADERS_MS * 1e6),
        end_ns=out[-1].t_ns,
    )


# --------------------------------------------------------------------------- the methods

Clock = Callable[[], int]
clock: Clock = time.perf_counter_ns


def replay_sync(exchange: Exchange) -> list[int]:
    """Arrival offsets (ns from send) of each read through ``httpx.Client``."""
    transport = ReplayTransport([exchange], "original", allow_playback_repeats=True)
    arrivals: list[int] = []
    with httpx.Client(transport=transport) as client:
        request = client.build_request(
            "POST", URL, content=REQUEST_BODY, headers=dict(REQUEST_HEADERS)
        )
        t0 = clock()
        response = client.send(request, stream=True)
        try:
            for _ in response.iter_raw():
                arrivals.append(clock() - t0)
        finally:
            response.close()
    return arrivals


async def _replay_async(exchange: Exchange) -> list[int]:
    transport = ReplayTransport([exchange], "original", allow_playback_repeats=True)
    arrivals: list[int] = []
    async with httpx.AsyncClient(transport=transport) as client:
        request = client.build_request(
            "POST", URL, content=REQUEST_BODY, headers=dict(REQUEST_HEADERS)
        )
        t0 = clock()
        response = await client.send(request, stream=True)
        try:
            async for _ in response.aiter_raw():
                arrivals.append(clock() - t0)
        finally:
            await response.aclose()
    return arrivals


def replay_async(exchange: Exchange) -> list[int]:
    """Arrival offsets (ns from send) of each read through ``httpx.AsyncClient``."""
    return asyncio.run(_replay_async(exchange))


async def _cumulative_stream(offsets: Sequence[int], headers_ns: int) -> AsyncIterator[int]:
    # The naive way: sleep each recorded gap in turn; every overshoot adds up.
    await asyncio.sleep(headers_ns / 1e9)
    prev = headers_ns
    for t in offsets:
        await asyncio.sleep((t - prev) / 1e9)
        prev = t
        yield t


async def _deadline_stream(offsets: Sequence[int], headers_ns: int, t0: int) -> AsyncIterator[int]:
    # Absolute deadlines, but no spin: asyncio rounds each timeout up to a whole ms.
    for t in (headers_ns, *offsets):
        remaining = t0 + t - clock()
        if remaining > 0:
            await asyncio.sleep(remaining / 1e9)
        if t != headers_ns:
            yield t


async def _consume(stream: AsyncIterator[int], t0: int) -> list[int]:
    arrivals: list[int] = []
    async for _ in stream:
        arrivals.append(clock() - t0)
    return arrivals


def naive_cumulative(exchange: Exchange) -> list[int]:
    """Arrival offsets with ``await asyncio.sleep(gap)`` per read."""
    offsets = [r.t_ns for r in exchange.reads]

    async def run() -> list[int]:
        t0 = clock()
        return await _consume(_cumulative_stream(offsets, exchange.headers_ns), t0)

    return asyncio.run(run())


def naive_deadline(exchange: Exchange) -> list[int]:
    """Arrival offsets with ``await asyncio.sleep(deadline - now)`` per read (no spin)."""
    offsets = [r.t_ns for r in exchange.reads]

    async def run() -> list[int]:
        t0 = clock()
        return await _consume(_deadline_stream(offsets, exchange.headers_ns, t0), t0)

    return asyncio.run(run())


def thread_deadline(exchange: Exchange) -> list[int]:
    """Arrival offsets with ``time.sleep(deadline - now)`` per read (no spin)."""
    arrivals: list[int] = []
    t0 = clock()
    for t in (exchange.headers_ns, *(r.t_ns for r in exchange.reads)):
        remaining = t0 + t - clock()
        if remaining > 0:
            time.sleep(remaining / 1e9)
        if t != exchange.headers_ns:
            arrivals.append(clock() - t0)
    return arrivals


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    run: Callable[[Exchange], list[int]]
    ours: bool


METHODS = [
    Method("sync", "streamtape sync (httpx.Client)", replay_sync, True),
    Method("async", "streamtape async (httpx.AsyncClient)", replay_async, True),
    Method("cumul", "baseline asyncio.sleep(gap), cumulative", naive_cumulative, False),
    Method("adead", "baseline asyncio.sleep(deadline-now), no spin", naive_deadline, False),
    Method("tdead", "baseline time.sleep(deadline-now), no spin", thread_deadline, False),
]


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Result:
    median_ms: float
    p99_ms: float
    max_ms: float
    drift_ms: float
    drift_pct: float
    cpu_pct: float

    def meets(self) -> bool:
        return (
            self.median_ms <= TARGET_MEDIAN_MS
            and self.p99_ms <= TARGET_P99_MS
            and abs(self.drift_pct) < TARGET_DRIFT_PCT
        )


def measure(method: Method, exchange: Exchange) -> Result:
    expected = [r.t_ns for r in exchange.reads]
    cpu0, wall0 = time.process_time_ns(), clock()
    arrivals = method.run(exchange)
    cpu, wall = time.process_time_ns() - cpu0, clock() - wall0
    if len(arrivals) != len(expected):
        raise RuntimeError(f"{method.key}: {len(arrivals)} reads arrived, {len(expected)} sent")
    errors = sorted(abs(a - e) / 1e6 for a, e in zip(arrivals, expected, strict=True))
    drift = (arrivals[-1] - expected[-1]) / 1e6
    return Result(
        median_ms=statistics.median(errors),
        p99_ms=percentile(errors, 99, method="nearest"),
        max_ms=errors[-1],
        drift_ms=drift,
        drift_pct=100 * drift / (expected[-1] / 1e6),
        cpu_pct=100 * cpu / wall,
    )


def summarise(results: list[Result]) -> tuple[Result, Result]:
    """(median over runs of each figure, the run with the smallest p99)."""
    med = Result(
        *(
            statistics.median(getattr(r, f) for r in results)
            for f in ("median_ms", "p99_ms", "max_ms", "drift_ms", "drift_pct", "cpu_pct")
        )
    )
    best = min(results, key=lambda r: (r.p99_ms, r.median_ms))
    return med, best


HEAD = (
    f"{'method':<47} {'run':>4} {'median':>8} {'p99':>8} {'max':>8} "
    f"{'drift':>9} {'drift%':>8} {'cpu':>5}"
)


def row(label: str, run: str, r: Result) -> str:
    mark = "  ok" if r.meets() else ""
    return (
        f"{label:<47} {run:>4} {r.median_ms:>6.3f}ms {r.p99_ms:>6.3f}ms {r.max_ms:>6.2f}ms "
        f"{r.drift_ms:>+7.3f}ms {r.drift_pct:>+7.3f}% {r.cpu_pct:>4.0f}%{mark}"
    )


def ratio(a: float, b: float) -> str:
    return f"{a / b:>8.1f}x" if b > 0 else "     inf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 reads, 2 runs (~10 s in all)")
    parser.add_argument("--reads", type=int, help="reads per stream (default 300)")
    parser.add_argument("--runs", type=int, help="runs per method (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    reads = args.reads or (60 if args.quick else 300)
    runs = args.runs or (2 if args.quick else 3)

    exchange = chat_exchange(reads, args.seed)
    duration_s = exchange.reads[-1].t_ns / 1e9
    print(
        f"== replay pacing, client side: {len(exchange.reads)} reads, gaps "
        f"{GAP_MS[0]:g}-{GAP_MS[1]:g} ms, headers at {HEADERS_MS:g} ms, last read at "
        f"{duration_s:.3f} s; {runs} runs per method, taking turns =="
    )
    print("error = arrival at the client (from send) - recorded offset; |error| stats over reads")
    print(
        f"targets (streamtape): median <= {TARGET_MEDIAN_MS} ms, p99 <= {TARGET_P99_MS} ms, "
        f"|drift| < {TARGET_DRIFT_PCT} % ('ok' marks a run that meets all three)\n"
    )

    # Warm up imports, the event loop and httpx once, outside the measurements.
    warm = chat_exchange(3, args.seed)
    for method in METHODS:
        method.run(warm)

    results: dict[str, list[Result]] = {m.key: [] for m in METHODS}
    print(HEAD)
    for run in range(runs):
        for method in METHODS:
            r = measure(method, exchange)
            results[method.key].append(r)
            print(row(method.label, f"#{run + 1}", r), flush=True)

    summary = {key: summarise(rs) for key, rs in results.items()}
    print("\n-- summary: median over runs, then the best run (smallest p99) --")
    print(HEAD)
    for method in METHODS:
        med, best = summary[method.key]
        print(row(method.label, "med", med))
        print(row("", "best", best))

    print(
        "\n-- ratios: baseline / streamtape (median over runs; > 1 means streamtape is closer) --"
    )
    print(f"{'':<47} {'|err| p50':>9} {'|err| p99':>9} {'|drift|':>9}")
    for ours in (m for m in METHODS if m.ours):
        o = summary[ours.key][0]
        for base in (m for m in METHODS if not m.ours):
            b = summary[base.key][0]
            label = f"{base.key} / {ours.key}"
            print(
                f"{label:<47} {ratio(b.median_ms, o.median_ms)} {ratio(b.p99_ms, o.p99_ms)} "
                f"{ratio(abs(b.drift_ms), abs(o.drift_ms))}"
            )

    print("\n-- verdict (median over runs) --")
    for ours in (m for m in METHODS if m.ours):
        o = summary[ours.key][0]
        checks = [
            ("median", o.median_ms <= TARGET_MEDIAN_MS, f"{o.median_ms:.3f} ms"),
            ("p99", o.p99_ms <= TARGET_P99_MS, f"{o.p99_ms:.3f} ms"),
            ("drift", abs(o.drift_pct) < TARGET_DRIFT_PCT, f"{o.drift_pct:+.4f} %"),
        ]
        text = ", ".join(
            f"{name} {value} {'ok' if good else 'MISSED'}" for name, good, value in checks
        )
        print(f"{ours.label:<47} {text}")


if __name__ == "__main__":
    main()
