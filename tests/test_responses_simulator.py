"""``/v1/responses`` of the simulated upstream, recorded and replayed through the openai SDK.

The SDK (on httpx2) is the client; what it produced live is the oracle for
``assemble(exchange)``, and the replayed cassette must give the SDK the same events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streamtape import Outcome
from streamtape.core.cassette import Cassette
from streamtape.formats.openai_responses import assemble, stream_finished, summarize_responses
from streamtape.simulator.app import FAULT_HEADER, UpstreamServer
from streamtape.simulator.responses import plan_response, stream_events
from streamtape.transport import AsyncRecordingTransport, RecordingTransport, ReplayTransport

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

FAKE_KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {
        "type": "function",
        "name": "search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
]
REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"model": "gpt-4o", "input": "Tell me about streams."},
    "tools": {"model": "gpt-4o", "input": "Weather in Paris?", "tools": TOOLS},
    "reasoning": {
        "model": "o3-mini",
        "input": [{"role": "user", "content": "Think, then call tools."}],
        "reasoning": {"effort": "low", "summary": "auto"},
        "tools": TOOLS,
    },
    "incomplete": {"model": "gpt-4o", "input": "Go on.", "max_output_tokens": 16},
}


def norm(x: Any) -> Any:
    """Absent == null; the SDK's ``parsed``/``parsed_arguments`` dropped."""
    if isinstance(x, dict):
        return {
            k: norm(v)
            for k, v in x.items()
            if v is not None and k not in ("parsed", "parsed_arguments")
        }
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


def client(transport: Any, base_url: str) -> Any:
    return openai.OpenAI(
        base_url=base_url,
        api_key=FAKE_KEY,
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def async_client(transport: Any, base_url: str) -> Any:
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=FAKE_KEY,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )


def only_exchange(path: Path) -> Any:
    (exchange,) = Cassette.open(path).exchanges()
    return exchange


def streamed(c: Any, request: dict[str, Any]) -> tuple[list[str], Any]:
    """The event types the SDK yielded, and the terminal event's response."""
    events = list(c.responses.create(**request, stream=True))
    return [e.type for e in events], events[-1].response.to_dict()


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_stream_records_assembles_and_replays(
    kind: str, upstream: UpstreamServer, tape_path: Path
) -> None:
    request = REQUESTS[kind]
    with client(RecordingTransport(tape_path), upstream.base_url) as c:
        types, live = streamed(c, request)
    assert types[0] == "response.created"
    assert types[-1] == ("response.incomplete" if kind == "incomplete" else "response.completed")
    exchange = only_exchange(tape_path)
    assert exchange.outcome is Outcome.COMPLETE and len(exchange.reads) > 5
    assert stream_finished(exchange.body[-2000:])
    result = assemble(exchange)
    assert norm(result.to_dict()) == norm(live)
    assert result.outcome.ok, result.outcome.problems
    assert result.outcome.t_first_ns is not None
    summary = summarize_responses(result)
    if kind in ("tools", "reasoning"):
        assert [t.name for t in summary.tool_calls] == ["get_weather", "search"]
        assert all(t.arguments_valid for t in summary.tool_calls)
    if kind == "reasoning":
        assert summary.outputs[0].reasoning
    if kind == "incomplete":
        assert summary.stop_reason == "max_output_tokens" and summary.text
    with client(ReplayTransport(tape_path, "instant"), "http://nowhere.invalid/v1") as c:
        assert streamed(c, request) == (types, live)


def test_stream_helper_final_response_equals_assemble(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    with client(RecordingTransport(tape_path), upstream.base_url) as c:
        with c.responses.stream(**REQUESTS["reasoning"]) as stream:
            final = stream.get_final_response()
    assert norm(assemble(only_exchange(tape_path)).to_dict()) == norm(final.to_dict())


@pytest.mark.parametrize("kind", ["text", "tools"])
def test_non_stream_records_and_replays(
    kind: str, upstream: UpstreamServer, tape_path: Path
) -> None:
    with client(RecordingTransport(tape_path), upstream.base_url) as c:
        live = c.responses.create(**REQUESTS[kind])
    result = assemble(only_exchange(tape_path))
    assert norm(result.to_dict()) == norm(live.to_dict())
    assert result.outcome.ok and not result.outcome.streamed
    with client(ReplayTransport(tape_path, "instant"), "http://nowhere.invalid/v1") as c:
        assert c.responses.create(**REQUESTS[kind]).to_dict() == live.to_dict()


def test_async_stream_and_whole_record_and_replay(upstream: UpstreamServer, tmp_path: Path) -> None:
    async def run(transport: Any, base_url: str) -> tuple[Any, Any]:
        async with async_client(transport, base_url) as c:
            events = [e async for e in await c.responses.create(**REQUESTS["tools"], stream=True)]
            whole = await c.responses.create(**REQUESTS["text"])
        return events[-1].response.to_dict(), whole.to_dict()

    tape = tmp_path / "a.tape"
    live = asyncio.run(run(AsyncRecordingTransport(tape), upstream.base_url))
    stream_ex, whole_ex = Cassette.open(tape).exchanges()
    assert norm(assemble(stream_ex).to_dict()) == norm(live[0])
    assert norm(assemble(whole_ex).to_dict()) == norm(live[1])
    assert asyncio.run(run(ReplayTransport(tape, "instant"), "http://nowhere.invalid/v1")) == live


def test_dropped_stream_keeps_a_prefix(upstream: UpstreamServer, tape_path: Path) -> None:
    request = REQUESTS["text"]
    with client(RecordingTransport(tape_path), upstream.base_url) as c:
        _, live = streamed(c, request)
    full_text = assemble(only_exchange(tape_path)).output_text
    assert full_text == "".join(
        p["text"] for i in live["output"] for p in i["content"] if p["type"] == "output_text"
    )
    cut_path = tape_path.with_name("cut.tape")
    headers = {FAULT_HEADER: "drop"}
    with client(RecordingTransport(cut_path), upstream.base_url) as c:
        with pytest.raises(openai.APIConnectionError):
            list(c.responses.create(**request, stream=True, extra_headers=headers))
    cut = assemble(only_exchange(cut_path))
    assert not cut.outcome.ok and cut.status == "in_progress"
    assert {"transport", "missing_done"} <= {p.kind for p in cut.outcome.problems}
    assert full_text.startswith(cut.output_text) and cut.output_text


def test_plan_is_deterministic_and_matches_the_whole_reply() -> None:
    body = REQUESTS["reasoning"]
    first = stream_events(plan_response(body, 4096))
    assert first == stream_events(plan_response(body, 4096))
    assert [e["sequence_number"] for e in first] == list(range(len(first)))
    assert first[-1]["type"] == "response.completed"
    assert [i["type"] for i in first[-1]["response"]["output"]] == [
        "reasoning",
        "function_call",
        "function_call",
    ]


def test_stream_and_whole_reply_describe_the_same_response(upstream: UpstreamServer) -> None:
    with client(None, upstream.base_url) as c:
        _, streamed_final = streamed(c, REQUESTS["tools"])
        whole = c.responses.create(**REQUESTS["tools"]).to_dict()
    assert norm(whole) == norm(streamed_final)
