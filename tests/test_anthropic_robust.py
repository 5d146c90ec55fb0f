"""Where the anthropic SDK raises, yields nothing or garbles, streamtape keeps the message.

Cut streams, mid-stream errors (nested and flat), gateway quirks by name (reference
§5 A-1..A-6), arbitrary bytes; `stream_finished`, non-stream bodies and the summary.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from _corpus import CORPUS, require_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_anthropic import message_streams, norm, plain_body, sdk_fold, sse_bodies

from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.formats import summarize
from streamtape.formats.anthropic_messages import (
    FORMAT,
    Message,
    MessagesAssembler,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    assemble,
    stream_finished,
    summarize_messages,
)

pytest.importorskip("anthropic")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Events = list[tuple[str, dict[str, Any]]]


def full_of(events: Events) -> Any:
    return sdk_fold([p for _, p in events])


def body_of(events: Events, *, names: bool = True) -> bytes:
    out = []
    for name, p in events:
        head = f"event: {name}\n".encode() if names and name else b""
        out.append(head + b"data: " + json.dumps(p).encode() + b"\n\n")
    return b"".join(out)


def kinds(result: Message) -> set[str]:
    return {p.kind for p in result.outcome.problems}


# ----------------------------------------------------------------------- cuts and noise


@SETTINGS
@given(events=message_streams(), data=st.data())
def test_any_cut_keeps_a_prefix_and_never_reports_ok(events: Events, data: st.DataObject) -> None:
    body = data.draw(sse_bodies(events))
    full = assemble(body)
    assert full.outcome.ok
    # A cut inside the last blank line may leave it whole (a CR ends a line at once):
    # cut at least into the last event itself.
    cut = data.draw(st.integers(0, len(body.rstrip(b"\r\n"))))
    part = assemble(body[:cut])
    assert not part.outcome.ok, part.outcome
    for p in part.outcome.problems:
        assert p.offset is None or 0 <= p.offset <= cut
    assert len(part.content) <= len(full.content)
    for mine, theirs in zip(part.content, full.content, strict=False):
        assert mine.type == theirs.type
        if isinstance(mine, TextBlock):
            assert isinstance(theirs, TextBlock) and theirs.text.startswith(mine.text)
        elif isinstance(mine, ThinkingBlock):
            assert isinstance(theirs, ThinkingBlock) and theirs.thinking.startswith(mine.thinking)
        elif isinstance(mine, ToolUseBlock) and mine.input_json is not None:
            assert theirs.input_json is not None  # type: ignore[attr-defined]
            assert theirs.input_json.startswith(mine.input_json)  # type: ignore[attr-defined]


@SETTINGS
@given(data=st.binary(max_size=300) | st.lists(st.binary(max_size=40), max_size=10))
def test_arbitrary_bytes_never_raise(data: bytes | list[bytes]) -> None:
    result = assemble(data)
    result.to_dict()
    result.to_json()
    summarize_messages(result)
    stream_finished(data if isinstance(data, bytes) else b"".join(data))


@SETTINGS
@given(
    events=message_streams(),
    junk=st.lists(
        st.sampled_from(
            [b"", b"[DONE]", b"{", b"null", b"[]", b'{"type":1}', b'{"index":"x"}', b"\xff\xfe"]
        ),
        min_size=1,
        max_size=3,
    ),
    data=st.data(),
)
def test_garbage_events_are_reported_and_skipped(
    events: Events, junk: list[bytes], data: st.DataObject
) -> None:
    asm = MessagesAssembler()
    payloads = [json.dumps(p).encode() for _, p in events]
    for j in junk:
        payloads.insert(data.draw(st.integers(1, len(payloads))), j)
    for p in payloads:
        asm.feed(p, event="content_block_delta" if p == b'{"index":"x"}' else None)
    assert norm(asm.finish().to_dict()) == full_of(events)


# ----------------------------------------------------------------------------- quirks


@SETTINGS
@given(events=message_streams())
def test_a_data_only_stream_assembles_as_the_named_one(events: Events) -> None:
    """Gateways that send no ``event:`` lines: the SDK yields nothing, we read ``type``."""
    result = assemble(body_of(events, names=False))
    assert norm(result.to_dict()) == full_of(events)
    assert result.outcome.ok


@SETTINGS
@given(events=message_streams())
def test_data_without_type_takes_it_from_the_event_name(events: Events) -> None:
    """A-5: DashScope's ``message_start`` without ``type`` kills anthropic 2.x's stream."""
    stripped = copy.deepcopy(events)
    for _, p in stripped:
        p.pop("type")
    result = assemble(body_of(stripped))
    assert norm(result.to_dict()) == full_of(events)
    assert "missing_type" in kinds(result) and result.outcome.ok


@SETTINGS
@given(events=message_streams(), data=st.data())
def test_quirks_that_do_not_change_the_message(events: Events, data: st.DataObject) -> None:
    """A-2 repeated message_start (ignored, as Python does), unknown event types, empty
    data, a gateway's ``[DONE]``, pings and comments: the message is unchanged."""
    quirky = list(events)
    second = copy.deepcopy(events[0])
    second[1]["message"]["id"] = "msg_other"
    quirky.insert(data.draw(st.integers(1, len(quirky))), second)
    quirky.insert(
        data.draw(st.integers(1, len(quirky))), ("future_event", {"type": "future_event"})
    )
    body = body_of(quirky)
    body = body.replace(b"event: ping\n", b": comment\nevent: ping\n")
    body += b"event: content_block_delta\ndata: \n\ndata: [DONE]\n\n"
    result = assemble(body)
    assert norm(result.to_dict()) == full_of(events)
    assert {"repeated_start", "unknown_event"} <= kinds(result)
    assert result.outcome.ok  # none of these is a fault of the message


