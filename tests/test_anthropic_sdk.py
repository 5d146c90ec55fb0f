"""Record and replay the simulated ``/v1/messages`` through the official anthropic SDK.

Real loopback sockets, the SDK on httpx2 with streamtape's transports: sync and async,
``messages.create`` streamed and not, and ``messages.stream``. What streamtape
assembles from the recorded exchange must equal what the SDK produced live.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from strategies_anthropic import norm

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Outcome
from streamtape.formats import summarize
from streamtape.formats.anthropic_messages import ToolUseBlock, assemble, stream_finished
from streamtape.simulator.app import FAULT_HEADER, UpstreamServer
from streamtape.transport import AsyncRecordingTransport, RecordingTransport, ReplayTransport

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")
from anthropic.lib.streaming._messages import accumulate_event  # noqa: E402

KEY = "sk-ant-test-0123456789abcdefghijklmnopqrstuvwxyz"
HI = [{"role": "user", "content": "Tell me about streams."}]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
]
THINK = {"type": "enabled", "budget_tokens": 1024}
NOWHERE = "http://nowhere.invalid"


def client(transport: Any, base_url: str, **kw: Any) -> Any:
    """An SDK client over httpx2, through ``transport`` (None: straight to the network)."""
    return anthropic.Anthropic(
        api_key=KEY,
        base_url=base_url,
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
        **kw,
    )


def aclient(transport: Any, base_url: str) -> Any:
    return anthropic.AsyncAnthropic(
        api_key=KEY,
        base_url=base_url,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )


def the_exchange(path: Path) -> Any:
    (exchange,) = Cassette.open(path).exchanges()
    return exchange


def streamed_final(c: Any, **kw: Any) -> Any:
    """``messages.create(stream=True)``, folded the way the SDK's helper folds it."""
    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    for event in c.messages.create(
        model="claude-sonnet-4-5", max_tokens=200, messages=HI, stream=True, **kw
    ):
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return norm(snapshot.to_dict())


def helper_final(c: Any, **kw: Any) -> Any:
    with c.messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=HI, **kw) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "".join(b.text for b in final.content if b.type == "text")
    return norm(final.to_dict())


@pytest.mark.parametrize(
    "kw",
    [{}, {"tools": TOOLS}, {"thinking": THINK}, {"tools": TOOLS, "thinking": THINK}],
    ids=["text", "parallel-tools", "thinking", "thinking-tools"],
)
def test_messages_stream_records_assembles_and_replays(
    kw: dict[str, Any], upstream: UpstreamServer, tape_path: Path
) -> None:
    with client(RecordingTransport(tape_path), upstream.url) as c:
        live = helper_final(c, **kw)
    exchange = the_exchange(tape_path)
    assert exchange.outcome is Outcome.COMPLETE and exchange.status == 200
    assert exchange.request.url.endswith("/v1/messages") and len(exchange.reads) > 5
    assert stream_finished(exchange.body[-200:])
    result = assemble(exchange)
    assert norm(result.to_dict()) == live
    assert result.outcome.ok and result.outcome.t_first_ns is not None
    kinds = [b["type"] for b in live["content"]]
    if "tools" in kw:
        assert kinds[-2:] == ["tool_use", "tool_use"] and live["stop_reason"] == "tool_use"
        tools = [b for b in result.content if isinstance(b, ToolUseBlock)]
        assert [t.name for t in tools] == ["get_weather", "get_time"]
        assert all(t.input_complete and t.input == json.loads(t.input_json or "") for t in tools)
        assert [c.arguments for c in summarize(result).tool_calls] == [t.input for t in tools]
    if "thinking" in kw:
        assert kinds[0] == "thinking" and live["content"][0]["signature"]
        assert summarize(result).outputs[0].reasoning == live["content"][0]["thinking"]
    with client(ReplayTransport(tape_path, "instant"), NOWHERE) as c:
        assert helper_final(c, **kw) == live


def test_create_streamed_and_not_through_the_sdk(upstream: UpstreamServer, tmp_path: Path) -> None:
    streamed, whole = tmp_path / "s.tape", tmp_path / "w.tape"
    with client(RecordingTransport(streamed), upstream.url) as c:
        live = streamed_final(c, tools=TOOLS)
    assert norm(assemble(the_exchange(streamed)).to_dict()) == live
    with client(ReplayTransport(streamed, "instant"), NOWHERE) as c:
        assert streamed_final(c, tools=TOOLS) == live

    with client(RecordingTransport(whole), upstream.url) as c:
        message = c.messages.create(
            model="claude-sonnet-4-5", max_tokens=200, messages=HI, tools=TOOLS
        )
    result = assemble(the_exchange(whole))
    assert norm(result.to_dict()) == norm(message.to_dict())
    assert result.outcome.ok and not result.outcome.streamed
    # The simulator plans the same answer whether streamed or not.
    assert norm(message.to_dict())["content"] == live["content"]
    with client(ReplayTransport(whole, "instant"), NOWHERE) as c:
        again = c.messages.create(
            model="claude-sonnet-4-5", max_tokens=200, messages=HI, tools=TOOLS
        )
    assert again.to_dict() == message.to_dict()


