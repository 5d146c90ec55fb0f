"""Chat completions: one planned reply, served as a chunk stream or as one whole object.

`plan_chat` decides everything about a reply (choices, tokens, tool calls, logprobs,
usage, ids) from the request body alone, so the streamed and the whole answer to the
same request agree, and `DemoUpstream.plan` can list a stream's events without a
server. Tool-call arguments are generated from the tool's JSON schema so they parse
and validate; ``demo:refuse`` in the last user message gets a refusal.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from streamtape.core.faults import Event
from streamtape.simulator.asgi import HTTPError, Response, json_response
from streamtape.simulator.routing import Call, streamed
from streamtape.simulator.synth import (
    EPOCH,
    Reply,
    canned_text,
    chunk_stream,
    count_tokens,
    digest,
    dumps,
    ident,
    include_usage,
    logprob_entry,
    reply_seed,
    seed,
    text_of,
    tokenize,
)

_REFUSAL = "I'm sorry, but I can't help with that request."
_ARG_STRINGS = ("Edinburgh", "Paris", "celsius", "AAPL", "2024-09-26", "hello world", "Lisbon")
ARG_TOKEN_RE = re.compile(r"[A-Za-z0-9_]{1,6}|[^A-Za-z0-9_]{1,3}")
_MAX_PARALLEL_CALLS = 4


def example_value(schema: Any, rng: random.Random, name: str = "") -> Any:
    """A plausible value for a JSON-schema node, so tool-call arguments parse and validate."""
    if not isinstance(schema, dict):
        return rng.choice(_ARG_STRINGS)
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][rng.randrange(len(schema["enum"]))]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return {}
        return {str(k): example_value(v, rng, str(k)) for k, v in props.items()}
    if kind == "array":
        return [example_value(schema.get("items", {}), rng, name) for _ in range(rng.randint(1, 2))]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if "city" in name or "location" in name:
        return rng.choice(("Edinburgh", "Paris", "Lisbon", "Kyoto"))
    return rng.choice(_ARG_STRINGS)


def choice_count(body: dict[str, Any]) -> int:
    """The request's ``n`` (1 to 8), shared by chat and text completions."""
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 8:
        raise HTTPError(400, "'n' must be an integer between 1 and 8.", param="n")
    return n


@dataclass
class ChatChoice:
    index: int
    kind: Literal["content", "refusal", "tools"]
    tokens: list[str]
    logprobs: list[dict[str, Any]] | None
    tool_calls: list[tuple[str, str, list[str]]]  # (id, name, argument fragments)
    finish_reason: str


@dataclass
class _Options:
    """What a chat body asks for, validated."""

    seed: int
    n: int
    limit: int | None
    want_logprobs: bool
    top: int
    tools: list[dict[str, Any]]
    use_tools: bool
    forced: bool
    refuse: bool

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _Options:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPError(400, "'messages' must be a non-empty array.", param="messages")
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        n = choice_count(body)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise HTTPError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
        top = body.get("top_logprobs") or 0
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise HTTPError(400, "'top_logprobs' must be between 0 and 20.", param="top_logprobs")
        tools, use_tools, forced = _tools_to_call(body, last)
        return cls(
            seed=reply_seed("chat", body),
            n=n,
            limit=limit,
            want_logprobs=bool(body.get("logprobs")),
            top=top,
            tools=tools,
            use_tools=use_tools,
            forced=forced,
            refuse="demo:refuse" in text_of(last.get("content")).lower(),
        )


def _tools_to_call(
    body: dict[str, Any], last: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool, bool]:
    """The tools a reply calls, whether it calls any, and whether ``tool_choice`` forced one."""
    tools = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    tool_choice = body.get("tool_choice", "auto")
    forced: str | None = None
    if isinstance(tool_choice, dict):
        forced = str((tool_choice.get("function") or {}).get("name", ""))
    use_tools = bool(tools) and tool_choice != "none" and last.get("role") != "tool"
    if forced:
        tools = [t for t in tools if t.get("name") == forced] or tools[:1]
    elif use_tools and body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    return tools, use_tools, bool(forced)


def _tool_choice(opts: _Options, index: int, rng: random.Random) -> ChatChoice:
    calls = []
    for t_index, tool in enumerate(opts.tools[:_MAX_PARALLEL_CALLS]):
        args = dumps(example_value(tool.get("parameters", {}), rng)).decode()
        call_id = ident("call_", 24, opts.seed, index, t_index)
        calls.append((call_id, str(tool.get("name", "tool")), ARG_TOKEN_RE.findall(args)))
    finish = "stop" if opts.forced else "tool_calls"
    return ChatChoice(index, "tools", [], None, calls, finish)


