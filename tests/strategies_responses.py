"""Hypothesis strategies for well-formed Responses API streams and their SSE encodings.

"Well-formed" means what the API sends: ``response.created`` first, each output item
announced by ``output_item.added`` before its parts and deltas, ``.done`` events
carrying the full values, the terminal event carrying the finished items. Every item
kind the assembler folds is drawn: messages (text, refusals, annotations), function,
custom-tool and MCP calls, reasoning (summaries and reasoning text), code interpreter,
web search, image generation and shell calls. Items of a stream may interleave, as
parallel calls do.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from strategies_chat import NONEMPTY, TEXT

P = "response."
Events = list[dict[str, Any]]


def pieces(draw: st.DrawFn, max_size: int = 5) -> list[str]:
    return draw(st.lists(TEXT, max_size=max_size))


def _args(draw: st.DrawFn) -> list[str]:
    """A JSON object as fragments, as a model streams its arguments."""
    text = json.dumps({draw(NONEMPTY): draw(TEXT)}, ensure_ascii=False)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=4))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


class ItemEvents:
    """Builds the events of one output item at ``index``; ``done`` is the finished item."""

    def __init__(self, index: int, item_id: str) -> None:
        self.index = index
        self.id = item_id
        self.events: Events = []
        self.done: dict[str, Any] = {}

    def ev(self, kind: str, **fields: Any) -> None:
        body: dict[str, Any] = {"type": P + kind}
        if kind not in ("output_item.added", "output_item.done") and not kind.startswith(
            "shell_call_command"
        ):
            body["item_id"] = self.id
        body["output_index"] = self.index
        body.update(fields)
        self.events.append(body)

    def added(self, item: dict[str, Any]) -> None:
        self.ev("output_item.added", item=item)

    def finish(self, item: dict[str, Any]) -> None:
        self.done = item
        self.ev("output_item.done", item=copy.deepcopy(item))


def message(draw: st.DrawFn, it: ItemEvents) -> None:
    it.added(
        {
            "id": it.id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
    )
    parts = []
    for ci, kind in enumerate(
        draw(st.lists(st.sampled_from(["output_text", "refusal"]), min_size=1, max_size=2))
    ):
        texts = pieces(draw)
        if kind == "output_text":
            it.ev(
                "content_part.added",
                content_index=ci,
                part={"type": "output_text", "annotations": [], "text": ""},
            )
            for t in texts:
                it.ev("output_text.delta", content_index=ci, delta=t, logprobs=[])
            notes = []
            for ai in range(draw(st.integers(0, 2))):
                note = {
                    "type": "url_citation",
                    "url": f"https://x/{ai}",
                    "title": draw(TEXT),
                    "start_index": 0,
                    "end_index": 1,
                }
                notes.append(note)
                it.ev(
                    "output_text.annotation.added",
                    content_index=ci,
                    annotation_index=ai,
                    annotation=note,
                )
            full = "".join(texts)
            it.ev("output_text.done", content_index=ci, text=full, logprobs=[])
            part = {"type": "output_text", "annotations": notes, "text": full}
        else:
            it.ev("content_part.added", content_index=ci, part={"type": "refusal", "refusal": ""})
            for t in texts:
                it.ev("refusal.delta", content_index=ci, delta=t)
            full = "".join(texts)
            it.ev("refusal.done", content_index=ci, refusal=full)
            part = {"type": "refusal", "refusal": full}
        it.ev("content_part.done", content_index=ci, part=copy.deepcopy(part))
        parts.append(part)
    it.finish(
        {
            "id": it.id,
            "type": "message",
            "status": "completed",
            "content": parts,
            "role": "assistant",
        }
    )


def _streamed_call(
    draw: st.DrawFn, it: ItemEvents, item: dict[str, Any], key: str, event: str
) -> None:
    it.added(copy.deepcopy(item))
    frags = _args(draw)
    for f in frags:
        it.ev(f"{event}.delta", delta=f)
    it.ev(f"{event}.done", **{key: "".join(frags)})
    item[key] = "".join(frags)
    item["status"] = "completed"
    it.finish(item)


def function_call(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {
        "id": it.id,
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_" + it.id,
        "name": draw(NONEMPTY),
    }
    _streamed_call(draw, it, item, "arguments", "function_call_arguments")


def custom_call(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {
        "id": it.id,
        "type": "custom_tool_call",
        "call_id": "call_" + it.id,
        "name": draw(NONEMPTY),
        "input": "",
    }
    _streamed_call(draw, it, item, "input", "custom_tool_call_input")
    del it.done["status"]
    it.events[-1]["item"].pop("status")


def mcp_call(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {
        "id": it.id,
        "type": "mcp_call",
        "server_label": "srv",
        "name": draw(NONEMPTY),
        "arguments": "",
        "status": "in_progress",
    }
    it.added(copy.deepcopy(item))
    it.ev("mcp_call.in_progress")
    frags = _args(draw)
    for f in frags:
        it.ev("mcp_call_arguments.delta", delta=f)
    it.ev("mcp_call_arguments.done", arguments="".join(frags))
    it.ev("mcp_call.completed")
    it.finish({**item, "arguments": "".join(frags), "status": "completed", "output": draw(TEXT)})


def reasoning(draw: st.DrawFn, it: ItemEvents) -> None:
    it.added({"id": it.id, "type": "reasoning", "summary": []})
    summary = []
    for si in range(draw(st.integers(0, 2))):
        it.ev(
            "reasoning_summary_part.added",
            summary_index=si,
            part={"type": "summary_text", "text": ""},
        )
        texts = pieces(draw)
        for t in texts:
            it.ev("reasoning_summary_text.delta", summary_index=si, delta=t)
        part = {"type": "summary_text", "text": "".join(texts)}
        it.ev("reasoning_summary_text.done", summary_index=si, text=part["text"])
        it.ev("reasoning_summary_part.done", summary_index=si, part=dict(part))
        summary.append(part)
    done: dict[str, Any] = {"id": it.id, "type": "reasoning", "summary": summary}
    if draw(st.booleans()):
        texts = pieces(draw)
        for t in texts:
            it.ev("reasoning_text.delta", content_index=0, delta=t)
        it.ev("reasoning_text.done", content_index=0, text="".join(texts))
        done["content"] = [{"type": "reasoning_text", "text": "".join(texts)}]
    it.finish(done)


def code_interpreter(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {
        "id": it.id,
        "type": "code_interpreter_call",
        "status": "in_progress",
        "code": "",
        "container_id": "cntr_1",
        "outputs": None,
    }
    it.added(copy.deepcopy(item))
    it.ev("code_interpreter_call.in_progress")
    texts = pieces(draw)
    for t in texts:
        it.ev("code_interpreter_call_code.delta", delta=t)
    it.ev("code_interpreter_call_code.done", code="".join(texts))
    it.ev("code_interpreter_call.interpreting")
    it.ev("code_interpreter_call.completed")
    it.finish({**item, "code": "".join(texts), "status": "completed"})


def web_search(draw: st.DrawFn, it: ItemEvents) -> None:
    it.added({"id": it.id, "type": "web_search_call", "status": "in_progress"})
    for status in ("in_progress", "searching", "completed"):
        it.ev(f"web_search_call.{status}")
    it.finish(
        {
            "id": it.id,
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": draw(TEXT)},
        }
    )


def image(draw: st.DrawFn, it: ItemEvents) -> None:
    it.added(
        {"id": it.id, "type": "image_generation_call", "status": "in_progress", "result": None}
    )
    it.ev("image_generation_call.in_progress")
    it.ev("image_generation_call.generating")
    it.ev("image_generation_call.partial_image", partial_image_index=0, partial_image_b64="aGk=")
    it.ev("image_generation_call.completed")
    it.finish(
        {"id": it.id, "type": "image_generation_call", "status": "completed", "result": "aGk="}
    )


def shell(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {
        "id": it.id,
        "type": "shell_call",
        "call_id": "call_" + it.id,
        "status": "in_progress",
        "action": {"commands": []},
    }
    it.added(copy.deepcopy(item))
    commands = []
    for k in range(draw(st.integers(1, 2))):
        it.ev("shell_call_command.added", command_index=k, command="")
        texts = pieces(draw)
        for t in texts:
            it.ev("shell_call_command.delta", command_index=k, delta=t)
        it.ev("shell_call_command.done", command_index=k, command="".join(texts))
        commands.append("".join(texts))
    it.finish({**item, "status": "completed", "action": {"commands": commands}})


def file_search(draw: st.DrawFn, it: ItemEvents) -> None:
    it.added({"id": it.id, "type": "file_search_call", "status": "in_progress", "queries": []})
    for status in ("in_progress", "searching", "completed"):
        it.ev(f"file_search_call.{status}")
    queries = [draw(TEXT)]
    it.finish({"id": it.id, "type": "file_search_call", "status": "completed", "queries": queries})


def mcp_list_tools(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {"id": it.id, "type": "mcp_list_tools", "server_label": "srv", "tools": []}
    it.added(copy.deepcopy(item))
    it.ev("mcp_list_tools.in_progress")
    it.ev("mcp_list_tools.completed")
    tool = {"name": draw(NONEMPTY), "input_schema": {"type": "object"}}
    it.finish({**item, "tools": [tool]})


def shell_output(draw: st.DrawFn, it: ItemEvents) -> None:
    item = {"id": it.id, "type": "shell_call_output", "call_id": "call_" + it.id, "output": []}
    item["status"] = "in_progress"
    it.added(copy.deepcopy(item))
    outputs = []
    for k in range(draw(st.integers(1, 2))):
        out, err = pieces(draw, 3), pieces(draw, 2)
        for o in out:
            it.ev("shell_call_output_content.delta", command_index=k, delta={"stdout": o})
        for e in err:
            it.ev("shell_call_output_content.delta", command_index=k, delta={"stderr": e})
        entry = {
            "stdout": "".join(out),
            "stderr": "".join(err),
            "outcome": {"type": "exit", "exit_code": 0},
        }
        outputs.append(entry)
        it.ev("shell_call_output_content.done", command_index=k, output=copy.deepcopy(outputs))
    it.finish({**item, "status": "completed", "output": outputs})


def audio(draw: st.DrawFn, it: ItemEvents) -> None:
    """A message whose audio events ride along (no-ops for the final object)."""
    message(draw, it)
    done = it.events.pop()
    it.events.append({"type": P + "audio.transcript.delta", "delta": draw(TEXT)})
    it.events.append({"type": P + "audio.transcript.done"})
    it.events.append({"type": P + "audio.delta", "delta": "AAAA"})
    it.events.append({"type": P + "audio.done"})
    it.events.append(done)


KINDS: dict[str, Callable[[st.DrawFn, ItemEvents], None]] = {
    "fs": file_search,
    "mlt": mcp_list_tools,
    "sho": shell_output,
    "au": audio,
    "msg": message,
    "fc": function_call,
    "ctc": custom_call,
    "mcp": mcp_call,
    "rs": reasoning,
    "ci": code_interpreter,
    "ws": web_search,
    "ig": image,
    "sh": shell,
}


def interleave(draw: st.DrawFn, lists: list[Events]) -> Events:
    """A random merge that keeps each list's order (parallel items)."""
    queues = [list(x) for x in lists if x]
    out: Events = []
    while queues:
        q = (
            queues[draw(st.integers(0, len(queues) - 1))]
            if draw(st.integers(0, 3)) == 0
            else queues[0]
        )
        out.append(q.pop(0))
        queues = [x for x in queues if x]
    return out


