"""Faults on real recordings, seen through the official SDKs over ReplayTransport.

The cassettes are recorded once per session from the simulated upstream over real
sockets; each test replays them with one fault plan and checks what the client meets:
an SDK's retry on 429/529, the exact bytes before a cut, a read timeout on a stall.
"""

from __future__ import annotations

import asyncio
import json
import time
import types
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from streamtape import (
    Cassette,
    Exchange,
    RecordingTransport,
    ReplayTransport,
    assemble,
    parse_sse,
)
from streamtape.formats.fault_facts import fault_facts
from streamtape.simulator.app import UpstreamServer

KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
NOWHERE = "http://nowhere.invalid"
HI = [{"role": "user", "content": "Tell me about streams."}]
CHAT = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 24}
MESSAGES = {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 24}
RESPONSES = {"model": "gpt-4o-mini", "input": "Tell me about streams.", "max_output_tokens": 24}
RETRY_429 = "status:429:attempts=2,retry-after=0.01"


def openai_client(transport: Any, *, retries: int = 2, read: float = 5.0) -> openai.OpenAI:
    timeout = httpx2.Timeout(5.0, read=read)
    return openai.OpenAI(
        base_url=f"{NOWHERE}/v1",
        api_key=KEY,
        max_retries=retries,
        http_client=httpx2.Client(transport=transport, timeout=timeout),
    )


def anthropic_client(transport: Any, *, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=NOWHERE,
        api_key=KEY,
        max_retries=retries,
        http_client=httpx2.Client(transport=transport),
    )


def chat_text(client: openai.OpenAI) -> str:
    stream = client.chat.completions.create(**CHAT, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def message_text(client: anthropic.Anthropic) -> str:
    with client.messages.stream(**MESSAGES) as stream:
        return "".join(stream.text_stream)


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> dict[str, Path]:
    """One chat, one Responses and one Messages stream, recorded through the SDKs."""
    folder = tmp_path_factory.mktemp("fault-tapes")
    paths = {name: folder / f"{name}.tape" for name in ("chat", "responses", "messages")}
    oa = openai.OpenAI(
        base_url=upstream.base_url,
        api_key=KEY,
        max_retries=0,
        http_client=httpx2.Client(transport=RecordingTransport(paths["chat"])),
    )
    with oa:
        chat_text(oa)
    oa = openai.OpenAI(
        base_url=upstream.base_url,
        api_key=KEY,
        max_retries=0,
        http_client=httpx2.Client(transport=RecordingTransport(paths["responses"])),
    )
    with oa:
        list(oa.responses.create(**RESPONSES, stream=True))
    an = anthropic.Anthropic(
        base_url=upstream.url,
        api_key=KEY,
        max_retries=0,
        http_client=httpx2.Client(transport=RecordingTransport(paths["messages"])),
    )
    with an:
        message_text(an)
    return paths


def only(path: Path) -> Exchange:
    (exchange,) = Cassette.open(path).exchanges()
    return exchange


# ------------------------------------------------------------------------- status faults


def test_openai_sdk_retries_two_429s_then_gets_the_recorded_stream(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["chat"])).choices[0].message.content
    transport = ReplayTransport(tapes["chat"], "instant", faults=[RETRY_429])
    with openai_client(transport) as client:
        assert chat_text(client) == recorded
    fired = transport.fired
    assert [(f.exchange, f.attempt) for f in fired] == [(0, 0), (1, 1)], fired
    assert all("HTTP 429" in str(f) for f in fired)


def test_without_retries_the_429_reaches_the_caller_with_the_apis_body(
    tapes: dict[str, Path],
) -> None:
    transport = ReplayTransport(tapes["chat"], "instant", faults=[RETRY_429])
    with openai_client(transport, retries=0) as client, pytest.raises(openai.RateLimitError) as exc:
        chat_text(client)
    assert exc.value.code == "rate_limit_exceeded"
    assert exc.value.response.headers["retry-after-ms"] == "10"


