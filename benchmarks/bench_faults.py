"""What a fault plan costs a replay, against the same replay without one, in one run.

Run: python benchmarks/bench_faults.py [--quick] [--reads N] [--requests N]

One in-memory chat stream (``--reads`` reads, one SSE event each) is replayed
instantly through ``ReplayTransport`` in a real ``httpx.Client`` (``iter_raw``),
``--requests`` times per method:

- ``no plan``: ``faults=None`` (the path every replay takes);
- ``plan, no hit``: a plan whose faults select another exchange (the bookkeeping only);
- ``cut:token``: a cut after the middle token (format facts: parse + decode to find it);
- ``stall+slow``: timing faults (the event boundaries, shifting deadlines; 0 s stall);
- ``framing``: ``keepalive`` and ``crlf`` (every read rewritten);
- floor: joining the recorded reads in a loop (no HTTP library at all).

Prints the median µs per request of each, the ratio to ``no plan`` and to the floor,
and the pure plan time (``FaultPlan.apply`` alone) per stream.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx
from bench_replay import REQUEST_BODY, REQUEST_HEADERS, URL, chat_exchange

from streamtape import FaultPlan, Pacing
from streamtape.core.exchange import Exchange
from streamtape.formats.fault_facts import fault_facts
from streamtape.transport import ReplayTransport
from streamtape.transport.faulting import replay_schedule


def replay_many(exchange: Exchange, faults: list[str] | None, requests: int) -> list[float]:
    """Seconds per request of `requests` instant replays under `faults`."""
    transport = ReplayTransport([exchange], "instant", allow_playback_repeats=True, faults=faults)
    times: list[float] = []
    with httpx.Client(transport=transport) as client:
        for _ in range(requests):
            t0 = time.perf_counter()
            request = client.build_request(
                "POST", URL, content=REQUEST_BODY, headers=dict(REQUEST_HEADERS)
            )
            response = client.send(request, stream=True)
            for _ in response.iter_raw():
                pass
            response.close()
            times.append(time.perf_counter() - t0)
    return times


def floor(exchange: Exchange, requests: int) -> list[float]:
    times: list[float] = []
    for _ in range(requests):
        t0 = time.perf_counter()
        b"".join(r.data for r in exchange.reads)
        times.append(time.perf_counter() - t0)
    return times


def plan_only(exchange: Exchange, faults: list[str], requests: int) -> list[float]:
    """Seconds per `FaultPlan.apply` on the paced schedule, without any HTTP."""
    plan = FaultPlan.parse(faults)
    schedule = replay_schedule(exchange, Pacing.instantly())
    times: list[float] = []
    for i in range(requests):
        t0 = time.perf_counter()
        plan.for_request(exchange=i, attempt=0).apply(schedule, fault_facts(exchange))
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    requests = 40 if args.quick else args.requests
    exchange = chat_exchange(args.reads, seed=1)
    middle = max(1, (args.reads - 3) // 2)
    methods: dict[str, Callable[[], list[float]]] = {
        "no plan": lambda: replay_many(exchange, None, requests),
        "plan, no hit": lambda: replay_many(exchange, ["crlf,exchange=999999"], requests),
        "cut:token": lambda: replay_many(exchange, [f"cut:token={middle}"], requests),
        "stall+slow": lambda: replay_many(
            exchange, [f"stall:0:event={middle}", "slow:2:events=1-10"], requests
        ),
        "framing": lambda: replay_many(exchange, ["keepalive", "crlf"], requests),
        "floor (join reads)": lambda: floor(exchange, requests),
    }
    for run in methods.values():  # warm up every path once
        run()
    medians = {name: statistics.median(run()) * 1e6 for name, run in methods.items()}
    base = medians["no plan"]
    low = medians["floor (join reads)"]
    print(f"instant replay of a {args.reads}-read chat stream, {requests} requests per method")
    print(f"{'method':<22}{'median µs/request':>20}{'vs no plan':>12}{'vs floor':>12}")
    for name, us in medians.items():
        print(f"{name:<22}{us:>20.1f}{us / base:>11.2f}x{us / low:>11.1f}x")
    for faults in ([f"cut:token={middle}"], ["keepalive", "crlf"]):
        us = statistics.median(plan_only(exchange, faults, requests)) * 1e6
        print(f"FaultPlan.apply alone, {'+'.join(faults)}: {us:.1f} µs per stream")


if __name__ == "__main__":
    main()
