"""Record through real loopback sockets, replay with no network, for httpx and httpx2.

The official openai SDK is the client wherever a user would use it; plain httpx(2)
clients check bytes and failure modes the SDK would hide.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import zstandard

from streamtape import Exchange, Outcome, Read, RecordedRequest
from streamtape.core.cassette import Cassette
from streamtape.errors import NoMatchError, ReplayExhaustedError
from streamtape.simulator.app import FAULT_HEADER, GZIP_HEADER, UpstreamServer
from streamtape.transport import (
    AsyncRecordingTransport,
    RecordingTransport,
    ReplayTransport,
)
from streamtape.transport.httpcompat import HTTP_LIBS

FAKE_KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"

HI = [{"role": "user", "content": "Tell me about streams."}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def openai_client(lib: types.ModuleType, transport: Any, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url,
        api_key=FAKE_KEY,
        max_retries=0,
        http_client=lib.Client(transport=transport),
    )


def async_openai_client(lib: types.ModuleType, transport: Any, base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=FAKE_KEY,
        max_retries=0,
        http_client=lib.AsyncClient(transport=transport),
    )


def stream_text(client: openai.OpenAI, **kwargs: Any) -> tuple[str, list[str]]:
    pieces: list[str] = []
    finish: list[str] = []
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HI, stream=True, max_tokens=40, **kwargs
    )
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    return "".join(pieces), finish


def cassette_plaintext(path: Path) -> bytes:
    """Everything the cassette file holds, decompressed (skippable frames included raw)."""
    raw = path.read_bytes()
    out = [raw]
    dctx = zstandard.ZstdDecompressor()
    with dctx.stream_reader(raw, read_across_frames=True) as reader:
        out.append(reader.read())
    return b"".join(out)


# --------------------------------------------------------------------------- SDK round trips


def test_openai_stream_records_and_replays(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    with openai_client(http_lib, RecordingTransport(tape_path), upstream.base_url) as client:
        live = stream_text(client)
    assert live[0] and live[1] in (["stop"], ["length"])

    exchanges = Cassette.open(tape_path).exchanges()
    assert len(exchanges) == 1
    recorded = exchanges[0]
    assert recorded.outcome is Outcome.COMPLETE
    assert recorded.status == 200 and recorded.is_event_stream
    assert recorded.body.endswith(b"data: [DONE]\n\n")
    assert len(recorded.reads) > 5
    offsets = [r.t_ns for r in recorded.reads]
    assert offsets == sorted(offsets) and recorded.headers_ns <= offsets[0] <= recorded.end_ns

    with openai_client(
        http_lib, ReplayTransport(tape_path, "instant"), "http://nowhere.invalid/v1"
    ) as c:
        assert stream_text(c) == live


def test_async_openai_stream_records_and_replays(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    async def collect(client: openai.AsyncOpenAI) -> str:
        out: list[str] = []
        async with client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=HI, stream=True, max_tokens=30
            )
            async for chunk in stream:
                out.extend(c.delta.content or "" for c in chunk.choices)
        return "".join(out)

    live = asyncio.run(
        collect(
            async_openai_client(http_lib, AsyncRecordingTransport(tape_path), upstream.base_url)
        )
    )
    replay = ReplayTransport(tape_path, "original")
    again = asyncio.run(collect(async_openai_client(http_lib, replay, "http://x.invalid/v1")))
    assert live and again == live


def test_replayed_bytes_equal_recorded_bytes(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": HI,
        "stream": True,
        "tools": TOOLS,
        "stream_options": {"include_usage": True},
        "n": 2,
    }
    headers = {"authorization": f"Bearer {FAKE_KEY}", FAULT_HEADER: "crlf,comments"}
    with (
        http_lib.Client(transport=RecordingTransport(tape_path)) as client,
        client.stream(
            "POST", upstream.base_url + "/chat/completions", json=body, headers=headers
        ) as response,
    ):
        live_reads = list(response.iter_raw())
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert [r.data for r in recorded.reads] == live_reads
    assert b"\r\n" in recorded.body and b": keep-alive" in recorded.body

    with (
        http_lib.Client(transport=ReplayTransport(tape_path, "instant")) as client,
        client.stream(
            "POST", "http://elsewhere.invalid/v1/chat/completions", json=body
        ) as response,
    ):
        assert response.status_code == 200
        assert list(response.iter_raw()) == live_reads


def test_every_endpoint_round_trips_through_the_sdk(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    def calls(client: openai.OpenAI) -> list[Any]:
        speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there")
        upload = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="batch")
        return [
            client.chat.completions.create(model="gpt-4o", messages=HI).model_dump(),
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once").model_dump(),
            client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).model_dump(),
            [m.id for m in client.models.list()],
            client.moderations.create(input="hello").model_dump(),
            client.images.generate(model="dall-e-3", prompt="a cat").model_dump(),
            speech.content,
            client.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", speech.content)
            ).model_dump(),
            upload.model_dump(),
            client.files.retrieve(upload.id).model_dump(),
        ]

    with openai_client(http_lib, RecordingTransport(tape_path), upstream.base_url) as client:
        live = calls(client)
    assert live[6][:4] == b"RIFF"
    with openai_client(http_lib, ReplayTransport(tape_path, "instant"), "http://x.invalid/v1") as c:
        assert calls(c) == live
    methods = [e.method for e in Cassette.open(tape_path)]
    assert methods.count("POST") == 8 and methods.count("GET") == 2


def test_polling_replays_each_answer_in_recorded_order(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    task: dict[str, Any] = {}

    def poll(client: httpx.Client) -> list[str]:
        task.update(client.post("/tasks", json={"prompt": "render"}).json())
        states = [task["status"]]
        while states[-1] not in ("succeeded", "failed"):
            states.append(client.get(f"/tasks/{task['id']}").json()["status"])
        return states

    auth = {"authorization": f"Bearer {FAKE_KEY}"}
    with httpx.Client(
        transport=RecordingTransport(tape_path), base_url=upstream.base_url, headers=auth
    ) as client:
        live = poll(client)
    assert live[-1] == "succeeded" and len(live) >= 3
    with httpx.Client(transport=ReplayTransport(tape_path, "instant"), base_url="http://x/v1") as c:
        assert poll(c) == live
        with pytest.raises(ReplayExhaustedError, match="GET"):
            c.get(f"/tasks/{task['id']}")


def test_non_2xx_and_gzip_are_byte_exact(upstream: UpstreamServer, tape_path: Path) -> None:
    with openai_client(httpx, RecordingTransport(tape_path), upstream.base_url) as client:
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-4o", messages=HI, extra_headers={FAULT_HEADER: "http-500"}
            )
    headers = {"authorization": f"Bearer {FAKE_KEY}", "accept-encoding": "gzip", GZIP_HEADER: "1"}
    with httpx.Client(transport=RecordingTransport(tape_path)) as client:
        live = client.get(upstream.base_url + "/models", headers=headers)
    gz = Cassette.open(tape_path).exchanges()[1]
    assert gz.response_header("content-encoding") == "gzip"
    assert gz.body[:2] == b"\x1f\x8b" and json.loads(gzip.decompress(gz.body)) == live.json()

    with openai_client(
        httpx, ReplayTransport(tape_path, "instant"), "http://x.invalid/v1"
    ) as client:
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o", messages=HI)
    with httpx.Client(transport=ReplayTransport(tape_path, "instant")) as client:
        again = client.get("http://x.invalid/v1/models", headers=headers)
        assert again.json() == live.json() and again.headers["content-encoding"] == "gzip"


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_disk(upstream: UpstreamServer, tape_path: Path) -> None:
    client = openai.OpenAI(
        base_url=upstream.base_url,
        api_key=FAKE_KEY,
        max_retries=0,
        organization="org-secretorg123",
        project="proj_secretproj123",
        http_client=httpx.Client(transport=RecordingTransport(tape_path)),
    )
    with client:
        stream_text(client, extra_headers={"cookie": "session=abcdef123456"})
    plain = cassette_plaintext(tape_path)
    for secret in (FAKE_KEY.encode(), b"org-secretorg123", b"proj_secretproj123", b"abcdef123456"):
        assert secret not in plain
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert "request.header:authorization" in recorded.redacted
    assert recorded.request.header("authorization") == "<redacted>"
    # Replay needs no key at all and still matches.
    with openai_client(httpx, ReplayTransport(tape_path, "instant"), "http://x.invalid/v1") as c:
        assert stream_text(c)[0]


# --------------------------------------------------------------------------- failure modes


def test_upstream_drop_mid_stream_is_kept_and_replayed(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    body = {"model": "gpt-4o-mini", "messages": HI, "stream": True}
    headers = {"authorization": f"Bearer {FAKE_KEY}", FAULT_HEADER: "drop"}
    got: list[bytes] = []
    with http_lib.Client(transport=RecordingTransport(tape_path)) as client:
        with (
            pytest.raises(http_lib.RemoteProtocolError),
            client.stream(
                "POST", upstream.base_url + "/chat/completions", json=body, headers=headers
            ) as response,
        ):
            got.extend(response.iter_raw())
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert recorded.outcome is Outcome.UPSTREAM_ERROR and recorded.error
    assert b"".join(got) == recorded.body and got

    replayed: list[bytes] = []
    with http_lib.Client(transport=ReplayTransport(tape_path, "instant")) as client:
        with (
            pytest.raises(http_lib.RemoteProtocolError, match="replayed"),
            client.stream("POST", "http://x.invalid/v1/chat/completions", json=body) as response,
        ):
            replayed.extend(response.iter_raw())
    assert replayed == got


def test_client_hang_up_keeps_what_arrived(upstream: UpstreamServer, tape_path: Path) -> None:
    body = {"model": "gpt-4o-mini", "messages": HI, "stream": True, "max_tokens": 200}
    with (
        httpx.Client(transport=RecordingTransport(tape_path)) as client,
        client.stream(
            "POST",
            upstream.base_url + "/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {FAKE_KEY}"},
        ) as response,
    ):
        raw = response.iter_raw()
        first = [next(raw), next(raw)]
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert recorded.outcome is Outcome.CLIENT_CLOSED
    assert recorded.body.startswith(b"".join(first)) and not recorded.body.endswith(b"[DONE]\n\n")


def test_connection_refused_is_recorded_and_replayed(
    http_lib: types.ModuleType, tape_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1/models"
    with (
        http_lib.Client(transport=RecordingTransport(tape_path)) as client,
        pytest.raises(http_lib.ConnectError),
    ):
        client.get(dead)
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert recorded.status == 0 and recorded.outcome is Outcome.UPSTREAM_ERROR
    with (
        http_lib.Client(transport=ReplayTransport(tape_path)) as client,
        pytest.raises(http_lib.ConnectError, match="replayed"),
    ):
        client.get(dead)


def test_unmatched_request_names_the_nearest_recording(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    with openai_client(httpx, RecordingTransport(tape_path), upstream.base_url) as client:
        client.embeddings.create(model="text-embedding-3-small", input="Hi")
    replay = ReplayTransport(tape_path, "instant")
    with httpx.Client(transport=replay) as client, pytest.raises(NoMatchError) as info:
        client.post(
            "http://x.invalid/v1/embeddings",
            json={"model": "text-embedding-3-small", "input": "Hello", "encoding_format": "base64"},
        )
    message = str(info.value)
    assert "/v1/embeddings" in message and "input" in message and "Hi" in message


# --------------------------------------------------------------------------- timing and teeing


def _gated_server(events: list[bytes], gate: list[threading.Event]) -> tuple[str, threading.Thread]:
    """A raw-socket SSE server that sends event i+1 only once gate[i] is set."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for i, event in enumerate(events):
                conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                if i < len(gate) and not gate[i].wait(10):
                    return
            conn.sendall(b"0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return url, thread


def test_each_read_reaches_the_caller_before_the_next_exists(tape_path: Path) -> None:
    events = [b'data: {"n": %d}\n\n' % i for i in range(4)]
    gate = [threading.Event() for _ in events[:-1]]
    url, thread = _gated_server(events, gate)
    with (
        httpx.Client(transport=RecordingTransport(tape_path)) as client,
        client.stream("POST", url, json={}) as response,
    ):
        seen = []
        for i, chunk in enumerate(response.iter_raw()):
            seen.append(chunk)
            if i < len(gate):
                gate[i].set()  # the server sends the next event only now
    thread.join(5)
    assert seen == events
    assert [r.data for r in Cassette.open(tape_path).exchanges()[0].reads] == events


def test_original_pacing_never_releases_a_read_early(tape_path: Path) -> None:
    gaps_ns = [0, 8_000_000, 3_000_000, 15_000_000, 1_000_000, 6_000_000]
    reads, t = [], 20_000_000
    for i, gap in enumerate(gaps_ns):
        t += gap
        reads.append((t, b"data: %d\n\n" % i))
    exchange = Exchange(
        request=RecordedRequest(method="GET", url="http://up.invalid/v1/models"),
        status=200,
        headers_ns=10_000_000,
        end_ns=t,
        response_headers=[("content-type", "text/event-stream")],
        reads=[Read(ts, data) for ts, data in reads],
    )
    transport = ReplayTransport([exchange], "original")
    with httpx.Client(transport=transport) as client:
        start = time.perf_counter_ns()
        with client.stream("GET", "http://x.invalid/v1/models") as response:
            arrivals = [time.perf_counter_ns() - start for _ in response.iter_raw()]
    assert len(arrivals) == len(reads)
    for arrived, (recorded, _) in zip(arrivals, reads, strict=True):
        assert arrived >= recorded  # never early; lateness is measured in the benchmark


@pytest.fixture(scope="module")
def fast_upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(speed=float("inf")) as server:
        yield server


def test_50_threads_record_into_one_cassette(
    fast_upstream: UpstreamServer, tape_path: Path
) -> None:
    results: dict[int, str] = {}
    with openai_client(httpx, RecordingTransport(tape_path), fast_upstream.base_url) as shared:

        def one(i: int) -> None:
            embedding = shared.embeddings.create(model="text-embedding-3-small", input=f"t{i}")
            results[i] = embedding.model_dump_json()

        workers = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    exchanges = Cassette.open(tape_path).exchanges()
    assert len(results) == 50 and len(exchanges) == 50
    inputs = sorted(json.loads(e.request.body)["input"] for e in exchanges)
    assert inputs == sorted(f"t{i}" for i in range(50))
    assert all(e.outcome is Outcome.COMPLETE and e.status == 200 for e in exchanges)


def test_200_tasks_stream_into_one_cassette(fast_upstream: UpstreamServer, tape_path: Path) -> None:
    async def many() -> list[str]:
        transport = AsyncRecordingTransport(tape_path)
        async with async_openai_client(httpx, transport, fast_upstream.base_url) as client:

            async def task(i: int) -> str:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    stream=True,
                    max_tokens=5,
                    messages=[{"role": "user", "content": f"task {i}"}],
                )
                return "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )

            return await asyncio.gather(*(task(i) for i in range(200)))

    texts = asyncio.run(many())
    exchanges = Cassette.open(tape_path).exchanges()
    assert len(exchanges) == 200
    prompts = sorted(json.loads(e.request.body)["messages"][0]["content"] for e in exchanges)
    assert prompts == sorted(f"task {i}" for i in range(200))
    for exchange in exchanges:
        assert exchange.outcome is Outcome.COMPLETE
        assert exchange.body.endswith(b"data: [DONE]\n\n")
    assert sorted(texts) != [] and all(texts)


