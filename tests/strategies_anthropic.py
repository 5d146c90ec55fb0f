"""Hypothesis strategies for well-formed Anthropic Messages streams, and the SDK as oracle.

"Well-formed" means what the Messages API sends: ``message_start``, then each block's
``content_block_start``, deltas of its own kind and ``content_block_stop`` with dense
0-based indices, then ``message_delta`` and ``message_stop``; pings anywhere after the
start; tool JSON whose every prefix parses as partial JSON (it starts with ``{``).

The oracle runs the installed anthropic SDK on the bytes, through its own client,
SSE decoder, event models and ``accumulate_event`` (an ``httpx2.MockTransport``
stands in for the network: it is the SDK under test here, not streamtape).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

anthropic: Any = None
httpx2: Any = None
try:  # the SDK runs on Python >= 3.11 only (httpx2)
    import anthropic
    import httpx2
    from anthropic._models import construct_type
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import RawMessageStreamEvent
except ImportError:  # pragma: no cover - the tests importorskip
    pass

Event = tuple[str, dict[str, Any]]

TEXT = st.text(
    alphabet=st.sampled_from(list('ab cé東🙂"\\\n\t\u2028\u0085{}')), min_size=0, max_size=6
)
NAME = st.text(alphabet=st.sampled_from(list("abcxyz_")), min_size=1, max_size=6)
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | TEXT
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAME, inner, max_size=3),
    max_leaves=8,
)
TOOL_INPUT = st.dictionaries(NAME, JSON_VALUE, max_size=4)


def chop(draw: st.DrawFn, text: str, max_parts: int = 6) -> list[str]:
    """Cut ``text`` at random character positions."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=max_parts))))
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


@st.composite
def block_events(draw: st.DrawFn, index: int) -> list[Event]:
    """Start, deltas and stop of one content block of a random kind."""
    kind = draw(
        st.sampled_from(
            ["text", "text", "thinking", "redacted", "tool_use", "server_tool", "server_result"]
        )
    )
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        block: dict[str, Any] = {"type": "text", "text": ""}
        cites = draw(st.sampled_from(["absent", "null", "empty"]))
        if cites != "absent":
            block["citations"] = None if cites == "null" else []
        for piece in draw(st.lists(TEXT, max_size=5)):
            if draw(st.integers(0, 4)) == 0:
                citation = {
                    "type": "char_location",
                    "cited_text": piece,
                    "document_index": 0,
                    "document_title": draw(st.none() | NAME),
                    "start_char_index": 0,
                    "end_char_index": len(piece),
                }
                deltas.append({"type": "citations_delta", "citation": citation})
            deltas.append({"type": "text_delta", "text": piece})
    elif kind == "thinking":
        block = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in draw(st.lists(TEXT))]
        if draw(st.booleans()):
            deltas.append({"type": "signature_delta", "signature": draw(NAME)})
    elif kind == "redacted":
        block = {"type": "redacted_thinking", "data": draw(NAME)}
    elif kind in ("tool_use", "server_tool"):
        server = kind == "server_tool"
        block = {
            "type": "server_tool_use" if server else "tool_use",
            "id": ("srvtoolu_" if server else "toolu_") + draw(NAME),
            "name": "web_search" if server else draw(NAME),
            "input": {},
        }
        if not server and draw(st.booleans()):
            block["caller"] = {"type": "direct"}
        text = json.dumps(
            draw(TOOL_INPUT),
            ensure_ascii=draw(st.booleans()),
            separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
        )
        parts = ([""] if draw(st.booleans()) else []) + chop(draw, text, 8)
        if draw(st.integers(0, 5)) == 0:
            parts = [""]  # a tool without arguments: input stays {}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
    else:
        block = {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_" + draw(NAME),
            "content": [
                {
                    "type": "web_search_result",
                    "title": draw(TEXT),
                    "url": "https://example.com/" + draw(NAME),
                    "encrypted_content": draw(NAME),
                    "page_age": None,
                }
            ],
        }
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
    ]
    events += [_delta(index, d) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


@st.composite
def message_streams(draw: st.DrawFn) -> list[Event]:
    """A whole well-formed Messages stream as (event name, payload) pairs."""
    usage: dict[str, Any] = {"input_tokens": draw(st.integers(0, 500)), "output_tokens": 1}
    if draw(st.booleans()):
        usage["cache_creation_input_tokens"] = draw(st.integers(0, 50))
        usage["cache_read_input_tokens"] = draw(st.integers(0, 50))
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
        usage["service_tier"] = "standard"
    message = {
        "id": "msg_" + draw(NAME),
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": draw(st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-1"])),
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[Event] = [("message_start", {"type": "message_start", "message": message})]
    for index in range(draw(st.integers(0, 4))):
        events += draw(block_events(index))
    delta: dict[str, Any] = {
        "stop_reason": draw(st.sampled_from(["end_turn", "tool_use", "max_tokens", "refusal"])),
        "stop_sequence": draw(st.none() | NAME),
    }
    if draw(st.booleans()):
        delta["stop_details"] = draw(st.none() | st.just({"type": "refusal", "category": "cyber"}))
    end_usage: dict[str, Any] = {"output_tokens": draw(st.integers(1, 900))}
    for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        if draw(st.integers(0, 3)) == 0:
            end_usage[key] = draw(st.none() | st.integers(0, 500))
    if draw(st.booleans()):
        end_usage["server_tool_use"] = {"web_search_requests": draw(st.integers(0, 3))}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": end_usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    # Pings anywhere after the start.
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, len(events) - 1))
        events.insert(at, ("ping", {"type": "ping"}))
    return events


