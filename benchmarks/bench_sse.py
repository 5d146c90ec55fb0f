"""How fast streamtape's SSE parser is, against the peers, on the streams we record.

Run: ``python benchmarks/bench_sse.py`` (``--quick`` for a smaller run).

Prints MB/s for streamtape and, in the same run, the openai SDK's ``SSEDecoder``
(``_iter_chunks`` + ``decode``, what ``openai.Stream`` runs) and httpx-sse (its line
decoder and event decoder over incrementally decoded text, what ``EventSource.iter_sse``
runs) when importable, with ratios. Then the linearity check: one huge event fed in
64-byte reads, at 1, 2 and 4 MB; time should double with size, not quadruple.
"""

from __future__ import annotations

import argparse
import codecs
import json
import random
import sys
import time
from collections.abc import Callable, Iterator

from streamtape.core.sse import SSEParser

Runner = Callable[[list[bytes]], int]
"""Parses one stream given as its reads; returns the number of events."""


def openai_stream(n_events: int, seed: int = 7, line_end: str = "\n") -> bytes:
    """A synthetic chat.completion.chunk stream shaped like the OpenAI API's."""
    rng = random.Random(seed)
    words = ["the", " quick", " brown", " fox", " jumps", "é", " über", "\u2028", " 42", ","]
    out = []
    for i in range(n_events):
        delta: dict[str, object] = {"content": "".join(rng.choices(words, k=rng.randint(1, 12)))}
        if i == 0:
            delta = {"role": "assistant", "content": "", "refusal": None}
        chunk = {
            "id": "chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7",
            "object": "chat.completion.chunk",
            "created": 1727346172,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_5050236cbd",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }
        out.append(f"data: {json.dumps(chunk, separators=(',', ':'))}{line_end}{line_end}")
    out.append(f"data: [DONE]{line_end}{line_end}")
    return "".join(out).encode()


def events_as_reads(body: bytes, sep: bytes) -> list[bytes]:
    """One read per event, as the API's streaming usually arrives."""
    pieces = body.split(sep)
    return [p + sep for p in pieces[:-1]]


def fixed_reads(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def run_streamtape(reads: list[bytes]) -> int:
    parser = SSEParser()
    feed = parser.feed
    count = 0
    for t, r in enumerate(reads):
        count += len(feed(r, t))
    return count + len(parser.finish())


def run_openai(reads: list[bytes]) -> int:
    from openai._streaming import SSEDecoder

    return sum(1 for _ in SSEDecoder().iter_bytes(iter(reads)))


def run_httpx_sse(reads: list[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    def lines() -> Iterator[str]:
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = SSELineDecoder()
        for r in reads:
            yield from lines.decode(text.decode(r))
        if rest := text.decode(b"", final=True):
            yield from lines.decode(rest)
        yield from lines.flush()

    decoder = SSEDecoder()
    count = 0
    for line in lines():
        if decoder.decode(line.rstrip("\n")) is not None:
            count += 1
    return count


def peers() -> dict[str, Runner]:
    found: dict[str, Runner] = {"streamtape": run_streamtape}
    try:
        import openai._streaming  # noqa: F401

        found["openai SSEDecoder"] = run_openai
    except ImportError:
        print("(openai not importable: skipped)")
    try:
        import httpx_sse._decoders  # noqa: F401

        found["httpx-sse"] = run_httpx_sse
    except ImportError:
        print("(httpx-sse not importable: skipped; `pip install httpx-sse` to compare)")
    return found


def best_time(fn: Runner, streams: list[list[bytes]], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = sum(fn(reads) for reads in streams)
        best = min(best, time.perf_counter() - t0)
    return best, count


def throughput(
    title: str, streams: list[list[bytes]], runners: dict[str, Runner], repeat: int
) -> None:
    size = sum(len(r) for reads in streams for r in reads)
    n_reads = sum(map(len, streams))
    print(f"\n{title}: {len(streams)} streams, {size / 1e6:.1f} MB in {n_reads} reads")
    base = None
    for name, fn in runners.items():
        secs, count = best_time(fn, streams, repeat)
        mbs = size / secs / 1e6
        if base is None:
            base = mbs
            print(f"  {name:<20} {mbs:8.1f} MB/s  {count / secs / 1e3:8.0f} k events/s")
        else:
            print(f"  {name:<20} {mbs:8.1f} MB/s  streamtape is {base / mbs:5.1f}x faster")


def linearity(sizes_mb: list[int]) -> None:
    print("\none huge event (a single data line) fed in 64-byte reads:")
    first: tuple[int, float] | None = None
    for mb in sizes_mb:
        body = b"data: " + b"x" * (mb * 1024 * 1024) + b"\n\n"
        reads = fixed_reads(body, 64)
        t0 = time.perf_counter()
        parser = SSEParser()
        n = sum(len(parser.feed(r)) for r in reads)
        secs = time.perf_counter() - t0
        assert n == 1
        if first is None:
            first = (mb, secs)
            print(f"  {mb} MB: {secs:6.3f} s")
        else:
            ratio = secs / first[1]
            linear = mb / first[0]
            note = f"{ratio:.2f}x the {first[0]} MB time, linear {linear:.0f}x"
            print(f"  {mb} MB: {secs:6.3f} s  ({note})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer streams, fewer repeats")
    args = ap.parse_args()
    n_streams = 10 if args.quick else 60
    events_per_stream = 400  # a long-ish completion: 400 chunks, about 120 KB
    repeat = 3 if args.quick else 7

    runners = peers()
    lf = [openai_stream(events_per_stream, seed=i) for i in range(n_streams)]
    crlf = [openai_stream(events_per_stream, seed=i, line_end="\r\n") for i in range(n_streams)]
    big = b"".join(lf)
    print(f"python {sys.version.split()[0]}; typical event {len(big) // (len(lf) * 401)} bytes")
    throughput("LF streams, each one buffer", [[b] for b in lf], runners, repeat)
    per_event = [events_as_reads(b, b"\n\n") for b in lf]
    throughput("LF streams, one read per event", per_event, runners, repeat)
    throughput("LF streams, 1500-byte reads", [fixed_reads(b, 1500) for b in lf], runners, repeat)
    throughput("CRLF streams, each one buffer", [[b] for b in crlf], runners, repeat)
    per_event = [events_as_reads(b, b"\r\n\r\n") for b in crlf]
    throughput("CRLF streams, one read per event", per_event, runners, repeat)
    throughput("all LF streams joined, one buffer", [[big]], runners, repeat)
    linearity([1, 2, 4])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