def _text_choice(opts: _Options, index: int, rng: random.Random, cap: int) -> ChatChoice:
    limit = opts.limit
    if opts.refuse:
        tokens, finish = tokenize(_REFUSAL), "stop"
    else:
        cap = min(limit or cap, cap)
        tokens = tokenize(canned_text(rng, cap if limit else 0))
        finish = "length" if limit or len(tokens) > cap else "stop"
        tokens = tokens[:cap]
    if tokens:
        tokens[0] = tokens[0].lstrip()
    logprobs = None
    if opts.want_logprobs:
        lp_rng = random.Random(seed(opts.seed, index, "logprobs"))
        logprobs = [logprob_entry(lp_rng, t, opts.top) for t in tokens]
    kind: Literal["content", "refusal"] = "refusal" if opts.refuse else "content"
    return ChatChoice(index, kind, tokens, logprobs, [], finish)


def _usage(messages: list[Any], choices: list[ChatChoice]) -> dict[str, Any]:
    completion_tokens = sum(
        len(c.tokens) + sum(len(f) for _, _, f in c.tool_calls) + 2 * len(c.tool_calls)
        for c in choices
    )
    prompt_texts = [text_of(m.get("content")) for m in messages if isinstance(m, dict)]
    prompt_tokens = sum(count_tokens(t) + 4 for t in prompt_texts) + 3
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def plan_chat(body: dict[str, Any], max_tokens_cap: int) -> Reply[ChatChoice]:
    """Everything about the reply to a chat body; `max_tokens_cap` bounds its length."""
    opts = _Options.parse(body)
    choices: list[ChatChoice] = []
    for index in range(opts.n):
        rng = random.Random(seed(opts.seed, index))
        if opts.use_tools:
            choices.append(_tool_choice(opts, index, rng))
        else:
            choices.append(_text_choice(opts, index, rng, max_tokens_cap))
    model = str(body.get("model") or "gpt-4o-mini")
    base = {
        "id": ident("chatcmpl-", 29, opts.seed),
        "object": "chat.completion.chunk",
        "created": EPOCH + opts.seed % 50_000_000,
        "model": model,
        "system_fingerprint": "fp_" + digest("fp", model).hex()[:10],
    }
    return Reply(base, choices, _usage(body["messages"], choices), opts.seed)


def _delta(
    index: int, delta: dict[str, Any], logprobs: Any, finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


def _tool_steps(c: ChatChoice) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
    for t_index, (call_id, name, fragments) in enumerate(c.tool_calls):
        first = {
            "index": t_index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        steps.append({"tool_calls": [first]})
        steps += [
            {"tool_calls": [{"index": t_index, "function": {"arguments": f}}]} for f in fragments
        ]
    return [_delta(c.index, d, None) for d in steps]


def _by_kind(kind: str, value: Any) -> dict[str, Any]:
    """``content`` and ``refusal`` (in the API's order): `value` under the choice's kind."""
    return {
        "content": value if kind == "content" else None,
        "refusal": value if kind == "refusal" else None,
    }


def _text_steps(c: ChatChoice) -> list[dict[str, Any]]:
    """Role first, then one token per chunk, in ``content`` or ``refusal``."""
    key = "refusal" if c.kind == "refusal" else "content"
    role_lp = _by_kind(c.kind, []) if c.logprobs is not None else None
    steps = [_delta(c.index, {"role": "assistant", **_by_kind(c.kind, "")}, role_lp)]
    for i, tok in enumerate(c.tokens):
        lp = _by_kind(c.kind, [c.logprobs[i]]) if c.logprobs else None
        steps.append(_delta(c.index, {key: tok}, lp))
    return steps


def chat_events(body: dict[str, Any], max_tokens_cap: int) -> tuple[list[Event], int]:
    """The clean event stream of a chat body and the seed its faults derive from."""
    chat = plan_chat(body, max_tokens_cap)
    per_choice = []
    for c in chat.choices:
        steps = _tool_steps(c) if c.kind == "tools" else _text_steps(c)
        steps.append(_delta(c.index, {}, None, c.finish_reason))
        per_choice.append(steps)
    usage = chat.usage if include_usage(body) else None
    return chunk_stream(chat.base, per_choice, usage, chat.seed), chat.seed


def chat_completion(body: dict[str, Any], max_tokens_cap: int) -> dict[str, Any]:
    """The whole ``chat.completion`` object for a chat body."""
    chat = plan_chat(body, max_tokens_cap)
    choices = []
    for c in chat.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(c.tokens) if c.kind == "content" else None,
            "refusal": "".join(c.tokens) if c.kind == "refusal" else None,
            "annotations": [],
        }
        if c.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": "".join(f)}}
                for cid, name, f in c.tool_calls
            ]
        logprobs = None if c.logprobs is None else _by_kind(c.kind, c.logprobs)
        choices.append(
            {
                "index": c.index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": c.finish_reason,
            }
        )
    return {
        **chat.base,
        "object": "chat.completion",
        "choices": choices,
        "usage": chat.usage,
        "service_tier": "default",
    }


def respond(call: Call, max_tokens_cap: int) -> Response:
    """``POST /v1/chat/completions``."""
    body = call.json()
    if body.get("stream"):
        return streamed(*chat_events(body, max_tokens_cap), call.faults)
    return json_response(chat_completion(body, max_tokens_cap))
