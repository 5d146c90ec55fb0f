"""From raw SSE bytes to the full completion object: streamtape vs. peers vs. the floor.

Run: ``python benchmarks/bench_decode.py`` (add ``--quick`` for fewer repeats).

Every figure is measured in this one run on the same generated streams:

* **streamtape**: ``streamtape.assembly.assemble(body)``.
* **openai SDK**: its ``SSEDecoder`` over the body, ``json.loads`` + ``construct_type``
  of each chunk (what ``Stream`` does), then ``ChatCompletionStreamState`` (chat) or a
  join of ``Completion.choices[].text`` by index (text: the SDK has no accumulator).
* **litellm**: ``json.loads`` of each payload, then ``stream_chunk_builder``
  (skipped when litellm is not importable).
* **floor**: one untyped ``msgspec.json.decode`` of all payloads joined as a JSON array:
  no SSE parsing and no assembly at all.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import msgspec

from streamtape.formats.openai_chat.assembler import assemble

WORDS = [
    *[
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "that",
        "it",
        "for",
        "as",
        "with",
        "was",
        "on",
        "be",
        "by",
        "this",
        "are",
        "from",
        "at",
        "or",
        "an",
    ],
    *[
        "stream",
        "token",
        "model",
        "reply",
        "chunk",
        "data",
        "value",
        "server",
        "client",
        "request",
        "response",
    ],
    *["café", "naïve", "東京", "🙂", 'a "quote"', "back\\slash", "new\nline", "\ttab"],
]


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    parts = [b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks]
    return b"".join(parts) + b"data: [DONE]\n\n"


def _base(i: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AB12cd34EF56gh78IJ90kl",
        "object": "chat.completion.chunk",
        "created": 1727346170,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_b40fb1c6fb",
        "choices": [],
    }


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 42,
        "completion_tokens": 300,
        "total_tokens": 342,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def chat_stream(rng: random.Random, tokens: int, logprobs: bool = False, n: int = 1) -> bytes:
    """A chat stream like OpenAI's: role chunk, content tokens, finish, usage chunk."""
    chunks = []
    for idx in range(n):
        c = _base(0)
        c["choices"] = [
            {
                "index": idx,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": {"content": [], "refusal": None} if logprobs else None,
                "finish_reason": None,
            }
        ]
        chunks.append(c)
    for _ in range(tokens):
        for idx in range(n):
            tok = rng.choice(WORDS) + " "
            c = _base(0)
            lp = None
            if logprobs:
                lp = {
                    "content": [
                        {
                            "token": tok,
                            "logprob": -rng.random(),
                            "bytes": list(tok.encode()),
                            "top_logprobs": [
                                {
                                    "token": t,
                                    "logprob": -rng.random() * 5,
                                    "bytes": list(t.encode()),
                                }
                                for t in (tok, rng.choice(WORDS))
                            ],
                        }
                    ],
                    "refusal": None,
                }
            c["choices"] = [
                {"index": idx, "delta": {"content": tok}, "logprobs": lp, "finish_reason": None}
            ]
            chunks.append(c)
    for idx in range(n):
        c = _base(0)
        c["choices"] = [{"index": idx, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
        chunks.append(c)
    c = _base(0)
    c["usage"] = _usage()
    chunks.append(c)
    return _sse(chunks)


def tool_stream(rng: random.Random, calls: int = 3, fragments: int = 60) -> bytes:
    """Parallel tool calls: id/name in the first fragment, then argument fragments."""
    chunks = []
    c = _base(0)
    c["choices"] = [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": None, "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    chunks.append(c)
    for k in range(calls):
        head = {
            "index": k,
            "id": f"call_{k}abcdefghijklmnop",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        c = _base(0)
        c["choices"] = [
            {"index": 0, "delta": {"tool_calls": [head]}, "logprobs": None, "finish_reason": None}
        ]
        chunks.append(c)
        for _ in range(fragments):
            frag = {
                "index": k,
                "function": {"arguments": rng.choice(['{"', "city", '":"', "Paris", '"}', ", "])},
            }
            c = _base(0)
            c["choices"] = [
                {
                    "index": 0,
                    "delta": {"tool_calls": [frag]},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
            chunks.append(c)
    c = _base(0)
    c["choices"] = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]
    chunks.append(c)
    return _sse(chunks)


def text_stream(rng: random.Random, tokens: int) -> bytes:
    """A legacy text completion stream (``object: text_completion``)."""
    chunks = []
    for i in range(tokens):
        chunks.append(
            {
                "id": "cmpl-AB12cd34EF56gh78IJ90kl",
                "object": "text_completion",
                "created": 1727346170,
                "model": "gpt-3.5-turbo-instruct",
                "choices": [
                    {
                        "text": rng.choice(WORDS) + " ",
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": "length" if i == tokens - 1 else None,
                    }
                ],
            }
        )
    return _sse(chunks)


def _payloads(body: bytes) -> list[bytes]:
    out = []
    for block in body.split(b"\n\n"):
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            out.append(block[6:])
    return out


def floor(body: bytes, payloads: list[bytes]) -> Any:
    return msgspec.json.decode(b"[" + b",".join(payloads) + b"]")


def openai_path(body: bytes, text: bool) -> Any:
    from openai._models import construct_type
    from openai._streaming import SSEDecoder
    from openai.lib.streaming.chat._completions import ChatCompletionStreamState
    from openai.types import Completion
    from openai.types.chat import ChatCompletionChunk

    events = SSEDecoder().iter_bytes(iter([body]))
    if text:
        parts: dict[int, list[str]] = {}
        for sse in events:
            if sse.data.startswith("[DONE]"):
                break
            comp = construct_type(type_=Completion, value=json.loads(sse.data))
            for ch in comp.choices:
                parts.setdefault(ch.index, []).append(ch.text)
        return {i: "".join(p) for i, p in parts.items()}
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for sse in events:
        if sse.data.startswith("[DONE]"):
            break
        chunk = construct_type(type_=ChatCompletionChunk, value=json.loads(sse.data))
        if chunk.object == "chat.completion.chunk":
            state.handle_chunk(chunk)
    return state.current_completion_snapshot


def litellm_path(payloads: list[bytes]) -> Any:
    import litellm

    return litellm.stream_chunk_builder(chunks=[json.loads(p) for p in payloads])


def measure(
    fns: dict[str, Callable[[], Any]],
    budget: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Best time per call (seconds) of each function.

    The functions take turns, batch after batch, until ``budget`` seconds have passed, so
    a load spike on a shared machine hits all of them alike; the minimum is kept.
    ``clock`` times each batch (``time.thread_time`` counts only this thread's CPU
    time, for machines whose other work would otherwise show up in the figures).
    """
    batch: dict[str, int] = {}
    for name, fn in fns.items():
        fn()
        t0 = clock()
        fn()
        batch[name] = max(1, int(0.01 / max(clock() - t0, 1e-7)))
    best = dict.fromkeys(fns, float("inf"))
    deadline = time.perf_counter() + budget
    rounds = 0
    while time.perf_counter() < deadline or rounds < 3:
        rounds += 1
        for name, fn in fns.items():
            n = batch[name]
            t0 = clock()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (clock() - t0) / n)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    budget = 0.3 if quick else 1.5
    rng = random.Random(7)
    streams = {
        "chat 300 tokens": (chat_stream(rng, 300), False),
        "chat 150 + logprobs": (chat_stream(rng, 150, logprobs=True), False),
        "tool calls 3x60": (tool_stream(rng), False),
        "chat n=3 x100": (chat_stream(rng, 100, n=3), False),
        "text 300 tokens": (text_stream(rng, 300), True),
    }
    # Keep litellm from fetching its model price list over the network at import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm  # noqa: F401

        have_litellm = True
    except ImportError:
        have_litellm = False
    warnings.simplefilter("ignore")
    print(
        f"{'stream':<22}{'KiB':>6}{'streamtape':>12}{'floor':>10}{'/floor':>8}"
        f"{'openai':>11}{'openai/st':>11}{'litellm':>11}{'litellm/st':>11}"
    )
    for name, (body, text) in streams.items():
        payloads = _payloads(body)
        fns: dict[str, Callable[[], Any]] = {
            "streamtape": lambda b=body: assemble(b),
            "floor": lambda b=body, p=payloads: floor(b, p),
        }
        peers: dict[str, Callable[[], Any]] = {"openai": lambda b=body, t=text: openai_path(b, t)}
        if have_litellm:
            peers["litellm"] = lambda p=payloads: litellm_path(p)
        fast = measure(fns, budget)
        ours, fl = fast["streamtape"], fast["floor"]
        row = f"{name:<22}{len(body) / 1024:>6.1f}{ours * 1e6:>10.0f}µs{fl * 1e6:>8.0f}µs"
        row += f"{ours / fl:>7.2f}x"
        for peer, fn in peers.items():
            try:
                t = measure({peer: fn}, budget / 3)[peer]
                row += f"{t * 1e3:>9.2f}ms{t / ours:>10.0f}x"
            except Exception as exc:  # a peer failing is a finding, not a crash
                row += f"  {peer} failed: {type(exc).__name__}"
        if not have_litellm:
            row += "  litellm not installed"
        print(row)


if __name__ == "__main__":
    main()
