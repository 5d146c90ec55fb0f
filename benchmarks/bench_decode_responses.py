"""From raw Responses API SSE bytes to the final response: streamtape vs the SDK vs the floor.

Run: ``python benchmarks/bench_decode_responses.py`` (add ``--quick`` for fewer repeats,
``--cpu`` to time this thread's CPU time instead of wall time on a busy machine).

Every figure is measured in this one run on the same generated streams:

* **streamtape**: ``streamtape.formats.openai_responses.assemble(body)``.
* **openai SDK**: its ``SSEDecoder`` over the body, ``json.loads`` + ``construct_type``
  of each event into ``ResponseStreamEvent`` (what ``Stream`` does), then
  ``ResponseStreamState.handle_event`` (what ``client.responses.stream()`` does),
  ending at the state's completed response.
* **floor**: one untyped ``msgspec.json.decode`` of all payloads joined as a JSON array:
  no SSE parsing and no assembly at all.
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

from streamtape.formats.openai_responses import assemble

RID = "resp_6859a4ad7d3c81999e9e02548c91e2a8077218073e9990d3"


def _top(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": RID,
        "object": "response",
        "created_at": 1750705325,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": 2048,
        "model": "gpt-4o-2024-08-06",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


USAGE = {
    "input_tokens": 42,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 342,
}


class Stream:
    """Builds a stream event by event, numbering them, framed as the API frames them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.output: list[dict[str, Any]] = []
        self.add("response.created", response=_top("in_progress", [], None))
        self.add("response.in_progress", response=_top("in_progress", [], None))

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def deltas(self, kind: str, texts: list[str], **where: Any) -> str:
        for t in texts:
            self.add(kind, **where, delta=t, obfuscation="q1w2e3")
        return "".join(texts)

    def body(self) -> bytes:
        self.add("response.completed", response=_top("completed", self.output, USAGE))
        return b"".join(
            b"event: "
            + e["type"].encode()
            + b"\ndata: "
            + json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()
            + b"\n\n"
            for e in self.events
        )


def text_stream(rng: random.Random, tokens: int) -> bytes:
    s = Stream()
    mid = "msg_6859a4af047c8199a905d58a69677087077218073e9990d3"
    item = {
        "id": mid,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    s.add("response.output_item.added", output_index=0, item=item)
    where = {"item_id": mid, "output_index": 0, "content_index": 0}
    s.add(
        "response.content_part.added",
        **where,
        part={"type": "output_text", "annotations": [], "text": ""},
    )
    words = [rng.choice(WORDS) + " " for _ in range(tokens)]
    for w in words:
        s.add("response.output_text.delta", **where, delta=w, logprobs=[], obfuscation="q1w2e3")
    text = "".join(words)
    s.add("response.output_text.done", **where, text=text, logprobs=[])
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    s.add("response.content_part.done", **where, part=part)
    done = {**item, "status": "completed", "content": [part]}
    s.add("response.output_item.done", output_index=0, item=done)
    s.output.append(done)
    return s.body()


def tool_stream(
    rng: random.Random, summary: int = 100, calls: int = 3, fragments: int = 60
) -> bytes:
    """A reasoning summary, then parallel function calls streaming their arguments."""
    s = Stream()
    rid = "rs_6859a4bf849c819abf1f2771923bab5c0a7ba57447365234"
    s.add(
        "response.output_item.added",
        output_index=0,
        item={"id": rid, "type": "reasoning", "summary": []},
    )
    where = {"item_id": rid, "output_index": 0, "summary_index": 0}
    s.add(
        "response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}
    )
    text = s.deltas(
        "response.reasoning_summary_text.delta",
        [rng.choice(WORDS) + " " for _ in range(summary)],
        **where,
    )
    s.add("response.reasoning_summary_text.done", **where, text=text)
    s.add(
        "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}
    )
    reasoning = {
        "id": rid,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
    }
    s.add("response.output_item.done", output_index=0, item=reasoning)
    s.output.append(reasoning)
    for k in range(1, calls + 1):
        fid = f"fc_6859a4c0aac4819a9357cdf5bc18c25f0a7ba5744736523{k}"
        item = {
            "id": fid,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": f"call_{k}abcdefghijklmnop",
            "name": "get_weather",
        }
        s.add("response.output_item.added", output_index=k, item=item)
        frags = [rng.choice(['{"', "city", '":"', "Paris", '"}', ", "]) for _ in range(fragments)]
        args = s.deltas(
            "response.function_call_arguments.delta", frags, item_id=fid, output_index=k
        )
        s.add("response.function_call_arguments.done", item_id=fid, output_index=k, arguments=args)
        done = {**item, "status": "completed", "arguments": args}
        s.add("response.output_item.done", output_index=k, item=done)
        s.output.append(done)
    return s.body()


def payloads_of(body: bytes) -> list[bytes]:
    return [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]


def floor(payloads: list[bytes]) -> Any:
    return msgspec.json.decode(b"[" + b",".join(payloads) + b"]")


def openai_path(body: bytes) -> Any:
    from openai._models import construct_type
    from openai._streaming import SSEDecoder
    from openai._types import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent

    state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
    for sse in SSEDecoder().iter_bytes(iter([body])):
        event = construct_type(type_=ResponseStreamEvent, value=json.loads(sse.data))
        state.handle_event(event)
    return state._completed_response


def check(body: bytes) -> None:
    """The three agree before anything is timed."""
    ours = assemble(body)
    assert ours.outcome.ok, ours.outcome.problems
    sdk = openai_path(body).to_dict()

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("parsed", "parsed_arguments")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    assert strip(sdk) == ours.to_dict(), "streamtape and the SDK disagree"


def main() -> None:
    quick = "--quick" in sys.argv
    # Wall time by default; --cpu times this thread's CPU time only (a shared machine).
    clock = time.thread_time if "--cpu" in sys.argv else time.perf_counter
    budget = 0.3 if quick else 1.5
    rng = random.Random(7)
    streams = {
        "text 300 deltas": text_stream(rng, 300),
        "reasoning + 3 tools x60": tool_stream(rng),
    }
    warnings.simplefilter("ignore")
    print(f"clock: {clock.__name__}")
    print(
        f"{'stream':<26}{'KiB':>6}{'events':>8}{'streamtape':>12}{'floor':>10}{'/floor':>8}"
        f"{'openai':>11}{'openai/st':>11}"
    )
    for name, body in streams.items():
        check(body)
        payloads = payloads_of(body)
        fns: dict[str, Callable[[], Any]] = {
            "streamtape": lambda b=body: assemble(b),
            "floor": lambda p=payloads: floor(p),
        }
        fast = measure(fns, budget, clock)
        ours, fl = fast["streamtape"], fast["floor"]
        sdk = measure({"openai": lambda b=body: openai_path(b)}, budget / 3, clock)["openai"]
        print(
            f"{name:<26}{len(body) / 1024:>6.1f}{len(payloads):>8}{ours * 1e6:>10.0f}µs"
            f"{fl * 1e6:>8.0f}µs{ours / fl:>7.2f}x{sdk * 1e3:>9.2f}ms{sdk / ours:>10.0f}x"
        )


if __name__ == "__main__":
    main()