@st.composite
def response_streams(draw: st.DrawFn, terminal: str = "completed") -> tuple[Events, dict[str, Any]]:
    """(the events, the terminal ``response``) of one well-formed stream."""
    rid = "resp_" + draw(NONEMPTY)
    top: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": draw(st.integers(1_700_000_000, 1_800_000_000)),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": draw(st.sampled_from(["gpt-4o", "o3-mini", "gpt-5"])),
        "output": [],
        "usage": None,
        "tools": [],
        "metadata": {},
    }
    if draw(st.booleans()):
        top["service_tier"] = "auto"
    events: Events = [{"type": P + "created", "response": copy.deepcopy(top)}]
    if draw(st.booleans()):
        events.append({"type": P + "queued", "response": dict(copy.deepcopy(top), status="queued")})
    if draw(st.booleans()):
        events.append({"type": P + "in_progress", "response": copy.deepcopy(top)})
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=0, max_size=4))
    items = []
    for i, kind in enumerate(kinds):
        it = ItemEvents(i, f"{kind}_{i}{draw(NONEMPTY)}")
        KINDS[kind](draw, it)
        items.append(it)
    events += interleave(draw, [it.events for it in items])
    final = dict(top, status=terminal)
    final["usage"] = {
        "input_tokens": draw(st.integers(0, 99)),
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": draw(st.integers(0, 99)),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }
    if terminal == "completed":
        final["service_tier"] = "default"  # top-level fields may change: never merge `created`
    if terminal == "incomplete":
        final["incomplete_details"] = {"reason": "max_output_tokens"}
    if terminal == "failed":
        final["error"] = {"code": "server_error", "message": "boom"}
    shape = draw(st.sampled_from(["full", "null", "missing"]))
    if shape == "full":
        final["output"] = [copy.deepcopy(it.done) for it in items]
    elif shape == "null":
        final["output"] = None
    else:
        del final["output"]
    events.append({"type": P + terminal, "response": final})
    for n, e in enumerate(events):
        e["sequence_number"] = n
    return events, {**final, "output": [copy.deepcopy(it.done) for it in items]}


@st.composite
def sse_bodies(draw: st.DrawFn, events: Events, done: bool | None = None) -> bytes:
    """Encode events with random line ends, ``event:`` lines or not, comments, spacing."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    named = draw(st.booleans())
    parts = []
    for e in events:
        if draw(st.integers(0, 7)) == 0:
            parts.append(b": keep-alive" + eol + eol)
        if named:
            parts.append(b"event: " + e["type"].encode() + eol)
        prefix = draw(st.sampled_from([b"data: ", b"data:"]))
        parts.append(prefix + json.dumps(e, ensure_ascii=draw(st.booleans())).encode() + eol + eol)
    if done if done is not None else draw(st.booleans()):
        parts.append(b"data: [DONE]" + eol + eol)
    return b"".join(parts)


def plain_body(events: Events) -> bytes:
    """Exactly how the API frames a stream: ``event:`` and ``data:`` lines, LF, compact JSON."""
    return b"".join(
        b"event: "
        + e["type"].encode()
        + b"\ndata: "
        + json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n\n"
        for e in events
    )
