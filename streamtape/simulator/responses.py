"""The simulated ``POST /v1/responses``: text, parallel function calls and reasoning.

Same contract as the chat planner: deterministic (a request body always gets the
same items, text and gaps), paced like a model, and the stream and non-stream replies
describe the same response. The stream is framed as the API frames it (``event:``
and ``data:`` lines, a ``sequence_number`` on every event, ``response.completed``
last and no ``[DONE]``); a ``max_output_tokens`` below the reply's length ends it
with ``response.incomplete``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from streamtape.simulator.asgi import HTTPError, Response, json_response
from streamtape.simulator.chat import ARG_TOKEN_RE, example_value
from streamtape.simulator.routing import with_faults
from streamtape.simulator.synth import (
    EPOCH,
    canned_text,
    count_tokens,
    dumps,
    ident,
    text_of,
    tokenize,
)
from streamtape.simulator.synth import gaps as make_gaps
from streamtape.simulator.synth import seed as make_seed

__all__ = ["plan_response", "responses_reply"]


@dataclass
class _Plan:
    """One planned response: its top-level fields, items and the tokens they stream."""

    top: dict[str, Any]
    reasoning: list[str] | None = None  # summary tokens
    text: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    incomplete: bool = False
    seed: int = 0
    usage: dict[str, Any] = field(default_factory=dict)


def _input_text(body: dict[str, Any]) -> tuple[str, bool]:
    """The prompt's text, and whether its last item is a tool result (answer in text)."""
    given = body.get("input")
    if isinstance(given, str):
        return given, False
    if not isinstance(given, list) or not given:
        raise HTTPError(400, "'input' must be a string or a non-empty array.", param="input")
    texts = [text_of(i.get("content")) for i in given if isinstance(i, dict)]
    last = given[-1] if isinstance(given[-1], dict) else {}
    return " ".join(texts), last.get("type") == "function_call_output"


def plan_response(body: dict[str, Any], cap: int) -> _Plan:
    """Decide the whole reply from the request (everything but ``stream`` counts)."""
    prompt, answered = _input_text(body)
    model = str(body.get("model") or "gpt-4o-mini")
    seed = make_seed("responses", {k: v for k, v in body.items() if k != "stream"})
    rng = random.Random(seed)
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 16):
        raise HTTPError(
            400, "'max_output_tokens' must be an integer >= 16.", param="max_output_tokens"
        )
    rid = ident("resp_", 48, seed)
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    top = {
        "id": rid,
        "object": "response",
        "created_at": EPOCH + seed % 50_000_000,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": limit,
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": None},
        "service_tier": "auto",
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }
    plan = _Plan(top=top, seed=seed)
    if reasoning is not None:
        plan.reasoning = tokenize(canned_text(rng))[:40]
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    if tools and body.get("tool_choice", "auto") != "none" and not answered:
        if body.get("parallel_tool_calls") is False:
            tools = tools[:1]
        for k, tool in enumerate(tools[:4]):
            args = dumps(example_value(tool.get("parameters", {}), rng)).decode()
            name = str(tool.get("name", "tool"))
            item_id, call_id = ident("fc_", 48, seed, k), ident("call_", 24, seed, k)
            plan.calls.append((item_id, call_id, name, ARG_TOKEN_RE.findall(args)))
    else:
        budget = min(limit or cap, cap)
        tokens = tokenize(canned_text(rng, budget if limit else 0))
        plan.incomplete = len(tokens) > budget
        plan.text = tokens[:budget]
        if plan.text:
            plan.text[0] = plan.text[0].lstrip()
    reasoning_tokens = len(plan.reasoning or ()) * 3
    out_tokens = len(plan.text) + sum(len(f) + 4 for *_, f in plan.calls) + reasoning_tokens
    in_tokens = count_tokens(prompt) + 7
    plan.usage = {
        "input_tokens": in_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": in_tokens + out_tokens,
    }
    return plan


