"""The recording proxy and the replay server under load, next to the reel-vcr proxy, in one run.

Run: python benchmarks/bench_servers.py [--quick] [--proxy-streams N] [--replay-streams N]

Every server runs in its own process, started as a user starts it (``python -m
streamtape record|serve``, ``reel record|replay``), and its CPU is read from
``/proc`` over the measured window. The client is one asyncio process that speaks
raw HTTP/1.1 and notes when each chunk of every chunked body arrives.

1. Proxy. A paced upstream (its own process) streams ``--reads`` SSE reads ``--gap``
   ms apart, each stamped with the monotonic time it was sent (one clock for all
   processes on a machine). N concurrent streams go direct, through streamtape's
   proxy, and through reel's: time to first byte and per-read latency (arrival minus
   the upstream's stamp), what each proxy adds to the direct figures, CPU, and
   whether every exchange was recorded with every byte.
2. Replay. M streams recorded through each proxy are replayed by that tool at the
   original pacing, M at once: client-side pacing error (arrival vs the recorded
   offset, counted from the request), CPU, and whether the replayed bytes equal the
   recorded ones. A bare pacer (the recordings in memory, a loop timer per read, no
   HTTP parsing) is the floor beside them. Instant mode: MB/s served vs
   ``ReplayTransport`` in-process.
3. Start-up on 10,000 exchanges: the replay server's index-only start vs decoding them.

Targets: proxy adds <= 2 ms median TTFB and <= 1 ms p99 per read, loses nothing;
replay pacing error p99 <= 2 ms at 500 streams, server CPU <= 1 core.

reel-vcr (the peer) is found as ``$REEL`` or ``reel`` on PATH (``pip install
reel-vcr``); without it, its columns say so.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _loadclient import Proc, ReelProc, Stream, fetch_all, stream_bodies

from streamtape.core.cassette import Cassette, write_cassette
from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.core.match import Matcher
from streamtape.server.library import Library
from streamtape.transport import ReplayTransport

PAD = "x" * 60  # a read about the size of a chat.completion.chunk with one token
FIRST_MS = 20.0  # the upstream's first read, before each stream's phase

# --------------------------------------------------------------------------- the upstream


def upstream_main(reads: int, gap_ms: float, first_ms: float) -> None:
    """A paced SSE upstream in this process; prints its port, serves until killed."""
    from streamtape.simulator.runner import LoopbackServer

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # Independent streams: each has its own phase within a gap, as real ones do.
        phase = zlib.crc32(body) % 1000 / 1000 * gap_ms
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await send(start)
        for i in range(reads):
            delay = t0 + (first_ms + phase + i * gap_ms) / 1e3 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            data = json.dumps(
                {"i": i, "t": time.perf_counter_ns(), "pad": PAD}, separators=(",", ":")
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {data}\n\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    server = LoopbackServer(app, options={"backlog": 4096}).start()
    print(server.port, flush=True)
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------- the floor relay


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection: what it reads, the other side writes."""

    def __init__(self, peer: _Pipe | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is not None:  # the upstream side: pass on what came before it
            self.peer.peer = self
            for data in self.peer.early:
                transport.write(data)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


def relay_main(upstream_port: int) -> None:
    """A bare TCP relay to the upstream: no HTTP, no recording, the least a proxy hop adds."""

    async def main() -> None:
        loop = asyncio.get_running_loop()

        connecting: set[asyncio.Task[Any]] = set()

        def accepted() -> _Pipe:
            client = _Pipe()
            task = loop.create_task(
                loop.create_connection(lambda: _Pipe(client), "127.0.0.1", upstream_port)
            )
            connecting.add(task)
            task.add_done_callback(connecting.discard)
            return client

        server = await loop.create_server(accepted, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- statistics


def pct(values: Sequence[float], p: float) -> float:
    data = sorted(values)
    if not data:
        return math.nan
    return data[min(len(data) - 1, max(0, math.ceil(p * len(data)) - 1))]


def ms(ns: float) -> float:
    return ns / 1e6


@dataclass
class ProxyRun:
    name: str
    ttfb_ms: list[float]
    read_ms: list[float]
    complete: int
    streams: int
    cpu_s: float
    wall_s: float
    recorded: str = ""


def proxy_figures(name: str, streams: list[Stream], cpu: float, wall: float) -> ProxyRun:
    ttfb: list[float] = []
    lat: list[float] = []
    for s in streams:
        if s.chunks:
            ttfb.append(ms(s.chunks[0][0] - s.sent_ns))
        for at, chunk in s.chunks:
            for line in chunk.split(b"\n"):
                if line.startswith(b"data: {"):
                    lat.append(ms(at - json.loads(line[6:])["t"]))
    complete = sum(1 for s in streams if s.complete)
    return ProxyRun(name, ttfb, lat, complete, len(streams), cpu, wall)


# --------------------------------------------------------------------------- phases


def run_proxy_phase(
    args: argparse.Namespace, upstream: Proc, work: Path, reel: str | None
) -> list[ProxyRun]:
    bodies = stream_bodies(args.proxy_streams, "proxy")
    runs: list[ProxyRun] = []
    asyncio.run(fetch_all(upstream.url, stream_bodies(len(bodies), "warm-up direct")))
    started = time.perf_counter()
    streams = asyncio.run(fetch_all(upstream.url, bodies))
    runs.append(proxy_figures("direct", streams, math.nan, time.perf_counter() - started))
    direct_bodies = [s.body for s in streams]
    relay = Proc([sys.executable, __file__, "_relay", str(upstream.port)], r"^(\d+)$")
    runs.append(measure_proxy("tcp relay", relay, bodies))
    relay.stop()

    tape = work / "proxy.tape"
    ours = Proc(
        [
            sys.executable,
            "-m",
            "streamtape",
            "record",
            "--upstream",
            upstream.url,
            "--cassette",
            str(tape),
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ],
        r"recording http://127\.0\.0\.1:(\d+)",
    )
    runs.append(measure_proxy("streamtape", ours, bodies))
    ours.stop()
    recorded = Cassette.open(tape).exchanges()
    exact = sum(1 for e in recorded if e.outcome.value == "complete")
    runs[-1].recorded = f"{len(recorded)} written, {exact} complete"
    del direct_bodies

    if reel is not None:
        jsonl = work / "proxy.jsonl"
        peer = ReelProc(reel, "record", jsonl, upstream.url)
        runs.append(measure_proxy("reel-vcr", peer, bodies))
        peer.stop()
        lines = jsonl.read_text().splitlines() if jsonl.exists() else []
        runs[-1].recorded = f"{len(lines)} written"
    return runs


def measure_proxy(name: str, proc: Proc, bodies: list[bytes]) -> ProxyRun:
    # A first round opens the upstream connections a running proxy keeps alive.
    asyncio.run(fetch_all(proc.url, stream_bodies(len(bodies), f"warm-up {name}")))
    cpu0, t0 = proc.cpu_s(), time.perf_counter()
    streams = asyncio.run(fetch_all(proc.url, bodies))
    return proxy_figures(name, streams, proc.cpu_s() - cpu0, time.perf_counter() - t0)


def print_proxy(runs: list[ProxyRun], reel_note: str) -> None:
    direct = runs[0]
    d_ttfb, d_p99 = statistics.median(direct.ttfb_ms), pct(direct.read_ms, 0.99)
    d_med = statistics.median(direct.read_ms)
    print(f"\nProxy: {direct.streams} concurrent paced streams")
    print(
        f"{'':<11} {'TTFB p50':>9} {'added':>7} {'read p50':>9} {'read p99':>9} {'added p99':>9} "
        f"{'complete':>9} {'CPU':>6}  recorded"
    )
    for r in runs:
        ttfb = statistics.median(r.ttfb_ms) if r.ttfb_ms else math.nan
        p50, p99 = statistics.median(r.read_ms) if r.read_ms else math.nan, pct(r.read_ms, 0.99)
        cpu = "" if math.isnan(r.cpu_s) else f"{r.cpu_s / r.wall_s:5.2f}c"
        added = "" if r is direct else f"{ttfb - d_ttfb:+7.2f}"
        added99 = "" if r is direct else f"{p99 - d_p99:+9.2f}"
        print(
            f"{r.name:<11} {ttfb:9.2f} {added:>7} {p50:9.2f} {p99:9.2f} {added99:>9} "
            f"{r.complete:>4}/{r.streams:<4} {cpu:>6}  {r.recorded}"
        )
    print(
        f"  (ms; read latency = arrival minus the upstream's send stamp; direct p50 {d_med:.2f}; "
        "tcp relay = a bare asyncio byte pipe with no HTTP and no recording: the floor a "
        "proxy process adds on this machine)"
    )
    floor_p99 = pct(runs[1].read_ms, 0.99) - d_p99
    for r in runs[2:]:
        added_ttfb = statistics.median(r.ttfb_ms) - d_ttfb
        added_p99 = pct(r.read_ms, 0.99) - d_p99
        print(
            f"  {r.name}: added TTFB {added_ttfb:+.2f} ms (target <= 2), added p99 per read "
            f"{added_p99:+.2f} ms (target <= 1; the floor adds {floor_p99:+.2f}), "
            f"{r.complete}/{r.streams} complete"
        )
    if reel_note:
        print(f"  reel-vcr: {reel_note}")


@dataclass
class ReplayRun:
    name: str
    errors_ms: list[float]
    gap_errors_ms: list[float]
    cpu_s: float
    wall_s: float
    exact: int
    streams: int
    cold_ms: float


def warm_up(url: str) -> float:
    """One unmatched request before the measured round; how long its answer took (ms).

    The first request of a kind loads that kind's recorded requests (streamtape reads
    only the indexes at start); the measured round is the steady state after it, and
    this cold figure is printed beside it.
    """
    t0 = time.perf_counter()
    asyncio.run(fetch_all(url, [b'{"warm-up": "no recording matches this"}']))
    return (time.perf_counter() - t0) * 1e3


def record_for_replay(
    args: argparse.Namespace, upstream: Proc, work: Path, reel: str | None
) -> tuple[list[bytes], Path, Path | None]:
    """M streams recorded through each proxy, for each tool to replay its own."""
    bodies = stream_bodies(args.replay_streams, "replay")
    tape = work / "replay.tape"
    ours = Proc(
        [
            sys.executable,
            "-m",
            "streamtape",
            "record",
            "--upstream",
            upstream.url,
            "--cassette",
            str(tape),
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ],
        r"recording http://127\.0\.0\.1:(\d+)",
    )
    asyncio.run(fetch_all(ours.url, bodies))
    ours.stop()
    jsonl: Path | None = None
    if reel is not None:
        jsonl = work / "replay.jsonl"
        peer = ReelProc(reel, "record", jsonl, upstream.url)
        asyncio.run(fetch_all(peer.url, bodies))
        peer.stop()
    return bodies, tape, jsonl


def replay_figures(
    name: str,
    streams: list[Stream],
    expected: list[list[tuple[int, bytes]]],
    cpu: float,
    wall: float,
    cold_ms: float,
) -> ReplayRun:
    """Pacing error per read: arrival (from the request) minus the recorded offset."""
    errors: list[float] = []
    gaps: list[float] = []
    exact = 0
    for stream, reads in zip(streams, expected, strict=True):
        exact += stream.body == b"".join(d for _, d in reads)
        got = stream.chunks
        if len(got) != len(reads):
            continue
        for (at, _), (t_ns, _) in zip(got, reads, strict=True):
            errors.append(ms(at - stream.sent_ns - t_ns))
        for i in range(1, len(got)):
            gaps.append(ms((got[i][0] - got[0][0]) - (reads[i][0] - reads[0][0])))
    return ReplayRun(name, errors, gaps, cpu, wall, exact, len(streams), cold_ms)


def measure_replay(
    name: str,
    proc: Proc,
    bodies: list[bytes],
    expected: list[list[tuple[int, bytes]]],
    warm: bool = True,
) -> ReplayRun:
    """A cold warm-up miss, then every stream at once: the figures of one replay server."""
    cold_ms = warm_up(proc.url) if warm else math.nan
    cpu0, t0 = proc.cpu_s(), time.perf_counter()
    streams = asyncio.run(fetch_all(proc.url, bodies))
    wall = time.perf_counter() - t0
    return replay_figures(name, streams, expected, proc.cpu_s() - cpu0, wall, cold_ms)


class _Pacer(asyncio.Protocol):
    """One connection to the bare pacer: finds its recording, writes each read on time."""

    def __init__(self, answers: dict[bytes, Exchange]) -> None:
        self.answers = answers
        self.t0 = time.perf_counter_ns()  # the accept, as the replay server counts from
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) if sep else -1
        if len(body) < length or length < 0:
            return
        exchange = self.answers[body[:length]]
        loop = asyncio.get_running_loop()
        base = loop.time() - (time.perf_counter_ns() - self.t0) / 1e9
        self.transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for read in exchange.reads:
            frame = b"%x\r\n%s\r\n" % (len(read.data), read.data)
            loop.call_at(base + read.t_ns / 1e9, self.transport.write, frame)
        loop.call_at(base + exchange.end_ns / 1e9, self.transport.write, b"0\r\n\r\n")


def pacer_main(tape: str) -> None:
    """A bare pacer over ``tape`` (decoded into memory): no HTTP parsing, a timer per read.

    Its collector is off: a floor has no pauses of its own.
    """
    answers = {e.request.body: e for e in Cassette.open(tape)}
    gc.disable()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Pacer(answers), "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def measure_floor(
    tape: Path, bodies: list[bytes], expected: list[list[tuple[int, bytes]]]
) -> ReplayRun:
    """The same client and streams against the bare pacer: the floor for any Python pacer.

    It holds every recording decoded in memory, parses nothing but the request body,
    counts from the accept and writes each read from its own loop timer: its error is
    what this machine, the client and asyncio's timers leave.
    """
    pacer = Proc([sys.executable, __file__, "_pacer", str(tape)], r"^(\d+)$")
    try:
        return measure_replay("bare pacer", pacer, bodies, expected, warm=False)
    finally:
        pacer.stop()


