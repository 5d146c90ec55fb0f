"""Text completions (``POST /v1/completions``): the legacy endpoint, streamed or whole.

Like chat, one plan decides the reply from the body alone; logprobs come in the four
parallel lists of this API rather than chat's entries. ``max_tokens`` defaults to 16
as in the real API, and every choice is cut there (``finish_reason: length``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from streamtape.core.faults import Event
from streamtape.simulator.asgi import HTTPError, Response, json_response
from streamtape.simulator.chat import choice_count
from streamtape.simulator.routing import Call, streamed
from streamtape.simulator.synth import (
    EPOCH,
    Reply,
    canned_text,
    chunk_stream,
    count_tokens,
    ident,
    include_usage,
    logprob_entry,
    reply_seed,
    seed,
    tokenize,
)

_DEFAULT_MAX_TOKENS = 16  # the real API's default for this endpoint


@dataclass
class TextChoice:
    index: int
    tokens: list[str]
    logprobs: list[dict[str, Any]] | None
    finish_reason: str


def _prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(map(str, prompt))]
    if isinstance(prompt, list) and prompt:
        return [p if isinstance(p, str) else " ".join(map(str, p)) for p in prompt]
    raise HTTPError(400, "'prompt' must be a string or a non-empty array.", param="prompt")


def _limits(body: dict[str, Any]) -> tuple[int, int | None]:
    """``max_tokens`` and ``logprobs`` (how many alternatives, or None), validated."""
    limit = body.get("max_tokens")
    limit = _DEFAULT_MAX_TOKENS if limit is None else limit
    if not isinstance(limit, int) or limit < 1:
        raise HTTPError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
    top = body.get("logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 5):
        raise HTTPError(400, "'logprobs' must be between 0 and 5.", param="logprobs")
    return limit, top


def plan_completion(body: dict[str, Any], max_tokens_cap: int) -> Reply[TextChoice]:
    """Everything about the reply to a text completion body."""
    prompts = _prompts(body)
    model = str(body.get("model") or "gpt-3.5-turbo-instruct")
    reply = reply_seed("completion", body)
    n = choice_count(body)
    limit, top = _limits(body)
    cap = min(limit, max_tokens_cap)
    choices: list[TextChoice] = []
    for index in range(len(prompts) * n):  # n choices per prompt, prompt by prompt
        rng = random.Random(seed(reply, index))
        tokens = tokenize("\n\n" + canned_text(rng, cap))[:cap]
        logprobs = None
        if top is not None:
            lp_rng = random.Random(seed(reply, index, "logprobs"))
            logprobs = [logprob_entry(lp_rng, t, top) for t in tokens]
        choices.append(TextChoice(index, tokens, logprobs, "length"))
    prompt_tokens = sum(count_tokens(p) for p in prompts)
    completion_tokens = sum(len(c.tokens) for c in choices)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    base = {
        "id": ident("cmpl-", 29, reply),
        "object": "text_completion",
        "created": EPOCH + reply % 50_000_000,
        "model": model,
    }
    return Reply(base, choices, usage, reply)


def legacy_logprobs(entries: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    """The four parallel lists of the text completions API, from chat-style entries."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{a["token"]: a["logprob"] for a in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def _steps(c: TextChoice) -> list[dict[str, Any]]:
    steps = []
    offset = 0
    for i, tok in enumerate(c.tokens):
        lp = None if c.logprobs is None else legacy_logprobs([c.logprobs[i]], offset)
        steps.append({"text": tok, "index": c.index, "logprobs": lp, "finish_reason": None})
        offset += len(tok)
    steps.append({"text": "", "index": c.index, "logprobs": None, "finish_reason": c.finish_reason})
    return steps


def completion_events(body: dict[str, Any], max_tokens_cap: int) -> tuple[list[Event], int]:
    """The clean event stream of a text completion body and the seed its faults derive from."""
    plan = plan_completion(body, max_tokens_cap)
    per_choice = [_steps(c) for c in plan.choices]
    usage = plan.usage if include_usage(body) else None
    return chunk_stream(plan.base, per_choice, usage, plan.seed), plan.seed


def completion(body: dict[str, Any], max_tokens_cap: int) -> dict[str, Any]:
    """The whole ``text_completion`` object for a body."""
    plan = plan_completion(body, max_tokens_cap)
    out = [
        {
            "text": "".join(c.tokens),
            "index": c.index,
            "logprobs": None if c.logprobs is None else legacy_logprobs(c.logprobs, 0),
            "finish_reason": c.finish_reason,
        }
        for c in plan.choices
    ]
    return {**plan.base, "choices": out, "usage": plan.usage}


def respond(call: Call, max_tokens_cap: int) -> Response:
    """``POST /v1/completions``."""
    body = call.json()
    if body.get("stream"):
        return streamed(*completion_events(body, max_tokens_cap), call.faults)
    return json_response(completion(body, max_tokens_cap))