def _stream() -> Events:
    path = CORPUS / "anthropic" / "prism-anthropic-stream-with-tools-1.sse"
    if not path.exists():
        pytest.skip("recorded corpus not found next to the checkout")
    from streamtape.core.sse import parse_sse

    return [(ev.event, json.loads(ev.data)) for ev in parse_sse(path.read_bytes())]


@pytest.mark.parametrize(
    "shape",
    [
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"type": "error", "message": "Overloaded", "code": "overloaded_error"},
        {"error": {"type": "overloaded_error", "message": "Overloaded"}},
    ],
    ids=["nested", "flat", "untyped"],
)
def test_a_mid_stream_error_keeps_the_partial_message(shape: dict[str, Any]) -> None:
    """A-6: ``event: error`` after HTTP 200; the SDK raises, the partial stays readable."""
    events = _stream()
    at = next(i for i, (n, _) in enumerate(events) if n == "content_block_stop")
    body = body_of([*events[:at], ("error", shape)])
    result = assemble(body)
    assert norm(result.to_dict()) == sdk_fold([p for _, p in events[:at]])
    assert result.outcome.error is not None and "Overloaded" in json.dumps(result.outcome.error)
    errors = [p for p in result.outcome.problems if p.kind == "error_event"]
    assert errors[0].event_index == at and errors[0].offset == body.rindex(b"event: error")
    assert not result.outcome.ok and "missing_stop" in kinds(result)
    # Data-only, the error is still an error.
    flat = assemble(body_of([*events[:at], ("", shape)], names=False))
    assert flat.outcome.error is not None and not flat.outcome.ok


def test_events_before_message_start_are_folded_and_said() -> None:
    """A-1: proxies that send content before ``message_start``."""
    events = _stream()
    moved = [*events[1:3], events[0], *events[3:]]
    result = assemble(body_of(moved))
    assert norm(result.to_dict()) == sdk_fold([p for _, p in events])
    assert "before_start" in kinds(result)


def test_usage_follows_the_sdk_rules_when_gateways_split_it() -> None:
    """A-4: counts only in message_delta are taken; nulls keep message_start's."""
    events = _stream()
    start = copy.deepcopy(events[0])
    start[1]["message"]["usage"] = {"input_tokens": 0, "output_tokens": 0}
    end = next(p for n, p in events if n == "message_delta")
    end = copy.deepcopy(end)
    end["usage"] = {"output_tokens": 7, "cache_read_input_tokens": 30, "input_tokens": None}
    rest = [e for e in events[1:] if e[0] != "message_delta"]
    quirky = [start, *rest[:-1], ("message_delta", end), rest[-1]]
    result = assemble(body_of(quirky))
    assert result.usage == {"input_tokens": 0, "output_tokens": 7, "cache_read_input_tokens": 30}
    assert norm(result.to_dict()) == sdk_fold([p for _, p in quirky])


def test_invalid_tool_json_keeps_the_last_good_input() -> None:
    """A-3: the SDK raises ValueError out of the iterator; we keep the last parse."""
    events = _stream()
    i = next(i for i, (_, p) in enumerate(events) if p.get("delta", {}).get("partial_json"))
    bad = copy.deepcopy(events[i])
    bad[1]["delta"]["partial_json"] = "{]" + bad[1]["delta"]["partial_json"]
    result = assemble(body_of([*events[:i], bad, *events[i + 1 :]]))
    tool = next(b for b in result.content if isinstance(b, ToolUseBlock))
    assert tool.input == {} and not tool.input_complete
    assert "invalid_tool_input" in kinds(result)


def test_a_delta_for_a_block_never_started_is_reported() -> None:
    events = copy.deepcopy(_stream())
    i = next(i for i, (n, _) in enumerate(events) if n == "content_block_delta")
    events[i][1]["index"] = 7  # the SDK raises IndexError here
    result = assemble(body_of(events))
    (problem,) = [p for p in result.outcome.problems if p.kind == "unknown_block"]
    assert problem.event_index == i and "7" in problem.message
    assert result.content[0].text.startswith("'ll help you")  # type: ignore[attr-defined]