def run_replay_phase(
    args: argparse.Namespace, work: Path, reel: str | None, upstream: Proc
) -> tuple[list[ReplayRun], Path]:
    bodies, tape, jsonl = record_for_replay(args, upstream, work, reel)
    by_body = {e.request.body: e for e in Cassette.open(tape)}
    expected = [[(r.t_ns, r.data) for r in by_body[b].reads] for b in bodies]
    runs = [measure_floor(tape, bodies, expected)]
    ours = Proc(
        [
            sys.executable,
            "-m",
            "streamtape",
            "serve",
            str(tape),
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ],
        r"on http://127\.0\.0\.1:(\d+)",
    )
    runs.append(measure_replay("streamtape", ours, bodies, expected))
    ours.stop()
    if reel is not None and jsonl is not None:
        reel_expected = reel_reads(jsonl, bodies, by_body)
        peer = ReelProc(reel, "replay", jsonl)
        runs.append(measure_replay("reel-vcr", peer, bodies, reel_expected))
        peer.stop()
    return runs, tape


def reel_reads(
    jsonl: Path, bodies: list[bytes], ours: dict[bytes, Exchange]
) -> list[list[tuple[int, bytes]]]:
    """What reel recorded for each request: its chunk offsets, and the bytes the upstream sent.

    reel keeps parsed events with millisecond offsets; the bytes to compare with are the
    ones the upstream sent for the same request (recorded by streamtape, byte-exact).
    """
    recorded: dict[str, list[int]] = {}
    for line in jsonl.read_text().splitlines():
        entry = json.loads(line)
        request_body = entry.get("request", {}).get("body")
        key = json.dumps(request_body, sort_keys=True)
        chunks = entry.get("response", {}).get("stream_chunks") or []
        recorded[key] = [int(c["t_offset_ms"] * 1e6) for c in chunks]
    out = []
    for body in bodies:
        key = json.dumps(json.loads(body), sort_keys=True)
        offsets = recorded.get(key, [])
        reads = [r.data for r in ours[body].reads]
        out.append(
            list(zip(offsets, reads, strict=False))
            if len(offsets) == len(reads)
            else [(t, b"") for t in offsets] + [(0, b"".join(reads[len(offsets) :]))]
        )
    return out


