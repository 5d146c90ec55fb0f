"""Responses API streams the SDKs choke on, by name (reference §5 R1-R7 and friends).

Each test builds the quirk from a real recorded stream or a small hand-written one,
then checks the assembled response and what ``outcome`` says happened, and where.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS

from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.formats.openai_responses import (
    FORMAT,
    ResponsesAssembler,
    assemble,
    stream_finished,
    summarize_responses,
)

TOOLS = CORPUS / "openai-responses" / "prism-openai-stream-with-tools-responses-1.sse"
TEXT = CORPUS / "openai-responses" / "prism-openai-stream-basic-text-responses-1.sse"
REASONING = (
    CORPUS
    / "openai-responses"
    / "prism-openai-stream-multi-tool-conversation-responses-reasoning-1.sse"
)


def events_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip("recorded corpus not found next to the checkout")
    return [
        json.loads(line[6:])
        for line in path.read_bytes().split(b"\n")
        if line.startswith(b"data: ")
    ]


def body_of(events: list[dict[str, Any]], named: bool = True) -> bytes:
    out = []
    for e in events:
        name = b"event: " + str(e.get("type", "x")).encode() + b"\n" if named else b""
        out.append(name + b"data: " + json.dumps(e).encode() + b"\n\n")
    return b"".join(out)


def kinds(result: Any) -> list[str]:
    return [p.kind for p in result.outcome.problems]


def base(**top: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": "in_progress", "output": [], **top}


def test_r1_error_event_nested_and_flat() -> None:
    for err in (
        {"type": "error", "error": {"code": "server_error", "message": "boom", "param": None}},
        {"type": "error", "code": "server_error", "message": "boom", "param": None},
    ):
        events = [{"type": "response.created", "response": base()}, err]
        result = assemble(body_of(events))
        assert result.outcome.error["message"] == "boom"
        assert kinds(result) == ["error_event", "missing_done"]
        assert result.outcome.problems[0].event_index == 1
        assert result.id == "resp_1" and not result.outcome.ok


def test_r2_completed_with_empty_or_missing_output_is_rebuilt() -> None:
    events = events_of(TOOLS)
    final = assemble(body_of(events)).to_dict()
    for shape in ("empty", "missing", "null"):
        changed = [dict(e) for e in events]
        last = changed[-1] = {**changed[-1], "response": dict(changed[-1]["response"])}
        if shape == "empty":
            last["response"]["output"] = []
        elif shape == "null":
            last["response"]["output"] = None
        else:
            del last["response"]["output"]
            del last["response"]["usage"]  # 9router drops usage too
        result = assemble(body_of(changed))
        assert result.output == final["output"], shape
        assert result.outcome.ok
        assert ("output_rebuilt" in kinds(result)) == (shape == "empty")
        assert ("usage" in result.to_dict()) == (shape != "missing")


def test_r3_rotating_item_ids_are_keyed_by_output_index() -> None:
    events = events_of(TOOLS)
    for n, e in enumerate(events):
        if "item_id" in e:
            e["item_id"] = f"rotated_{n}"
    cut = [
        e for e in events if e["type"] not in ("response.output_item.done", "response.completed")
    ]
    result = assemble(body_of(cut))
    calls = summarize_responses(result).tool_calls
    assert [c.arguments for c in calls] == [
        {"query": "Detroit Tigers game time October 6, 2023"},
        {"city": "Detroit"},
    ]
    assert "missing_item" not in kinds(result)


def test_r4_items_completed_out_of_order() -> None:
    events = events_of(REASONING)
    done = [i for i, e in enumerate(events) if e["type"] == "response.output_item.done"]
    first, second = events[done[0]], events[done[1]]
    events[done[0]], events[done[1]] = second, first  # the call is done before the reasoning
    events[-1]["response"]["output"] = None
    result = assemble(body_of(events))
    assert [i["type"] for i in result.output] == ["reasoning", "function_call"]


def test_r5_null_added_item_and_index_gap() -> None:
    events = [
        {"type": "response.created", "response": base()},
        {"type": "response.output_item.added", "output_index": 0, "item": None},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"id": "fc_1", "type": "function_call", "arguments": "", "name": "f"},
        },
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "1}"},
    ]
    result = assemble(body_of(events))
    assert [i["arguments"] for i in result.output] == ['{"a":1}']
    assert kinds(result) == ["null_item", "missing_done"]


def test_r6_missing_indices_route_by_item_id_then_last_item() -> None:
    events = events_of(TOOLS)
    for e in events:
        e.pop("sequence_number", None)
        if e["type"].startswith("response.function_call_arguments"):
            e.pop("output_index", None)
    result = assemble(body_of(events[:-1]))  # no terminal: the folded items count
    args = [c.arguments_text for c in summarize_responses(result).tool_calls]
    assert args == [
        '{"query":"Detroit Tigers game time October 6, 2023"}',
        '{"city":"Detroit"}',
    ]


def test_r7_incomplete_is_returned_with_its_reason() -> None:
    events = events_of(TEXT)
    last = events[-1]
    last["type"] = "response.incomplete"
    last["response"].update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    result = assemble(body_of(events))
    assert result.status == "incomplete" and result.stop_reason == "max_output_tokens"
    assert result.output_text.startswith("I am OpenAI's language model")
    assert result.outcome.ok  # the stream itself ended properly
    assert summarize_responses(result).stop_reason == "max_output_tokens"


def test_failed_terminal_reports_its_error() -> None:
    events = [
        {"type": "response.created", "response": base()},
        {
            "type": "response.failed",
            "response": base(status="failed", error={"code": "x", "message": "no"}),
        },
    ]
    result = assemble(body_of(events))
    assert result.status == "failed" and result.outcome.done
    assert result.outcome.error == {"code": "x", "message": "no"} and not result.outcome.ok


def test_data_without_type_takes_the_event_name() -> None:
    events = events_of(TEXT)
    for e in events:
        del e["type"]
    named = b"".join(
        b"event: " + name.encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for name, e in zip((x["type"] for x in events_of(TEXT)), events, strict=True)
    )
    result = assemble(named)
    assert result.outcome.ok and result.output_text == assemble(TEXT.read_bytes()).output_text
    bare = assemble(body_of(events, named=False))  # no type anywhere: nothing to fold
    assert not bare.outcome.ok and "unknown_event" in kinds(bare)


def test_unknown_events_empty_data_and_done_are_ignored() -> None:
    body = TEXT.read_bytes() if TEXT.exists() else pytest.skip("no corpus")
    head, sep, tail = body.partition(b"event: response.output_text.delta")
    noisy = (
        head
        + b'event: response.future_thing\ndata: {"type":"response.future_thing","x":1}\n\n'
        + b"data:\n\n: comment\n\ndata: {}\n\n"
        + sep
        + tail
        + b"data: [DONE]\n\n"
    )
    result = assemble(noisy)
    assert result.to_dict() == assemble(body).to_dict()
    assert kinds(result) == ["unknown_event", "unknown_event"]  # future_thing, then {}
    assert "future_thing" in result.outcome.problems[0].message
    assert result.outcome.ok


def test_unknown_event_level_keys_are_kept() -> None:
    asm = ResponsesAssembler()
    asm.feed(b'{"type":"response.created","response":{"id":"r"},"gateway":{"x":1}}')
    asm.feed(b'{"type":"response.output_text.delta","output_index":"0","delta":"hi"}')
    result = asm.finish()
    assert result.output[0]["content"][0]["text"] == "hi"  # a string index: routed anyway
    assert kinds(result) == ["missing_item", "missing_done"]


def test_events_after_the_terminal_are_reported_not_folded() -> None:
    events = events_of(TEXT)
    late = {
        "type": "response.output_text.delta",
        "output_index": 0,
        "content_index": 0,
        "delta": "!",
    }
    result = assemble(body_of([*events, late]))
    assert result.output_text == assemble(body_of(events)).output_text
    assert kinds(result) == ["after_done"] and result.outcome.problems[0].event_index == len(events)


def test_json_fallback_for_nan_and_split_surrogates() -> None:
    asm = ResponsesAssembler()
    asm.feed(b'{"type":"response.created","response":{"id":"r","x":NaN}}')
    asm.feed(
        b'{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"\\ud83d"}'
    )
    asm.feed(
        b'{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"\\ude42"}'
    )
    result = asm.finish()
    assert result.output_text == "🙂"
    assert "json_fallback" in kinds(result)


def test_non_stream_bodies() -> None:
    events = events_of(TOOLS)
    whole = json.dumps(events[-1]["response"]).encode()
    result = assemble(whole)
    assert result.to_dict() == assemble(TOOLS.read_bytes()).to_dict()
    assert result.outcome.ok and not result.outcome.streamed
    error = assemble(b'{"error": {"message": "Invalid model", "type": "invalid_request_error"}}')
    assert not error.outcome.ok and error.outcome.problems[0].kind == "error_event"


def test_transport_failure_and_timing_are_reported() -> None:
    body = TEXT.read_bytes() if TEXT.exists() else pytest.skip("no corpus")
    cut = body[: len(body) // 2]
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x/v1/responses"),
        status=200,
        reads=[
            Read(t_ns=10 * (k + 1), data=cut[i : i + 100])
            for k, i in enumerate(range(0, len(cut), 100))
        ],
        outcome=Outcome.UPSTREAM_ERROR,
        error="RemoteProtocolError: peer closed",
    )
    result = assemble(ex)
    assert set(kinds(result)) >= {"transport", "missing_done"}
    first_end = cut.index(b"\n\n") + 2  # the first event arrived with the read holding it
    assert result.outcome.t_first_ns == 10 * ((first_end - 1) // 100 + 1)
    assert result.outcome.t_first_ns < result.outcome.t_last_ns <= 10 * len(ex.reads)
    assert result.status == "in_progress" and result.output_text


@pytest.mark.parametrize(
    ("tail", "finished"),
    [
        (b'event: response.completed\ndata: {"type":"response.completed","response":{}}\n\n', True),
        (b'data: {"type": "response.incomplete", "response": {}}\r\n\r\n', True),
        (b'data: {"type":"response.failed","response":{}}\n\ndata: [DONE]\n\n', True),
        (b'"type":"response.completed","response":{"output":[]}}\n\n', True),
        (b'event: response.completed\ndata: {"type":"response.completed","resp', False),
        (b'data: {"type":"response.completed","response":{}}\n', False),
        (b'data: {"type":"response.output_text.delta","delta":"x"}\n\n', False),
        (
            b'data: {"type":"response.output_text.delta",'
            b'"delta":"\\"type\\":\\"response.completed\\""}\n\n',
            False,
        ),
        (b"", False),
    ],
)
def test_stream_finished(tail: bytes, finished: bool) -> None:
    assert stream_finished(tail) is finished


def test_stream_finished_on_every_corpus_file() -> None:
    for path in sorted((CORPUS / "openai-responses").glob("*.sse")):
        body = path.read_bytes()
        assert stream_finished(body[-4000:])
        assert not stream_finished(body[:-1])


def test_summary() -> None:
    result = assemble(REASONING.read_bytes() if REASONING.exists() else pytest.skip("no corpus"))
    summary = summarize_responses(result)
    assert summary.format == FORMAT and summary.model == "o3-mini-2025-01-31"
    assert summary.stop_reason == "completed" and summary.ok
    (call,) = summary.tool_calls
    assert call.name == "search" and call.arguments == {
        "query": "Detroit Tigers game today start time"
    }
    assert summary.usage.input_tokens == 78 and summary.usage.reasoning_tokens is not None


def test_odd_events_inside_a_run_of_deltas_are_not_lost() -> None:
    """The fast path joins runs of deltas at once; an odd one in the run still counts."""
    events = events_of(TEXT)
    deltas = [i for i, e in enumerate(events) if e["type"] == "response.output_text.delta"]
    with_error = [dict(e) for e in events]
    with_error[deltas[5]]["error"] = {"message": "hiccup"}
    result = assemble(body_of(with_error))
    assert result.outcome.error == {"message": "hiccup"}
    assert [p.event_index for p in result.outcome.problems] == [deltas[5]]
    with_null = [dict(e) for e in events]
    with_null[deltas[5]]["delta"] = None
    with_null[-1]["response"]["output"] = None
    folded = assemble(body_of([e for e in with_null if e["type"] != "response.output_text.done"]))
    assert folded.output == assemble(body_of(events)).output  # the .done items still win
    moved = [dict(e) for e in events]
    moved[deltas[7]]["content_index"] = 1  # a second part nobody announced
    cut = assemble(body_of(moved[: deltas[-1] + 1]))
    texts = [p["text"] for p in cut.output[0]["content"]]
    assert texts[1] == events[deltas[7]]["delta"] and len(texts) == 2
