"""What recording costs per read: RecordingTransport against the bare inner transport.

Run: python benchmarks/bench_record.py [--quick] [--reads N] [--runs N] [--scan-response]

An in-process inner transport answers every request with the same pre-made chat
stream (300 reads of ``data: {chunk}\\n\\n``) straight from memory, so the only
difference between the bare transport and ``RecordingTransport`` wrapping it is our
own work. Each request is timed from ``send`` to the last read (streaming) and from
the last read to the end of the body (where the recorder redacts, encodes and
appends the exchange to a cassette in a temporary directory). Bare and recording
requests take turns; the figures are medians over many requests.

Prints, for sync (``httpx.Client`` / ``iter_raw``) and async (``httpx.AsyncClient`` /
``aiter_raw``): per-read time bare and recorded, the streaming overhead per read, the
body-end cost per exchange and amortised per read, the total overhead per read, and
the ratio recorded / bare. Then the same against a real loopback upstream
(``UpstreamServer(speed=math.inf)``) for context, where the network dominates.

Target: total overhead (streaming + amortised append) <= 20 us per read (median).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _streams import chat_events

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.simulator.app import UpstreamServer
from streamtape.transport import AsyncRecordingTransport, RecordingTransport

URL = "https://api.example.test/v1/chat/completions"
TARGET_US = 20.0
REDACT: dict[str, bool] = {}
"""The recorders' ``redact=`` options (``--scan-response`` adds the body key-shape search)."""

clock: Callable[[], int] = time.perf_counter_ns


def chat_chunks(reads: int) -> list[bytes]:
    """``reads`` SSE events shaped like the OpenAI API's chat stream, the last [DONE]."""

    return chat_events(f" word{i % 97}" for i in range(max(0, reads - 3)))


def request_body(model: str = "gpt-4o-mini") -> bytes:
    return json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "Say hi."}]}
    ).encode()


HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-key"}
RESPONSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8")]


# --------------------------------------------------------------------------- in-memory inner


class _MemoryStream(httpx.SyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class _AsyncMemoryStream(httpx.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class MemoryTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request at once with the same chunks, from memory."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = chunks

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, headers=RESPONSE_HEADERS, stream=_MemoryStream(self.chunks))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, headers=RESPONSE_HEADERS, stream=_AsyncMemoryStream(self.chunks))