def test_async_openai_sdk_retries_a_503_on_exchange_0(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["chat"])).choices[0].message.content
    transport = ReplayTransport(tapes["chat"], "instant", faults=["status:503:exchange=0"])

    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{NOWHERE}/v1",
            api_key=KEY,
            max_retries=1,
            http_client=httpx2.AsyncClient(transport=transport),
        ) as client:
            stream = await client.chat.completions.create(**CHAT, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run()) == recorded
    assert [str(f.fault) for f in transport.fired] == ["status:503:exchange=0"]


def test_anthropic_sdk_retries_529_overloaded_then_streams(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["messages"])).content[0].text
    faults = ["status:529:attempts=1,retry-after=0.01"]
    transport = ReplayTransport(tapes["messages"], "instant", faults=faults)
    with anthropic_client(transport) as client:
        assert message_text(client) == recorded
    t2 = ReplayTransport(tapes["messages"], "instant", faults=faults)
    with anthropic_client(t2, retries=0) as client, pytest.raises(anthropic.APIStatusError) as exc:
        message_text(client)
    assert exc.value.status_code == 529
    assert exc.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_a_connection_dropped_before_the_headers_is_retried(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["chat"])).choices[0].message.content
    transport = ReplayTransport(tapes["chat"], "instant", faults=["drop:headers,attempts=1"])
    with openai_client(transport) as client:
        # the SDK backs off about half a second before its retry
        assert chat_text(client) == recorded
    assert "before the headers" in str(transport.fired[0])


# ---------------------------------------------------------------------------- cuts


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_cut_after_token_n_sends_exactly_the_recorded_prefix(
    tapes: dict[str, Path], http_lib: types.ModuleType, n: int, reset: bool
) -> None:
    exchange = only(tapes["chat"])
    end = fault_facts(exchange).token_end(exchange.body, n)
    assert end is not None
    spec = f"cut:token={n}" + (",reset" if reset else "")
    transport = ReplayTransport(tapes["chat"], "instant", faults=[spec])
    got = bytearray()
    with http_lib.Client(transport=transport) as http:
        with http.stream(
            "POST", f"{NOWHERE}/v1/chat/completions", json={**CHAT, "stream": True}
        ) as r:
            if reset:
                with pytest.raises(http_lib.ReadError, match="reset"):
                    for data in r.iter_raw():
                        got += data
            else:
                for data in r.iter_raw():
                    got += data
    assert bytes(got) == exchange.body[:end]
    assert f"{end} bytes sent" in str(transport.fired[0])


def test_the_sdk_sees_the_first_n_tokens_then_the_chosen_error(tapes: dict[str, Path]) -> None:
    exchange = only(tapes["chat"])
    tokens = [
        c["choices"][0]["delta"].get("content")
        for c in _chunks(exchange)
        if c.get("choices") and c["choices"][0]["delta"].get("content")
    ]
    with openai_client(ReplayTransport(tapes["chat"], "instant", faults=["cut:token=3"])) as c:
        assert chat_text(c) == "".join(tokens[:3])  # a clean close: the SDK just stops
    transport = ReplayTransport(tapes["chat"], "instant", faults=["cut:token=3,reset"])
    seen: list[str] = []
    with openai_client(transport) as client, pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            seen += [chunk.choices[0].delta.content or ""] if chunk.choices else []
    assert "".join(seen) == "".join(tokens[:3])


def _chunks(exchange: Exchange) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in parse_sse(exchange.body) if e.data != b"[DONE]"]


def test_anthropic_cut_mid_answer_and_its_error_event(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["messages"])).content[0].text
    transport = ReplayTransport(tapes["messages"], "instant", faults=["cut:token=2,reset"])
    with anthropic_client(transport) as client, pytest.raises(httpx2.ReadError, match="reset"):
        message_text(client)  # this SDK lets a mid-stream transport error through as is
    transport = ReplayTransport(tapes["messages"], "instant", faults=["error-event:event=4"])
    with anthropic_client(transport) as client, pytest.raises(anthropic.APIStatusError) as exc:
        message_text(client)
    assert "Overloaded" in str(exc.value)
    assert recorded  # the recording itself was whole