def print_replay(runs: list[ReplayRun], streams: int) -> None:
    print(f"\nReplay server: {streams} concurrent streams at the original pacing")
    print(
        f"{'':<11} {'err p50':>8} {'err p99':>8} {'err max':>8} {'gap p99':>8} {'CPU':>6} "
        f"{'bytes equal':>12} {'cold miss':>10}"
    )
    for r in runs:
        abs_err = [abs(e) for e in r.errors_ms]
        gap = [abs(e) for e in r.gap_errors_ms]
        cold = f"{'-':>8}  " if math.isnan(r.cold_ms) else f"{r.cold_ms:8.1f}ms"
        print(
            f"{r.name:<11} {statistics.median(abs_err) if abs_err else math.nan:8.2f} "
            f"{pct(abs_err, 0.99):8.2f} {max(abs_err, default=math.nan):8.2f} "
            f"{pct(gap, 0.99):8.2f} "
            f"{r.cpu_s / r.wall_s:5.2f}c {r.exact:>5}/{r.streams:<5} {cold}"
        )
    print(
        "  (ms; err = |arrival - recorded offset| from the request; gap = the same from the "
        "first read, which is how reel keeps time; cold miss = the unmatched warm-up request "
        "sent first, which loads the recorded requests; bare pacer = the same recordings "
        "in memory, served with no HTTP parsing and a loop timer per read: the floor this "
        "machine and client leave any Python pacer)"
    )
    floor, ours = runs[0], runs[1]
    ours_p99 = pct([abs(e) for e in ours.errors_ms], 0.99)
    floor_p99 = pct([abs(e) for e in floor.errors_ms], 0.99)
    print(
        f"  streamtape: pacing error p99 {ours_p99:.2f} ms (target <= 2; "
        f"{ours_p99 / floor_p99:.2f}x the floor's {floor_p99:.2f}), "
        f"CPU {ours.cpu_s / ours.wall_s:.2f} core (target <= 1)"
    )