class TimedCassette(Cassette):
    """A cassette that notes how long each append (encode, compress, write) takes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.append_ns: list[int] = []

    def append(self, exchange: Exchange) -> None:
        t = clock()
        super().append(exchange)
        self.append_ns.append(clock() - t)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """One request: send to last read, last read to body closed, and how many reads."""

    stream_ns: int
    tail_ns: int
    reads: int


def time_sync(client: httpx.Client, url: str, body: bytes) -> Timing:
    request = client.build_request("POST", url, content=body, headers=HEADERS)
    t0 = clock()
    response = client.send(request, stream=True)
    reads = 0
    last = t0
    try:
        for _ in response.iter_raw():
            reads += 1
            last = clock()
    finally:
        response.close()
    return Timing(last - t0, clock() - last, reads)


async def time_async(client: httpx.AsyncClient, url: str, body: bytes) -> Timing:
    request = client.build_request("POST", url, content=body, headers=HEADERS)
    t0 = clock()
    response = await client.send(request, stream=True)
    reads = 0
    last = t0
    try:
        async for _ in response.aiter_raw():
            reads += 1
            last = clock()
    finally:
        await response.aclose()
    return Timing(last - t0, clock() - last, reads)


@dataclass(frozen=True)
class Comparison:
    label: str
    reads: float
    bare_read_us: float
    rec_read_us: float
    stream_over_us: float
    tail_over_us: float
    append_us: float

    @property
    def tail_per_read_us(self) -> float:
        return self.tail_over_us / self.reads

    @property
    def total_over_us(self) -> float:
        return self.stream_over_us + self.tail_per_read_us

    @property
    def ratio(self) -> float:
        bare = self.bare_read_us
        return (bare + self.total_over_us) / bare if bare > 0 else math.inf


def compare(label: str, bare: list[Timing], rec: list[Timing], appends: list[int]) -> Comparison:
    """Medians of per-read times; the streaming overhead is the median of paired differences."""
    reads = statistics.median(t.reads for t in rec)
    per_read = [t.stream_ns / t.reads / 1e3 for t in bare]
    per_read_rec = [t.stream_ns / t.reads / 1e3 for t in rec]
    pairs = list(zip(per_read, per_read_rec, strict=True))
    tails = [(r.tail_ns - b.tail_ns) / 1e3 for b, r in zip(bare, rec, strict=True)]
    return Comparison(
        label=label,
        reads=reads,
        bare_read_us=statistics.median(per_read),
        rec_read_us=statistics.median(per_read_rec),
        stream_over_us=statistics.median(r - b for b, r in pairs),
        tail_over_us=statistics.median(tails),
        append_us=statistics.median(appends) / 1e3 if appends else math.nan,
    )


def run_sync(
    label: str, url: str, inner: Any, cassette: TimedCassette, body: bytes, runs: int
) -> Comparison:
    bare_t: list[Timing] = []
    rec_t: list[Timing] = []
    recorder = RecordingTransport(cassette, transport=inner, redact=REDACT)
    with httpx.Client(transport=inner) as bare, httpx.Client(transport=recorder) as rec:
        for _ in range(max(3, runs // 10)):  # warm up both paths and the cassette file
            time_sync(bare, url, body)
            time_sync(rec, url, body)
        cassette.append_ns.clear()
        for i in range(runs):
            if i % 2:
                bare_t.append(time_sync(bare, url, body))
                rec_t.append(time_sync(rec, url, body))
            else:
                rec_t.append(time_sync(rec, url, body))
                bare_t.append(time_sync(bare, url, body))
    return compare(label, bare_t, rec_t, cassette.append_ns)


def run_async(
    label: str, url: str, inner: Any, cassette: TimedCassette, body: bytes, runs: int
) -> Comparison:
    async def go() -> Comparison:
        bare_t: list[Timing] = []
        rec_t: list[Timing] = []
        recorder = AsyncRecordingTransport(cassette, transport=inner, redact=REDACT)
        async with (
            httpx.AsyncClient(transport=inner) as bare,
            httpx.AsyncClient(transport=recorder) as rec,
        ):
            for _ in range(max(3, runs // 10)):
                await time_async(bare, url, body)
                await time_async(rec, url, body)
            cassette.append_ns.clear()
            for i in range(runs):
                if i % 2:
                    bare_t.append(await time_async(bare, url, body))
                    rec_t.append(await time_async(rec, url, body))
                else:
                    rec_t.append(await time_async(rec, url, body))
                    bare_t.append(await time_async(bare, url, body))
        return compare(label, bare_t, rec_t, cassette.append_ns)

    return asyncio.run(go())


HEAD = (
    f"{'':<9} {'reads':>6} {'bare/read':>10} {'rec/read':>10} {'stream+':>9} "
    f"{'body end+':>10} {'(append)':>9} {'end/read':>9} {'total+':>9} {'ratio':>7}"
)


def row(c: Comparison, target: bool) -> str:
    verdict = ""
    if target:
        verdict = "  ok" if c.total_over_us <= TARGET_US else "  MISSED"
    return (
        f"{c.label:<9} {c.reads:>6.0f} {c.bare_read_us:>8.2f}us {c.rec_read_us:>8.2f}us "
        f"{c.stream_over_us:>7.2f}us {c.tail_over_us:>8.1f}us {c.append_us:>7.1f}us "
        f"{c.tail_per_read_us:>7.2f}us {c.total_over_us:>7.2f}us {c.ratio:>6.2f}x{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a few seconds)")
    parser.add_argument("--reads", type=int, default=300, help="reads per stream (default 300)")
    parser.add_argument("--runs", type=int, help="requests per variant (default 400)")
    parser.add_argument(
        "--scan-response",
        action="store_true",
        help="record with redact={'scan_response': True} (key-shape search of bodies)",
    )
    args = parser.parse_args()
    if args.scan_response:
        REDACT["scan_response"] = True
    runs = args.runs or (60 if args.quick else 400)
    loop_runs = max(10, runs // 10)

    chunks = chat_chunks(args.reads)
    inner = MemoryTransport(chunks)
    body = request_body()
    raw = sum(map(len, chunks))
    print(
        f"== recording overhead per read: {len(chunks)} reads ({raw} B) from memory, "
        f"{runs} requests per variant, bare and recorded taking turns =="
    )
    print("bare/read, rec/read: send to last read / reads (median); stream+: their difference")
    print("body end+: extra time from last read to body closed, per exchange (redact + append)")
    print(
        "(append): Cassette.append alone; end/read: body end+ / reads; total+ = stream+ + end/read"
    )
    print(f"target: total+ <= {TARGET_US:g} us per read\n")

    with tempfile.TemporaryDirectory() as tmp:
        results = [
            run_sync("sync", URL, inner, TimedCassette(Path(tmp) / "sync.tape"), body, runs),
            run_async("async", URL, inner, TimedCassette(Path(tmp) / "async.tape"), body, runs),
        ]
        print(HEAD)
        for c in results:
            print(row(c, target=True))

        print(
            f"\n== for context: real loopback upstream (UpstreamServer(speed=inf)), "
            f"{loop_runs} requests per variant =="
        )
        print("reads per response vary with how TCP coalesces writes; figures per read as above")
        with UpstreamServer(speed=math.inf) as server:
            url = server.base_url + "/chat/completions"
            loop_body = json.dumps(
                {
                    "model": "gpt-4o-mini",
                    "stream": True,
                    "max_tokens": args.reads,
                    "messages": [{"role": "user", "content": "Tell me a long story."}],
                }
            ).encode()
            with httpx.HTTPTransport() as sync_inner:
                loop_sync = run_sync(
                    "sync tcp",
                    url,
                    sync_inner,
                    TimedCassette(Path(tmp) / "loop.tape"),
                    loop_body,
                    loop_runs,
                )
            loop_async = run_async(
                "async tcp",
                url,
                httpx.AsyncHTTPTransport(),
                TimedCassette(Path(tmp) / "aloop.tape"),
                loop_body,
                loop_runs,
            )
        print(HEAD)
        for c in (loop_sync, loop_async):
            print(row(c, target=False))

    print("\n-- verdict --")
    for c in results:
        status = "ok" if c.total_over_us <= TARGET_US else "MISSED"
        print(
            f"{c.label:<6} overhead {c.total_over_us:.2f} us/read "
            f"(streaming {c.stream_over_us:.2f} + body end {c.tail_per_read_us:.2f}) "
            f"vs target {TARGET_US:g} us: {status}; recorded / bare = {c.ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