@st.composite
def sse_bodies(draw: st.DrawFn, events: list[Event], names: bool = True) -> bytes:
    """Encode events as SSE with random line ends, spacing and comments."""
    eol = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    parts = []
    for name, payload in events:
        if draw(st.integers(0, 6)) == 0:
            parts.append(b": keep-alive" + eol)
        if names:
            parts.append(draw(st.sampled_from([b"event: ", b"event:"])) + name.encode() + eol)
        data = json.dumps(payload, ensure_ascii=draw(st.booleans()), separators=(",", ":"))
        parts.append(b"data: " + data.encode() + eol + eol)
    return b"".join(parts)


def plain_body(events: list[Event]) -> bytes:
    """The exact shape the Messages API sends (LF, ``event:`` then ``data:``)."""
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + json.dumps(p).encode() + b"\n\n"
        for name, p in events
    )


def split_reads(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """Cut ``body`` into reads at random points (mid-UTF-8, mid-CRLF included)."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=12))))
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# ------------------------------------------------------------------------------ oracle


def norm(x: Any) -> Any:
    """Absent == null: drop null-valued keys everywhere."""
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


def _client(reads: list[bytes]) -> Any:
    def handler(request: Any) -> Any:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(reads)
        )

    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://sdk.invalid",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def sdk_final(reads: list[bytes]) -> Any:
    """What ``client.messages.stream(...).get_final_message().to_dict()`` gives."""
    with _client(reads).messages.stream(**REQUEST) as stream:
        return norm(stream.get_final_message().to_dict())


def sdk_snapshots(reads: list[bytes]) -> Iterator[tuple[str, Any]]:
    """(event type, snapshot after it) for each raw event the SDK accumulates."""
    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    for event in _client(reads).messages.create(stream=True, **REQUEST):
        if snapshot is None and event.type != "message_start":
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
        yield event.type, norm(snapshot.to_dict())


def sdk_fold(payloads: list[dict[str, Any]]) -> Any:
    """``accumulate_event`` over decoded payloads (no SSE layer)."""
    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    for p in payloads:
        event = construct_type(type_=RawMessageStreamEvent, value=json.loads(json.dumps(p)))
        if snapshot is None and p.get("type") != "message_start":
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return norm(snapshot.to_dict()) if snapshot is not None else None
