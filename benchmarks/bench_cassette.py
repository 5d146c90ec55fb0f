"""Cassette size and speed, measured in one run against the raw bytes and a vcrpy cassette.

Run: python benchmarks/bench_cassette.py

Prints: the size of one realistic 300-token chat stream as raw SSE, as a
streamtape cassette and as a vcrpy YAML cassette (ratios against both); how long
listing and fully decoding 1,000 exchanges take; append throughput and latency.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from streamtape.core.cassette import Cassette, write_cassette
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.core.stats import percentiles

STORY = (
    "the a lighthouse keeper watched storm waves break against rocks while gulls circled "
    "above old harbor town night fell slowly and lamp turned its patient beam across dark "
    "water ships passed safely she wrote letters never sent remembering summers when her "
    "brother sailed north beyond islands fog rolled in each morning bringing quiet voices "
    "of sea tide wind salt rope bell stair glass light keeper's journal recorded every "
    "vessel name weather change and small kindness from villagers who brought bread"
)
WORDS = STORY.split()
PUNCT = [",", ".", "", "", "", "", ";", "!", "?"]
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def chat_stream(tokens: int, seed: int) -> Exchange:
    """One chat-completion stream shaped like the OpenAI API's: one read per event."""
    rng = random.Random(seed)
    cid = "chatcmpl-" + "".join(rng.choice(ALNUM) for _ in range(29))
    created = 1_727_346_172 + seed

    def event(choices: list[dict[str, object]], usage: object = None) -> bytes:
        obj: dict[str, object] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_5050236cbd",
            "choices": choices,
        }
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    def delta(d: dict[str, object] | None, finish: str | None = None) -> list[dict[str, object]]:
        return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

    events = [event(delta({"role": "assistant", "content": "", "refusal": None}))]
    for i in range(tokens):
        word = rng.choice(WORDS) + rng.choice(PUNCT)
        events.append(event(delta({"content": word if i == 0 else " " + word})))
    events.append(event(delta({}, "stop")))
    usage = {"prompt_tokens": 31, "completion_tokens": tokens, "total_tokens": tokens + 31}
    events.append(event([], usage))
    events.append(b"data: [DONE]\n\n")

    headers_ns = rng.randrange(180_000_000, 450_000_000)
    t = headers_ns + rng.randrange(200_000, 2_000_000)
    reads = []
    for ev in events:
        reads.append(Read(t, ev))
        t += int(rng.lognormvariate(16.3, 0.6))  # ~12 ms median gap, long tail
    body = json.dumps(
        {
            "model": "gpt-4o",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Write a story about a lighthouse."}],
        }
    ).encode()
    return Exchange(
        request=RecordedRequest(
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            headers=[
                ("accept", "application/json"),
                ("content-type", "application/json"),
                ("user-agent", "OpenAI/Python 1.51.0"),
                ("x-stainless-lang", "python"),
            ],
            body=body,
        ),
        status=200,
        response_headers=[
            ("date", "Thu, 26 Sep 2024 10:22:52 GMT"),
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
            ("openai-processing-ms", str(rng.randrange(150, 400))),
            ("x-ratelimit-remaining-tokens", str(rng.randrange(29000, 30000))),
            ("x-request-id", "req_" + "".join(rng.choice(ALNUM) for _ in range(32))),
        ],
        reads=reads,
        started_at_ns=1_727_346_172_000_000_000 + seed * 7_919_000_000,
        headers_ns=headers_ns,
        end_ns=t,
        outcome=Outcome.COMPLETE,
    )


def vcrpy_yaml(ex: Exchange) -> bytes:
    """The same exchange as vcrpy writes it (its own serializer and cassette dict)."""
    from vcr.request import Request  # type: ignore[import-untyped]
    from vcr.serialize import serialize  # type: ignore[import-untyped]
    from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

    def grouped(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in headers:
            out.setdefault(k, []).append(v)
        return out

    request = Request(ex.method, ex.url, ex.request.body, grouped(ex.request.headers))
    response = {
        "status": {"code": ex.status, "message": "OK"},
        "headers": grouped(ex.response_headers),
        "body": {"string": ex.body},
    }
    text: str = serialize({"requests": [request], "responses": [response]}, yamlserializer)
    return text.encode()


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def best_of(n: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-cassette-"))
    print("== size: one 300-token chat stream ==")
    ex = chat_stream(300, seed=1)
    raw = len(ex.body)
    one = tmp / "one.tape"
    write_cassette(one, [ex])
    tape = one.stat().st_size
    record = next(Cassette.open(one).entries()).record_bytes
    yaml_size = len(vcrpy_yaml(ex))
    print(f"events / reads          {len(ex.reads):>9}")
    print(f"raw SSE body            {raw:>9} B")
    print(f"vcrpy YAML cassette     {yaml_size:>9} B   (no timing)")
    print(f"streamtape cassette     {tape:>9} B   (record {record} B + header {tape - record} B)")
    print(f"ratio raw / streamtape  {raw / tape:>9.1f}x  (target >= 10x)")
    print(f"ratio vcrpy / streamtape{yaml_size / tape:>9.1f}x")

    print("\n== reading 1,000 exchanges ==")
    exs = [chat_stream(300, seed=i) for i in range(1000)]
    many = tmp / "many.tape"
    write_cassette(many, exs)
    size = many.stat().st_size
    raw_total = sum(len(e.body) for e in exs)
    print(
        f"file                    {size / 1e6:9.2f} MB  ({raw_total / size:.1f}x smaller than raw)"
    )
    cassette = Cassette.open(many)
    listing = best_of(5, lambda: sum(1 for _ in cassette.entries()))
    decode = best_of(3, lambda: sum(1 for _ in cassette))
    print(f"list (index only)       {ms(listing)}  (target < 100 ms)")
    rate = f"{1000 / decode:,.0f} exchanges/s, {raw_total / decode / 1e6:,.0f} MB/s of SSE"
    print(f"full decode             {ms(decode)}  ({rate})")
    print(f"decode / list           {decode / listing:9.1f}x")

    print("\n== appending ==")
    for label, durable, count in [("durable=False", False, 1000), ("durable=True", True, 200)]:
        path = tmp / f"append-{durable}.tape"
        lat = []
        with Cassette.open(path, durable=durable) as c:
            c.append(exs[0])  # creates the file and header; not timed
            t0 = time.perf_counter()
            for e in exs[:count]:
                t = time.perf_counter()
                c.append(e)
                lat.append(time.perf_counter() - t)
            total = time.perf_counter() - t0
        p50, p99 = percentiles(lat, (50, 99), method="nearest")
        print(
            f"{label:14} 1 thread  {count / total:>8,.0f} exchanges/s   per append p50 "
            f"{p50 * 1e6:7.0f} us  p99 {p99 * 1e6:7.0f} us"
        )
    threads = 8
    path = tmp / "threads.tape"
    with Cassette.open(path) as c:
        c.append(exs[0])
        chunks = [exs[i::threads] for i in range(threads)]

        def append_all(part: list[Exchange]) -> None:
            for e in part:
                c.append(e)

        workers = [threading.Thread(target=append_all, args=(part,)) for part in chunks]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        total = time.perf_counter() - t0
    rate = f"{1000 / total:>8,.0f} exchanges/s (CPUs: {os.cpu_count()})"
    print(f"durable=False  {threads} threads {rate}")

    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