# --------------------------------------------------------------------------- instant and start-up


def big_exchange(reads: int = 4000, size: int = 250) -> Exchange:
    data = [f"data: {json.dumps({'i': i, 'pad': 'y' * size})}\n\n".encode() for i in range(reads)]
    return Exchange(
        request=RecordedRequest(
            method="POST",
            url="http://bench/v1/chat/completions",
            headers=[("content-type", "application/json")],
            body=b'{"big":1}',
        ),
        status=200,
        response_headers=[("content-type", "text/event-stream")],
        reads=[Read(i * 1000, d) for i, d in enumerate(data)],
    )


def run_instant(work: Path, repeats: int, reel: str | None) -> None:
    exchange = big_exchange()
    size = len(exchange.body)
    tape = work / "big.tape"
    write_cassette(tape, [exchange])
    server = Proc(
        [
            sys.executable,
            "-m",
            "streamtape",
            "serve",
            str(tape),
            "--listen",
            "127.0.0.1:0",
            "--pacing",
            "instant",
            "--allow-playback-repeats",
            "--quiet",
        ],
        r"on http://127\.0\.0\.1:(\d+)",
    )
    with httpx.Client(base_url=server.url) as client:
        t0 = time.perf_counter()
        for _ in range(repeats):
            with client.stream("POST", "/v1/chat/completions", content=b'{"big":1}') as r:
                got = sum(len(c) for c in r.iter_raw())
            assert got == size
        served = size * repeats / (time.perf_counter() - t0) / 1e6
    server.stop()
    transport = ReplayTransport([exchange], pacing="instant", allow_playback_repeats=True)
    with httpx.Client(transport=transport, base_url="http://bench") as client:
        t0 = time.perf_counter()
        for _ in range(repeats):
            with client.stream("POST", "/v1/chat/completions", content=b'{"big":1}') as r:
                assert sum(len(c) for c in r.iter_raw()) == size
        inproc = size * repeats / (time.perf_counter() - t0) / 1e6
    print(
        f"\nInstant replay of a {size / 1e6:.1f} MB stream ({len(exchange.reads)} reads), "
        f"{repeats} times, httpx client"
    )
    print(f"  replay server over loopback {served:8.1f} MB/s")
    print(
        f"  ReplayTransport in-process  {inproc:8.1f} MB/s   "
        f"(server / in-process = {served / inproc:.2f})"
    )