def test_the_transport_outcome_of_an_exchange_is_noted() -> None:
    body = plain_body(_stream())
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x/v1/messages"),
        status=200,
        reads=[Read(t_ns=5, data=body[:200])],
        outcome=Outcome.CLIENT_CLOSED,
    )
    result = assemble(ex)
    assert "transport" in kinds(result) and not result.outcome.ok


# ------------------------------------------------------------------- stream_finished


@pytest.mark.parametrize(
    ("tail", "finished"),
    [
        (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', True),
        (b'}\n\nevent: message_stop\ndata: {"type":"message_stop"}', True),
        (b'\r\nevent: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n', True),
        (b'data: {"type":"message_stop"}\n\ndata: [DONE]\n\n', True),
        (b'data: {"type":"message_stop"}\n\nevent: ping\ndata: {"type": "ping"}\n\n', True),
        (b"event: message_stop\ndata: {}\n\n", True),
        (b'event: message_stop\ndata: {"type":"message_st', False),
        (b'event: message_delta\ndata: {"type":"message_delta","delta":{}}\n\n', False),
        (b'event: error\ndata: {"type":"error","error":{}}\n\n', False),
        (b"", False),
        (b"garbage", False),
    ],
)
def test_stream_finished(tail: bytes, finished: bool) -> None:
    assert stream_finished(tail) is finished


def test_stream_finished_on_every_cut_of_a_real_stream() -> None:
    body = plain_body(_stream())
    last = body.rindex(b"data: ")
    for cut in range(0, len(body) + 1, 7):
        assert stream_finished(body[:cut][-300:]) is (cut >= body.index(b"}", last) + 1)


# --------------------------------------------------------------- non-stream and summary


def test_a_non_stream_message_body() -> None:
    require_corpus()
    final = json.loads(
        (
            CORPUS / "expected" / "prism-anthropic-stream-with-web-search-citations-1.json"
        ).read_bytes()
    )["final"]
    result = assemble(json.dumps(final).encode())
    assert norm(result.to_dict()) == norm(final)
    assert result.outcome.ok and not result.outcome.streamed
    error = assemble(b'{"type":"error","error":{"type":"not_found_error","message":"no model"}}')
    assert error.outcome.error == {"type": "not_found_error", "message": "no model"}
    assert not error.outcome.ok and "no model" in error.outcome.problems[0].message


def test_summary_of_a_tool_and_thinking_stream() -> None:
    require_corpus()
    body = (
        CORPUS / "anthropic" / "prism-anthropic-stream-with-extended-thinking-1.sse"
    ).read_bytes()
    result = assemble(body)
    s = summarize(result)
    assert s == summarize_messages(result) and s.format == FORMAT == "anthropic_messages"
    assert s.outputs[0].reasoning and s.outputs[0].reasoning.startswith("The question is asking")
    assert s.text == "".join(b.text for b in result.content if isinstance(b, TextBlock))
    assert s.ok and s.model == result.model and s.stop_reason == result.stop_reason
    tools = summarize(assemble(plain_body(_stream())))
    (call,) = tools.tool_calls
    assert call.name == "search" and call.arguments_valid and call.kind == "function"
    assert call.arguments == {"query": "Detroit Tigers baseball game today time schedule"}
    assert tools.usage.input_tokens == 465 and tools.usage.output_tokens == 96
    assert tools.usage.total_tokens == 465 + 96 and tools.usage.cached_input_tokens == 0


def test_summary_counts_cached_input_and_server_tools() -> None:
    require_corpus()
    path = CORPUS / "anthropic" / "prism-anthropic-stream-with-web-search-citations-1.sse"
    s = summarize(assemble(path.read_bytes()))
    kinds_ = [c.kind for c in s.tool_calls]
    assert kinds_ == ["server_tool"] and s.tool_calls[0].arguments["query"].startswith("London")
    usage = assemble(path.read_bytes()).usage or {}
    expected_in = sum(
        usage.get(k) or 0
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    assert s.usage.input_tokens == expected_in


@pytest.mark.parametrize("depth", [600, 990, 5000])
def test_deeply_nested_payloads_never_raise(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    tool = (
        b'{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","input":{}}}'
    )
    bodies = [
        b'event: message_start\ndata: {"type":"message_start","message":{"x":' + deep + b"}}\n\n",
        b"data: " + tool + b'\n\ndata: {"type":"content_block_delta","index":0,"delta":'
        b'{"type":"input_json_delta","partial_json":"' + b"[" * depth + b'"}}\n\n',
        b'event: error\ndata: {"type":"error","error":' + deep + b"}\n\n",
    ]
    for body in bodies:
        result = assemble(body)
        result.to_json()
        assert not result.outcome.ok
        summarize_messages(result)
        asm = MessagesAssembler()
        for line in body.split(b"\n\n"):
            asm.feed(line.partition(b"data: ")[2])
            asm.snapshot().to_dict()