def test_openai_error_event_and_corrupt_chunk(tapes: dict[str, Path]) -> None:
    transport = ReplayTransport(tapes["chat"], "instant", faults=["error-event:event=2"])
    with openai_client(transport) as client, pytest.raises(openai.APIError, match="server had"):
        chat_text(client)
    transport = ReplayTransport(tapes["chat"], "instant", faults=["corrupt:event=2"])
    with openai_client(transport) as client, pytest.raises(ValueError):
        chat_text(client)
    assert "event 2" in str(transport.fired[0])


def test_responses_stream_cut_after_token_2_keeps_two_deltas(tapes: dict[str, Path]) -> None:
    transport = ReplayTransport(tapes["responses"], "instant", faults=["cut:token=2"])
    with openai_client(transport) as client:
        events = list(client.responses.create(**RESPONSES, stream=True))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 2
    assert events[-1].type == "response.output_text.delta"


def test_framing_faults_leave_the_answer_whole(tapes: dict[str, Path]) -> None:
    recorded = assemble(only(tapes["chat"])).choices[0].message.content
    transport = ReplayTransport(tapes["chat"], "instant", faults=["crlf", "keepalive"])
    with openai_client(transport) as client:
        assert chat_text(client) == recorded
    assert [f.fault for f in transport.fired] == ["keepalive", "crlf"]


# ------------------------------------------------------------------- timing faults


def test_a_stall_trips_the_clients_read_timeout(tapes: dict[str, Path]) -> None:
    transport = ReplayTransport(tapes["chat"], "instant", faults=["stall:5:event=2"])
    started = time.perf_counter()
    with openai_client(transport, read=0.2) as client, pytest.raises(openai.APITimeoutError):
        chat_text(client)
    assert time.perf_counter() - started < 4  # the timeout fired, not the end of the stall


def test_async_stall_trips_the_read_timeout_too(tapes: dict[str, Path]) -> None:
    transport = ReplayTransport(tapes["chat"], "instant", faults=["stall:5:event=1"])

    async def run() -> None:
        timeout = httpx2.Timeout(5.0, read=0.2)
        async with httpx2.AsyncClient(transport=transport, timeout=timeout) as http:
            url = f"{NOWHERE}/v1/chat/completions"
            async with http.stream("POST", url, json={**CHAT, "stream": True}) as r:
                async for _ in r.aiter_raw():
                    pass

    with pytest.raises(httpx2.ReadTimeout):
        asyncio.run(run())


def test_the_untouched_part_keeps_its_pacing_and_the_stall_adds_its_seconds(
    tapes: dict[str, Path],
) -> None:
    exchange = only(tapes["chat"])
    k = 3
    transport = ReplayTransport(tapes["chat"], "original", faults=[f"stall:0.3:event={k}"])
    arrivals: list[float] = []
    with httpx2.Client(transport=transport) as http:
        started = time.perf_counter()
        with http.stream(
            "POST", f"{NOWHERE}/v1/chat/completions", json={**CHAT, "stream": True}
        ) as r:
            for _ in r.iter_raw():
                arrivals.append(time.perf_counter() - started)
    recorded = [read.t_ns / 1e9 for read in exchange.reads]
    assert len(arrivals) >= len(recorded)
    # before the stall: on the recorded deadlines; after: 0.3 s later (loose bounds)
    assert abs(arrivals[0] - recorded[0]) < 0.05
    assert abs(arrivals[-1] - (recorded[-1] + 0.3)) < 0.1


def test_every_fault_is_deterministic_for_a_seed(tapes: dict[str, Path]) -> None:
    def body(seed: int) -> bytes:
        transport = ReplayTransport(
            tapes["chat"],
            "instant",
            faults=["corrupt:event=3", "corrupt:event=5,truncate"],
            seed=seed,
        )
        with httpx2.Client(transport=transport) as http:
            r = http.post(f"{NOWHERE}/v1/chat/completions", json={**CHAT, "stream": True})
            return r.content

    assert body(7) == body(7)
    assert len({body(seed) for seed in range(6)}) > 1