def run_startup(work: Path, count: int) -> None:
    folder = work / "many"
    folder.mkdir()
    per_file = count // 10
    for f in range(10):
        write_cassette(
            folder / f"part{f}.tape",
            [
                Exchange(
                    request=RecordedRequest(
                        method="POST",
                        url="http://bench/v1/chat/completions",
                        headers=[("content-type", "application/json")],
                        body=json.dumps({"n": f * per_file + i}).encode(),
                    ),
                    status=200,
                    response_headers=[("content-type", "text/event-stream")],
                    reads=[
                        Read(j * 10_000_000, f"data: {j} {'z' * 80}\n\n".encode())
                        for j in range(50)
                    ],
                )
                for i in range(per_file)
            ],
        )
    t0 = time.perf_counter()
    library = Library([folder])
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    everything = [e for p in sorted(folder.glob("*.tape")) for e in Cassette.open(p)]
    Matcher(everything)
    decode_s = time.perf_counter() - t0
    print(f"\nStart-up on {len(library)} exchanges in 10 cassettes")
    print(f"  replay server (indexes only)   {index_s * 1e3:8.1f} ms")
    print(
        f"  decode everything + Matcher    {decode_s * 1e3:8.1f} ms   "
        f"({decode_s / index_s:.1f}x slower)"
    )