def test_async_create_and_stream_record_and_replay(
    upstream: UpstreamServer, tmp_path: Path
) -> None:
    async def run(transport: Any, base_url: str) -> tuple[Any, ...]:
        async with aclient(transport, base_url) as c:
            async with c.messages.stream(
                model="claude-sonnet-4-5", max_tokens=120, messages=HI, thinking=THINK
            ) as s:
                async for _ in s:
                    pass
                final = await s.get_final_message()
            stream = await c.messages.create(
                model="claude-sonnet-4-5", max_tokens=60, messages=HI, stream=True
            )
            texts = [e.delta.text async for e in stream if e.type == "content_block_delta"]
            whole = await c.messages.create(
                model="claude-sonnet-4-5", max_tokens=200, messages=HI, tools=TOOLS
            )
        return norm(final.to_dict()), "".join(texts), norm(whole.to_dict())

    path = tmp_path / "a.tape"
    live = asyncio.run(run(AsyncRecordingTransport(path), upstream.url))
    first, second, third = Cassette.open(path).exchanges()
    assert norm(assemble(first).to_dict()) == live[0]
    assert summarize(assemble(second)).text == live[1] and assemble(second).outcome.ok
    assert norm(assemble(third).to_dict()) == live[2] and not assemble(third).outcome.streamed
    assert asyncio.run(run(ReplayTransport(path, "original"), NOWHERE)) == live


def test_a_mid_stream_error_reaches_the_sdk_and_the_partial_is_kept(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    c = client(
        RecordingTransport(tape_path),
        upstream.url,
        default_headers={FAULT_HEADER: "mid-stream-error"},
    )
    with c, pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        helper_final(c)
    result = assemble(the_exchange(tape_path))
    assert result.outcome.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert not result.outcome.ok and result.content and result.content[0].text  # type: ignore[attr-defined]
    assert not stream_finished(the_exchange(tape_path).body)


def test_a_dropped_stream_keeps_a_partial_message(
    upstream: UpstreamServer, tape_path: Path
) -> None:
    c = client(RecordingTransport(tape_path), upstream.url, default_headers={FAULT_HEADER: "drop"})
    with c, pytest.raises(httpx2.RemoteProtocolError):  # the SDK does not wrap it mid-stream
        helper_final(c)
    exchange = the_exchange(tape_path)
    result = assemble(exchange)
    assert exchange.outcome is not Outcome.COMPLETE
    assert not result.outcome.ok and {"missing_stop", "transport"} <= {
        p.kind for p in result.outcome.problems
    }
    assert result.id and result.id.startswith("msg_01")


def test_the_endpoint_speaks_anthropic(upstream: UpstreamServer) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": HI}
    with httpx2.Client(base_url=upstream.url) as http:
        denied = http.post("/v1/messages", json=body)
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
        bad = http.post("/v1/messages", json={**body, "max_tokens": 0}, headers={"x-api-key": KEY})
        assert bad.status_code == 400 and bad.json()["type"] == "error"
        one = http.post("/v1/messages", json={**body, "stream": True}, headers={"x-api-key": KEY})
        two = http.post("/v1/messages", json={**body, "stream": True}, headers={"x-api-key": KEY})
    assert one.content == two.content  # deterministic
    assert one.content.startswith(b"event: message_start\ndata: ")
    assert one.content.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    result = assemble(one.content)
    assert (
        result.stop_reason == "max_tokens" and result.usage and result.usage["output_tokens"] == 5
    )


@pytest.mark.parametrize("fault", ["crlf", "comments", "crlf,comments"])
def test_gateway_framing_faults_assemble_to_the_same_message(
    fault: str, upstream: UpstreamServer
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": HI, "stream": True}
    body["tools"] = TOOLS
    auth = {"x-api-key": KEY}
    with httpx2.Client(base_url=upstream.url) as http:
        plain = http.post("/v1/messages", json=body, headers=auth).content
        odd = http.post("/v1/messages", json=body, headers={**auth, FAULT_HEADER: fault}).content
    assert odd != plain
    clean, faulty = assemble(plain), assemble(odd)
    assert faulty.to_dict() == clean.to_dict() and faulty.outcome.ok and clean.outcome.ok
    with client(None, upstream.url, default_headers={FAULT_HEADER: fault}) as c:
        assert helper_final(c, tools=TOOLS) == norm(clean.to_dict())


@pytest.mark.parametrize("fault", ["http-500", "http-429"])
def test_http_errors_have_the_messages_api_shape(fault: str, upstream: UpstreamServer) -> None:
    with client(None, upstream.url, default_headers={FAULT_HEADER: fault}) as c:
        with pytest.raises(anthropic.APIStatusError) as caught:
            c.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
    assert caught.value.status_code == int(fault[5:])
    assert caught.value.body["type"] == "error"  # type: ignore[index]
