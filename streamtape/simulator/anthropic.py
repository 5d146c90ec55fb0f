"""The simulated Anthropic Messages endpoint: ``POST /v1/messages``, streamed or whole.

Like the OpenAI routes of `DemoUpstream` it is deterministic (the same body gives the
same bytes and gaps, stream or not) and paced like a model, and it answers with the
Messages API's own shapes: ``x-api-key`` auth (or ``authorization: Bearer``, which
anthropic 2.x sends), ``{"type": "error", "error": {...}}``
errors, and ``event: <type>`` / ``data:`` SSE from ``message_start`` to
``message_stop`` with a ``ping`` after the first block starts.

What it plans from the request: a thinking block (with a signature) when ``thinking``
is enabled; with ``tools`` (and a ``tool_choice`` other than ``none``, and no
``tool_result`` to answer), a short text block then one ``tool_use`` per tool, in
parallel unless ``disable_parallel_tool_use``, their input streamed as JSON fragments;
else a text block cut at ``max_tokens``. Faults of ``x-demo-fault`` apply, with an
``overloaded_error`` event for ``mid-stream-error`` and no ``message_stop`` for
``no-done``.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamtape.core.faults import STREAM_FAULTS, apply_faults
from streamtape.simulator.asgi import HTTPError, Request, Response, json_response
from streamtape.simulator.chat import ARG_TOKEN_RE, example_value
from streamtape.simulator.routing import FAULT_HEADER, parse_faults
from streamtape.simulator.synth import (
    canned_text,
    count_tokens,
    digest,
    dumps,
    ident,
    text_of,
    tokenize,
)
from streamtape.simulator.synth import gaps as make_gaps
from streamtape.simulator.synth import seed as make_seed

if TYPE_CHECKING:
    from streamtape.simulator.app import DemoUpstream

__all__ = ["messages"]

_PREFACE = "I'll look that up with the tools I have."


class _MessagesError(Exception):
    """An error answer in the Messages API's shape."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"type": "error", "error": {"type": kind, "message": message}}


@dataclass
class _Block:
    kind: str  # text | thinking | tool_use
    pieces: list[str]
    head: dict[str, Any] = field(default_factory=dict)  # id/name of a tool, signature
    whole: Any = None  # a tool's input object


@dataclass
class _Plan:
    base: dict[str, Any]
    blocks: list[_Block]
    stop_reason: str
    usage: dict[str, Any]
    seed: int


def messages(upstream: DemoUpstream, request: Request) -> Response:
    """Answer ``/v1/messages`` for `upstream` (its speed and token cap)."""
    try:
        return _messages(upstream, request)
    except _MessagesError as exc:
        return json_response(exc.body, exc.status)


def _messages(upstream: DemoUpstream, request: Request) -> Response:
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not request.headers.get("x-api-key", "").strip() and not bearer.strip():
        raise _MessagesError(401, "authentication_error", "x-api-key header is required")
    if request.method != "POST":
        raise _MessagesError(405, "invalid_request_error", f"{request.method} is not allowed")
    try:
        faults = parse_faults(request.headers.get(FAULT_HEADER))
        body = request.json()
    except HTTPError as exc:
        raise _MessagesError(exc.status, "invalid_request_error", str(exc)) from None
    if "http-500" in faults:
        raise _MessagesError(500, "api_error", "Internal server error")
    if "http-429" in faults:
        raise _MessagesError(
            429, "rate_limit_error", "Number of requests has exceeded your rate limit."
        )
    plan = plan_message(body, upstream.max_tokens_cap)
    if not body.get("stream"):
        return json_response(whole_message(plan))
    events = message_events(plan)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events, ending = apply_faults(
        events,
        faults & STREAM_FAULTS,
        seed=plan.seed ^ 0xFA,
        error_event=_event("error", error),
        final=events[-1][1],
    )
    return Response(stream=events, ending=ending)


# ------------------------------------------------------------------------------ the plan


def _tools_to_call(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else "auto"
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
    content = last.get("content")
    answered = isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in content
    )
    if not tools or kind == "none" or answered:
        return []
    if kind == "tool":
        tools = [t for t in tools if t.get("name") == choice.get("name")] or tools[:1]
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
        tools = tools[:1]
    return tools[:4]