# --------------------------------------------------------------------------- main


def cpu_pressure() -> str:
    """How much of the last minute runnable tasks waited for a CPU (Linux PSI), for context."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "CPU pressure unknown"
    avg60 = dict(part.split("=") for part in line.split()[1:]).get("avg60", "?")
    return f"CPU pressure {avg60}% (tasks waiting for a CPU, last minute)"


def find_reel() -> tuple[str | None, str]:
    reel = os.environ.get("REEL") or shutil.which("reel")
    if reel is None:
        return None, "not installed (pip install reel-vcr, or set $REEL to its executable); skipped"
    return reel, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer streams and reads")
    parser.add_argument("--proxy-streams", type=int, default=200)
    parser.add_argument("--replay-streams", type=int, default=500)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--gap", type=float, default=40.0, help="ms between upstream reads")
    parser.add_argument("--no-reel", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.proxy_streams, args.replay_streams, args.reads = 50, 100, 20
    reel, reel_note = (None, "skipped (--no-reel)") if args.no_reel else find_reel()
    print(
        f"bench_servers: {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} before "
        f"the run, {cpu_pressure()}: every figure below shares them), Python "
        f"{sys.version.split()[0]}, "
        f"{args.reads} reads {args.gap:g} ms apart per stream; reel-vcr: {reel or reel_note}"
    )
    upstream = Proc(
        [sys.executable, __file__, "_upstream", str(args.reads), str(args.gap), str(FIRST_MS)],
        r"^(\d+)$",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print_proxy(run_proxy_phase(args, upstream, work, reel), reel_note)
            runs, _ = run_replay_phase(args, work, reel, upstream)
            print_replay(runs, args.replay_streams)
            if len(runs) > 2:
                print(
                    f"  reel-vcr replayed bytes equal the recorded ones in "
                    f"{runs[2].exact}/{runs[2].streams} streams "
                    "(it stores parsed events and re-serialises them)"
                )
            run_instant(work, 5 if args.quick else 20, reel)
            run_startup(work, 2000 if args.quick else 10_000)
    finally:
        upstream.stop()
    print(f"\nafter the run: load average {os.getloadavg()[0]:.1f}, {cpu_pressure()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_upstream":
        upstream_main(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_relay":
        relay_main(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_pacer":
        pacer_main(sys.argv[2])
    else:
        main()