class _Events:
    """Collects the events of one stream, numbering them as the API does."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.payloads.append(
            {"type": "response." + kind, "sequence_number": len(self.payloads), **fields}
        )


def _reasoning_events(ev: _Events, plan: _Plan, index: int) -> dict[str, Any]:
    item_id = ident("rs_", 48, plan.seed, "reasoning")
    ev.add(
        "output_item.added",
        output_index=index,
        item={"id": item_id, "type": "reasoning", "summary": []},
    )
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    ev.add("reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
    for tok in plan.reasoning or ():
        ev.add("reasoning_summary_text.delta", **where, delta=tok)
    text = "".join(plan.reasoning or ())
    ev.add("reasoning_summary_text.done", **where, text=text)
    ev.add("reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text})
    item = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
    ev.add("output_item.done", output_index=index, item=item)
    return item


def _message_events(ev: _Events, plan: _Plan, index: int) -> dict[str, Any]:
    item_id = ident("msg_", 48, plan.seed, "message")
    status = "incomplete" if plan.incomplete else "completed"
    added = {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    ev.add("output_item.added", output_index=index, item=added)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    ev.add(
        "content_part.added", **where, part={"type": "output_text", "annotations": [], "text": ""}
    )
    for tok in plan.text:
        ev.add("output_text.delta", **where, delta=tok, logprobs=[])
    text = "".join(plan.text)
    ev.add("output_text.done", **where, text=text, logprobs=[])
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    ev.add("content_part.done", **where, part=part)
    item = {**added, "status": status, "content": [part]}
    ev.add("output_item.done", output_index=index, item=item)
    return item


def _call_events(ev: _Events, call: tuple[str, str, str, list[str]], index: int) -> dict[str, Any]:
    item_id, call_id, name, fragments = call
    added = {"id": item_id, "type": "function_call", "status": "in_progress", "arguments": ""}
    added.update(call_id=call_id, name=name)
    ev.add("output_item.added", output_index=index, item=added)
    for frag in fragments:
        ev.add("function_call_arguments.delta", item_id=item_id, output_index=index, delta=frag)
    args = "".join(fragments)
    ev.add("function_call_arguments.done", item_id=item_id, output_index=index, arguments=args)
    item = {**added, "status": "completed", "arguments": args}
    ev.add("output_item.done", output_index=index, item=item)
    return item


def _final(plan: _Plan, output: list[dict[str, Any]]) -> dict[str, Any]:
    final = {**plan.top, "output": output, "usage": plan.usage, "service_tier": "default"}
    if plan.incomplete:
        final.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    else:
        final["status"] = "completed"
    return final


def stream_events(plan: _Plan) -> list[dict[str, Any]]:
    """Every event payload of the streamed reply, in order."""
    ev = _Events()
    ev.add("created", response=plan.top)
    ev.add("in_progress", response=plan.top)
    output: list[dict[str, Any]] = []
    if plan.reasoning is not None:
        output.append(_reasoning_events(ev, plan, len(output)))
    for call in plan.calls:
        output.append(_call_events(ev, call, len(output)))
    if not plan.calls:
        output.append(_message_events(ev, plan, len(output)))
    final = _final(plan, output)
    ev.add(str(final["status"]), response=final)
    return ev.payloads


def responses_reply(body: dict[str, Any], faults: frozenset[str], cap: int) -> Response:
    """The simulator's answer to ``POST /v1/responses`` (stream or whole)."""
    plan = plan_response(body, cap)
    if not body.get("stream"):
        payloads = stream_events(plan)
        return json_response(payloads[-1]["response"])
    datas = [
        b"event: " + p["type"].encode() + b"\ndata: " + dumps(p) + b"\n\n"
        for p in stream_events(plan)
    ]
    gaps = make_gaps(random.Random(make_seed(plan.seed, "timing")), len(datas))
    events, ending = with_faults(list(zip(gaps, datas, strict=True)), plan.seed, faults)
    return Response(stream=events, ending=ending)
