"""From raw Anthropic Messages SSE bytes to the final message: streamtape vs the SDK vs the floor.

Run: ``python benchmarks/bench_decode_anthropic.py`` (add ``--quick`` for fewer repeats).

Every figure is measured in this one run on the same generated streams, in CPU time of
this process (``time.process_time``), so other work on a shared machine does not count:

* **streamtape**: ``streamtape.formats.anthropic_messages.assemble(body)``.
* **anthropic SDK**: what ``client.messages.stream()`` does to the bytes: its
  ``SSEDecoder`` over the body, the ``Stream`` filter (pings, unnamed and empty events),
  ``json.loads`` + ``construct_type`` into its event models, then ``accumulate_event``.
* **floor**: one untyped ``msgspec.json.decode`` of all data payloads joined as a JSON
  array: no SSE parsing and no assembly at all.
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import msgspec
from bench_decode import WORDS, measure

from streamtape.formats.anthropic_messages import assemble


def _ev(name: str, payload: dict[str, Any]) -> bytes:
    return (
        f"event: {name}\ndata: ".encode()
        + json.dumps(payload, ensure_ascii=False).encode()
        + b"\n\n"
    )


def _start() -> bytes:
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 472,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 2,
            "service_tier": "standard",
        },
    }
    return _ev("message_start", {"type": "message_start", "message": message})


def _block(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    out = [
        _ev(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
    ]
    if index == 0:
        out.append(_ev("ping", {"type": "ping"}))
    out += [
        _ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    out.append(_ev("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def _end(stop: str, tokens: int) -> list[bytes]:
    delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    delta["usage"] = {"output_tokens": tokens}
    return [_ev("message_delta", delta), _ev("message_stop", {"type": "message_stop"})]


def text_stream(rng: random.Random, deltas: int) -> bytes:
    """One text block of ``deltas`` text deltas, as the Messages API streams it."""
    texts = [{"type": "text_delta", "text": rng.choice(WORDS) + " "} for _ in range(deltas)]
    parts = [_start(), *_block(0, {"type": "text", "text": ""}, texts), *_end("end_turn", deltas)]
    return b"".join(parts)


def _fragments(rng: random.Random, value: Any, count: int) -> list[str]:
    text = json.dumps(value)
    cuts = sorted(rng.sample(range(1, len(text)), count - 1))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def tool_thinking_stream(rng: random.Random, thoughts: int = 150, calls: int = 3) -> bytes:
    """Thinking (150 deltas and a signature), a short text, then 3 parallel tool_use blocks
    whose input streams in 60 JSON fragments each."""
    thinking = [
        {"type": "thinking_delta", "thinking": rng.choice(WORDS) + " "} for _ in range(thoughts)
    ]
    thinking.append({"type": "signature_delta", "signature": "ErUBCkYIARgCIkCMkRFg" * 8})
    parts = [_start(), *_block(0, {"type": "thinking", "thinking": "", "signature": ""}, thinking)]
    text = [{"type": "text_delta", "text": rng.choice(WORDS) + " "} for _ in range(20)]
    parts += _block(1, {"type": "text", "text": ""}, text)
    for k in range(calls):
        value = {
            "city": rng.choice(["Paris", "Edinburgh", "東京"]),
            "days": rng.randint(1, 14),
            "units": "celsius",
            "notes": " ".join(rng.choice(WORDS) for _ in range(40)),
        }
        head = {
            "type": "tool_use",
            "id": f"toolu_01{k}abcdefghijklmnopq",
            "name": "get_weather",
            "input": {},
        }
        frags = [
            {"type": "input_json_delta", "partial_json": f}
            for f in ["", *_fragments(rng, value, 60)]
        ]
        parts += _block(2 + k, head, frags)
    return b"".join([*parts, *_end("tool_use", thoughts + 20 + 60 * calls)])


def _payloads(body: bytes) -> list[bytes]:
    return [
        line[6:]
        for block in body.split(b"\n\n")
        for line in block.split(b"\n")
        if line.startswith(b"data: ")
    ]


def floor(payloads: list[bytes]) -> Any:
    return msgspec.json.decode(b"[" + b",".join(payloads) + b"]")


def sdk_path(body: bytes) -> Any:
    from anthropic._models import construct_type
    from anthropic._streaming import SSEDecoder
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import RawMessageStreamEvent

    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    for sse in SSEDecoder().iter_bytes(iter([body])):
        if sse.event == "ping" or sse.event is None or not sse.data:
            continue
        event = construct_type(type_=RawMessageStreamEvent, value=json.loads(sse.data))
        if snapshot is None and event.type != "message_start":
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def main() -> None:
    quick = "--quick" in sys.argv
    budget = 0.3 if quick else 1.5
    rng = random.Random(7)
    streams = {
        "text 300 deltas": text_stream(rng, 300),
        "thinking+3 tools": tool_thinking_stream(rng),
    }
    warnings.simplefilter("ignore")
    for body in streams.values():  # the same message both ways, or the race means nothing
        assert _same_ignoring_nulls(assemble(body).to_dict(), sdk_path(body).to_dict())
    print(
        f"{'stream':<20}{'KiB':>6}{'streamtape':>12}{'floor':>10}{'/floor':>8}{'sdk':>11}{'sdk/st':>9}"
    )
    for name, body in streams.items():
        payloads = _payloads(body)
        fns: dict[str, Callable[[], Any]] = {
            "streamtape": lambda b=body: assemble(b),
            "floor": lambda p=payloads: floor(p),
        }
        fast = measure(fns, budget, time.process_time)
        ours_t, fl = fast["streamtape"], fast["floor"]
        sdk_t = measure({"sdk": lambda b=body: sdk_path(b)}, budget / 3, time.process_time)["sdk"]
        print(
            f"{name:<20}{len(body) / 1024:>6.1f}{ours_t * 1e6:>10.0f}µs{fl * 1e6:>8.0f}µs"
            f"{ours_t / fl:>7.2f}x{sdk_t * 1e3:>9.2f}ms{sdk_t / ours_t:>8.0f}x"
        )


def _same_ignoring_nulls(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items() if v is not None}
        if isinstance(x, list):
            return [norm(v) for v in x]
        return x

    return bool(norm(a) == norm(b))


if __name__ == "__main__":
    main()
