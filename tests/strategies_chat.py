"""Hypothesis strategies for well-formed OpenAI chat streams and their SSE encodings.

"Well-formed" means what the OpenAI API sends: choice indices first seen in order
0, 1, 2..., tool-call ids and names only in the first fragment of each call, dense
0-based tool indices, usage only in the last chunk. On these the openai SDK is the
oracle, so every field the assembler handles is drawn here.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import strategies as st

# Text that exercises multi-byte UTF-8 (split across reads), JSON escapes and the
# line separators that str.splitlines would wrongly break on.
TEXT = st.text(
    alphabet=st.sampled_from(list('ab cé東🙂"\\\n\t\u2028\u0085{}')), min_size=0, max_size=6
)
NONEMPTY = st.text(alphabet=st.sampled_from(list("abcxyz_")), min_size=1, max_size=6)

TOP_LOGPROB = st.fixed_dictionaries(
    {
        "token": TEXT,
        "logprob": st.floats(-20, 0),
        "bytes": st.lists(st.integers(0, 255), max_size=3),
    }
)
TOKEN_LOGPROB = st.fixed_dictionaries(
    {
        "token": TEXT,
        "logprob": st.floats(-20, 0),
        "bytes": st.none() | st.lists(st.integers(0, 255), max_size=3),
        "top_logprobs": st.lists(TOP_LOGPROB, max_size=2),
    }
)


@st.composite
def choice_chunks(draw: st.DrawFn, index: int, logprobs: bool) -> list[dict[str, Any]]:  # noqa: C901 - one branch per field kind
    """The choice entries (``{"index", "delta", "logprobs", "finish_reason"}``) of one choice."""
    kind = draw(st.sampled_from(["content", "refusal", "tools", "function_call", "reasoning"]))
    first_delta: dict[str, Any] = {"role": "assistant"}
    first_delta["content"] = "" if kind in ("content", "reasoning") else None
    if draw(st.booleans()):
        first_delta["refusal"] = None
    out: list[dict[str, Any]] = [
        {
            "index": index,
            "delta": first_delta,
            "logprobs": {"content": [], "refusal": None} if logprobs else None,
            "finish_reason": None,
        }
    ]

    def lp(field: str) -> Any:
        if not logprobs:
            return None
        entries = draw(st.lists(TOKEN_LOGPROB, max_size=2))
        other = "refusal" if field == "content" else "content"
        return {field: entries, other: None}

    finish = "stop"
    if kind == "content":
        for piece in draw(st.lists(TEXT, max_size=8)):
            out.append({"index": index, "delta": {"content": piece}, "logprobs": lp("content")})
        finish = draw(st.sampled_from(["stop", "length", "content_filter"]))
    elif kind == "reasoning":
        key = draw(st.sampled_from(["reasoning_content", "reasoning"]))
        for piece in draw(st.lists(TEXT, min_size=1, max_size=5)):
            out.append({"index": index, "delta": {key: piece}, "logprobs": None})
        for piece in draw(st.lists(TEXT, max_size=4)):
            out.append({"index": index, "delta": {"content": piece}, "logprobs": None})
    elif kind == "refusal":
        for piece in draw(st.lists(TEXT, min_size=1, max_size=6)):
            out.append({"index": index, "delta": {"refusal": piece}, "logprobs": lp("refusal")})
    elif kind == "tools":
        finish = "tool_calls"
        for k in range(draw(st.integers(1, 3))):
            head = {
                "index": k,
                "id": f"call_{draw(NONEMPTY)}{k}",
                "type": "function",
                "function": {"name": draw(NONEMPTY), "arguments": ""},
            }
            out.append({"index": index, "delta": {"tool_calls": [head]}, "logprobs": None})
            for piece in draw(st.lists(TEXT, max_size=5)):
                frag = {"index": k, "function": {"arguments": piece}}
                out.append({"index": index, "delta": {"tool_calls": [frag]}, "logprobs": None})
    else:
        finish = "function_call"
        out.append(
            {
                "index": index,
                "delta": {"function_call": {"name": draw(NONEMPTY), "arguments": ""}},
                "logprobs": None,
            }
        )
        for piece in draw(st.lists(TEXT, max_size=5)):
            out.append(
                {"index": index, "delta": {"function_call": {"arguments": piece}}, "logprobs": None}
            )
    for entry in out[1:]:
        entry["finish_reason"] = None
    out.append({"index": index, "delta": {}, "logprobs": None, "finish_reason": finish})
    return out


@st.composite
def chat_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A well-formed ``chat.completion.chunk`` stream as a list of chunk dicts."""
    n = draw(st.integers(1, 3))
    logprobs = draw(st.booleans())
    per_choice = [draw(choice_chunks(i, logprobs)) for i in range(n)]
    # Interleave the choices, keeping each one's order and first appearances 0, 1, 2...
    order: list[int] = []
    remaining = [len(c) for c in per_choice]
    started = 0
    while any(remaining):
        live = [i for i in range(min(started + 1, n)) if remaining[i]]
        i = draw(st.sampled_from(live))
        if i == started:
            started += 1
        order.append(i)
        remaining[i] -= 1
    pos = [0] * n
    top: dict[str, Any] = {
        "id": "chatcmpl-" + draw(NONEMPTY),
        "object": "chat.completion.chunk",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(st.sampled_from(["gpt-4o", "gpt-4o-mini-2024-07-18"])),
    }
    fingerprint = draw(st.sampled_from([None, "fp_1", "absent"]))
    tier = draw(st.sampled_from([None, "default", "absent"]))
    obfuscate = draw(st.booleans())
    include_usage = draw(st.booleans())
    chunks = []
    for i in order:
        chunk = dict(top)
        if fingerprint != "absent":
            chunk["system_fingerprint"] = fingerprint
        if tier != "absent":
            chunk["service_tier"] = tier
        chunk["choices"] = [per_choice[i][pos[i]]]
        pos[i] += 1
        if include_usage:
            chunk["usage"] = None
        if obfuscate:
            chunk["obfuscation"] = draw(NONEMPTY)
        chunks.append(chunk)
    if include_usage:
        chunk = dict(top)
        if fingerprint != "absent":
            chunk["system_fingerprint"] = fingerprint
        chunk["choices"] = []
        chunk["usage"] = {
            "prompt_tokens": draw(st.integers(0, 100)),
            "completion_tokens": draw(st.integers(0, 100)),
            "total_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        chunks.append(chunk)
    if draw(st.booleans()):
        # Azure's placeholder first chunk: dropped by the SDK's .stream() and by us.
        azure = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        }
        chunks.insert(0, azure)
    return chunks


@st.composite
def sse_bodies(draw: st.DrawFn, chunks: list[dict[str, Any]]) -> bytes:
    """Encode chunks as an SSE body with random line ends, comments and spacing."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    parts = []
    for chunk in chunks:
        if draw(st.integers(0, 5)) == 0:
            parts.append(b": keep-alive" + eol)
        prefix = draw(st.sampled_from([b"data: ", b"data:"]))
        payload = json.dumps(chunk, ensure_ascii=draw(st.booleans())).encode()
        parts.append(prefix + payload + eol + eol)
    parts.append(b"data: [DONE]" + eol + eol)
    return b"".join(parts)


def split_reads(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """Cut ``body`` into reads at random points (mid-UTF-8, mid-CRLF included)."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=12))))
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]
