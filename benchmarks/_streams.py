"""Synthetic OpenAI-shaped SSE streams shared by the benchmarks, so each measures the same bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable


def chat_event(delta: dict[str, object], finish: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` SSE event as the OpenAI API frames it."""
    chunk = {
        "id": "chatcmpl-bench0123456789",
        "object": "chat.completion.chunk",
        "created": 1_730_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0123456789",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def chat_events(tokens: Iterable[str]) -> list[bytes]:
    """A whole chat stream: role chunk, one chunk per token, stop chunk, ``[DONE]``."""
    return [
        chat_event({"role": "assistant", "content": ""}),
        *(chat_event({"content": token}) for token in tokens),
        chat_event({}, "stop"),
        b"data: [DONE]\n\n",
    ]