def test_unmatched_request_reaches_the_sdk_user_as_is(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    with openai_client(httpx, RecordingTransport(tape_path), upstream.base_url) as client:
        client.models.list()
    with openai_client(
        httpx, ReplayTransport(tape_path, "instant"), "http://x.invalid/v1"
    ) as client:
        with pytest.raises(NoMatchError, match="/v1/models/gpt-4o") as info:
            client.models.retrieve("gpt-4o")
    assert 'recorded "/v1/models"' in str(info.value)


def test_read_timeout_on_a_stalled_stream_is_recorded_and_replayed(
    http_lib: types.ModuleType, upstream: UpstreamServer, tape_path: Path
) -> None:
    body = {"model": "gpt-4o-mini", "messages": HI, "stream": True}
    headers = {"authorization": f"Bearer {FAKE_KEY}", FAULT_HEADER: "stall"}
    got: list[bytes] = []
    # The upstream stalls for ever after a few events, so the client's read timeout fires.
    with http_lib.Client(transport=RecordingTransport(tape_path), timeout=0.5) as client:
        with (
            pytest.raises(http_lib.ReadTimeout),
            client.stream(
                "POST", upstream.base_url + "/chat/completions", json=body, headers=headers
            ) as response,
        ):
            got.extend(response.iter_raw())
    recorded = Cassette.open(tape_path).exchanges()[0]
    assert recorded.outcome is Outcome.TIMEOUT and "Timeout" in (recorded.error or "")
    assert got and recorded.body == b"".join(got)

    replayed: list[bytes] = []
    with http_lib.Client(transport=ReplayTransport(tape_path, "instant")) as client:
        with (
            pytest.raises(http_lib.ReadTimeout, match="replayed"),
            client.stream("POST", "http://x.invalid/v1/chat/completions", json=body) as response,
        ):
            replayed.extend(response.iter_raw())
    assert replayed == got


@pytest.mark.skipif(len(HTTP_LIBS) < 2, reason="needs both httpx and httpx2")
def test_inner_transport_of_the_other_library(upstream: UpstreamServer, tape_path: Path) -> None:
    outer, inner = HTTP_LIBS[1], HTTP_LIBS[0]
    auth = {"authorization": f"Bearer {FAKE_KEY}"}
    recorder = RecordingTransport(tape_path, transport=inner.HTTPTransport())
    with outer.Client(transport=recorder, headers=auth) as client:
        live = client.get(upstream.base_url + "/models")
    assert isinstance(live, outer.Response) and live.json()["data"]
    assert Cassette.open(tape_path).exchanges()[0].body == live.content