def plan_message(body: dict[str, Any], max_tokens_cap: int = 4096) -> _Plan:
    """What a request gets, the same whether streamed or not."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _MessagesError(
            400, "invalid_request_error", "messages: at least one message is required"
        )
    limit = body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise _MessagesError(
            400, "invalid_request_error", "max_tokens: a positive integer is required"
        )
    model = str(body.get("model") or "claude-sonnet-4-5")
    # Key order is the client's choice, not part of the request's meaning.
    key = json.dumps({k: v for k, v in body.items() if k != "stream"}, sort_keys=True)
    seed = make_seed("messages", key)
    rng = random.Random(seed)
    blocks: list[_Block] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        thought = tokenize(canned_text(random.Random(make_seed(seed, "thinking"))))
        signature = base64.b64encode(digest("signature", seed) * 3).decode()
        blocks.append(_Block("thinking", thought, {"signature": signature}))
    tools = _tools_to_call(body)
    cap = min(limit, max_tokens_cap)
    if tools:
        blocks.append(_Block("text", tokenize(_PREFACE)))
        for i, tool in enumerate(tools):
            value = example_value(tool.get("input_schema", {}), rng)
            head = {"id": ident("toolu_01", 22, seed, i), "name": str(tool["name"])}
            blocks.append(
                _Block("tool_use", ["", *ARG_TOKEN_RE.findall(dumps(value).decode())], head, value)
            )
        stop = "tool_use"
    else:
        tokens = tokenize(canned_text(rng))
        stop = "max_tokens" if len(tokens) > cap else "end_turn"
        blocks.append(_Block("text", tokens[:cap]))
    texts = [text_of(m.get("content")) for m in msgs if isinstance(m, dict)]
    system = body.get("system")
    texts.append(text_of(system) if system else "")
    usage = {
        "input_tokens": sum(count_tokens(t) for t in texts) + 4 * len(msgs),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": sum(len(b.pieces) for b in blocks),
        "service_tier": "standard",
    }
    base = {
        "id": ident("msg_01", 22, seed),
        "type": "message",
        "role": "assistant",
        "model": model,
    }
    return _Plan(base, blocks, stop, usage, seed)


def _start_of(block: _Block) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block.kind == "tool_use":
        return {"type": "tool_use", **block.head, "input": {}}
    return {"type": "text", "text": ""}


def _whole_of(block: _Block) -> dict[str, Any]:
    text = "".join(block.pieces)
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": text, "signature": block.head["signature"]}
    if block.kind == "tool_use":
        return {"type": "tool_use", **block.head, "input": block.whole}
    return {"type": "text", "text": text}


def whole_message(plan: _Plan) -> dict[str, Any]:
    """The non-stream answer."""
    return {
        **plan.base,
        "content": [_whole_of(b) for b in plan.blocks],
        "stop_reason": plan.stop_reason,
        "stop_sequence": None,
        "usage": plan.usage,
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def _deltas(index: int, block: _Block) -> list[dict[str, Any]]:
    if block.kind == "tool_use":
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in block.pieces]
    elif block.kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": p} for p in block.pieces]
        deltas.append({"type": "signature_delta", "signature": block.head["signature"]})
    else:
        deltas = [{"type": "text_delta", "text": p} for p in block.pieces]
    return [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]


def message_events(plan: _Plan) -> list[tuple[float, bytes]]:
    """The streamed answer: each SSE event with the delay before it (seconds, unscaled)."""
    start_usage = {**plan.usage, "output_tokens": 1}
    message = {**plan.base, "content": [], "stop_reason": None, "stop_sequence": None}
    payloads: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "usage": start_usage}}
    ]
    for index, block in enumerate(plan.blocks):
        payloads.append(
            {"type": "content_block_start", "index": index, "content_block": _start_of(block)}
        )
        if index == 0:
            payloads.append({"type": "ping"})
        payloads += _deltas(index, block)
        payloads.append({"type": "content_block_stop", "index": index})
    payloads.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": plan.usage["output_tokens"]},
        }
    )
    payloads.append({"type": "message_stop"})
    datas = [_event(p["type"], p) for p in payloads]
    gaps = make_gaps(random.Random(make_seed(plan.seed, "timing")), len(datas))
    return list(zip(gaps, datas, strict=True))
