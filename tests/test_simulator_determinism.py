"""The simulator answers every request with the very bytes, and the very gaps, it always has.

The other tests check shapes and agreement between paths; these pin the output itself,
so a refactor of the simulator (or of the fault transforms it shares with replay) that
moves a single byte or changes a single delay fails here. The digests were computed
from the simulator as it was before its split into modules; change one only together
with a deliberate change of what the simulator sends.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from streamtape.simulator.app import FAULT_HEADER, GZIP_HEADER, DemoUpstream, UpstreamServer

AUTH = {"authorization": "Bearer sk-test-determinism"}
HI = [{"role": "user", "content": "Say hello."}]
TRIP = {  # every kind of JSON-schema node the tool-call arguments are made from
    "type": "function",
    "function": {
        "name": "book_trip",
        "parameters": {
            "type": "object",
            "properties": {
                "destination_city": {"type": "string"},
                "nights": {"type": "integer"},
                "budget": {"type": "number"},
                "refundable": {"type": "boolean"},
                "notes": {"type": ["null", "string"]},
                "nothing": {"type": "null"},
                "class": {"enum": ["economy", "business"]},
                "stops": {"type": "array", "items": {"type": "string"}},
                "traveller": {"properties": {"name": {}, "age": {"type": "integer"}}},
            },
        },
    },
}
STOCK = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}},
    },
}

PLANS: dict[str, tuple[dict[str, Any], str | list[str] | None]] = {
    "chat": ({"model": "gpt-4o", "messages": HI, "stream": True}, None),
    "chat-n2-logprobs-usage": (
        {
            "model": "gpt-4o",
            "messages": HI,
            "stream": True,
            "n": 2,
            "logprobs": True,
            "top_logprobs": 3,
            "max_tokens": 12,
            "stream_options": {"include_usage": True},
        },
        None,
    ),
    "chat-tools": (
        {"model": "gpt-4o-mini", "messages": HI, "stream": True, "tools": [TRIP, STOCK]},
        None,
    ),
    "chat-tools-mid-stream-error-comments": (
        {"messages": HI, "stream": True, "tools": [STOCK]},
        ["mid-stream-error", "comments"],
    ),
    "chat-forced-tool": (
        {
            "messages": HI,
            "stream": True,
            "tools": [TRIP, STOCK],
            "tool_choice": {"type": "function", "function": {"name": "get_stock_price"}},
        },
        None,
    ),
    "chat-tool-choice-none-after-tool-result": (
        {
            "messages": [*HI, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
            "stream": True,
            "tools": [TRIP],
            "tool_choice": "none",
            "max_completion_tokens": 9,
        },
        None,
    ),
    "chat-refusal-logprobs": (
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "demo:refuse"}]}],
            "stream": True,
            "logprobs": True,
        },
        None,
    ),
    "chat-mid-stream-error": ({"messages": HI, "stream": True}, "mid-stream-error"),
    "chat-drop": ({"messages": HI, "stream": True}, "drop"),
    "chat-stall": ({"messages": HI, "stream": True}, "stall"),
    "chat-no-done-crlf": ({"messages": HI, "stream": True}, "no-done,crlf"),
    "chat-comments": ({"messages": HI, "stream": True, "max_tokens": 40}, "comments"),
    "chat-all-shape-faults": (
        {"messages": HI, "stream": True, "max_tokens": 30},
        "drop,comments,crlf",
    ),
    "completion": ({"prompt": "Once upon a time", "stream": True}, None),
    "completion-two-prompts-logprobs": (
        {
            "model": "gpt-3.5-turbo-instruct",
            "prompt": ["One", "Two"],
            "n": 2,
            "logprobs": 2,
            "max_tokens": 6,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        None,
    ),
    "completion-token-prompt-comments": ({"prompt": [1, 2, 3], "stream": True}, "comments,crlf"),
}

PLAN_DIGESTS = {
    "chat": "2269e0e96cd6bd60",
    "chat-all-shape-faults": "211518b61293f351",
    "chat-comments": "2fd31cbea30c3faf",
    "chat-drop": "300abcf6bf6ae3d7",
    "chat-forced-tool": "e9eb3af32ea5d23e",
    "chat-mid-stream-error": "c46d1c6599b4c81b",
    "chat-n2-logprobs-usage": "ad725ec97e176110",
    "chat-no-done-crlf": "4cc36697caea0ecf",
    "chat-refusal-logprobs": "56f17adab2562a2f",
    "chat-stall": "300abcf6bf6ae3d7",
    "chat-tool-choice-none-after-tool-result": "1c98ca387c7e9b82",
    "chat-tools": "baae01c5a3bc6900",
    "chat-tools-mid-stream-error-comments": "784712b6b62fcad0",
    "completion": "88defcdc511f31fc",
    "completion-token-prompt-comments": "bc069254323de809",
    "completion-two-prompts-logprobs": "d3e7ca4b66825762",
}


def plan_digest(events: Iterable[tuple[float, bytes]]) -> str:
    """Digest of (delay, bytes) events; delays to the nanosecond, so libm's last bit is moot."""
    h = hashlib.sha256()
    for delay, data in events:
        h.update(f"{delay:.9f}|{len(data)}|".encode())
        h.update(data)
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(PLANS))
def test_stream_plan_is_unchanged(name: str) -> None:
    body, fault = PLANS[name]
    plan = DemoUpstream(speed=1.0).plan(body, fault=fault)
    assert plan_digest(plan) == PLAN_DIGESTS[name]
    assert DemoUpstream(speed=math.inf).plan(body, fault=fault) == [(0.0, d) for _, d in plan]


def multipart(**fields: tuple[str | None, bytes]) -> dict[str, Any]:
    """A form body with a fixed boundary (httpx picks a random one, and the request id
    the simulator sends back is derived from the whole body)."""
    boundary = "streamtape-determinism"
    body = b""
    for name, (filename, content) in fields.items():
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\ncontent-disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    return {"content": body, "headers": {"content-type": content_type}}


def exchanges(http: httpx.Client) -> Iterator[tuple[str, httpx.Response]]:
    """One pass over every endpoint and error the simulator answers with a whole body."""
    yield "chat", http.post("/chat/completions", json={"messages": HI, "n": 2, "logprobs": True})
    tools = {"messages": HI, "tools": [TRIP, STOCK], "parallel_tool_calls": False}
    yield "chat-tools", http.post("/chat/completions", json=tools)
    yield "completion", http.post("/completions", json={"prompt": ["a", "b"], "logprobs": 1})
    embed = {"input": ["one", [1, 2]], "dimensions": 8}
    yield "embeddings", http.post("/embeddings", json=embed)
    yield "embeddings-b64", http.post("/embeddings", json={**embed, "encoding_format": "base64"})
    yield "models", http.get("/models")
    yield "model", http.get("/models/whisper-1")
    yield "model-404", http.get("/models/nope")
    mod = {"input": ["fine", "demo:flag this"]}
    yield "moderations", http.post("/moderations", json=mod)
    yield "images", http.post("/images/generations", json={"prompt": "a hill", "n": 2})
    url = {"prompt": "a hill", "response_format": "url"}
    yield "images-url", http.post("/images/generations", json=url)
    speech = http.post("/audio/speech", json={"input": "Hello there.", "voice": "nova"})
    yield "speech", speech
    pcm = {"input": "Hi", "response_format": "pcm"}
    yield "speech-pcm", http.post("/audio/speech", json=pcm)
    for fmt in ("json", "text", "srt", "vtt", "verbose_json", "bogus"):
        form = multipart(file=("hello.wav", speech.content), response_format=(None, fmt.encode()))
        yield f"transcription-{fmt}", http.post("/audio/transcriptions", **form)
    upload = http.post("/files", **multipart(purpose=(None, b"batch"), file=("b.jsonl", b"{}\n")))
    yield "upload", upload
    file_id = upload.json()["id"]
    yield "files", http.get("/files")
    yield "file", http.get(f"/files/{file_id}")
    yield "file-content", http.get(f"/files/{file_id}/content")
    yield "file-delete", http.delete(f"/files/{file_id}")
    yield "file-404", http.get(f"/files/{file_id}")
    task_inputs: list[dict[str, Any]] = [{"messages": HI}, {"prompt": "x"}, {"other": 1}]
    for task_input in [*task_inputs, {"messages": []}]:
        task = http.post("/tasks", json=task_input)
        yield "task", task
        for _ in range(3):
            yield "poll", http.get(f"/tasks/{task.json()['id']}")
    gz = {"accept-encoding": "gzip", GZIP_HEADER: "1"}
    yield "gzip", http.post("/chat/completions", json={"messages": HI}, headers=gz)
    yield (
        "401",
        http.post("/chat/completions", json={"messages": HI}, headers={"authorization": ""}),
    )
    yield "404", http.get("/nope")
    # The edges of the route table: methods, trailing slashes, parameters with slashes.
    yield "models-slash", http.get("/models/")
    yield "model-with-slash", http.get("/models/org/name")
    yield "models-post", http.post("/models/gpt-4o")
    yield "files-put", http.put("/files")
    keep = http.post("/files", **multipart(purpose=(None, b"x"), file=("k.txt", b"keep")))
    kept = keep.json()["id"]
    yield "file-post", http.post(f"/files/{kept}")
    yield "file-content-delete", http.delete(f"/files/{kept}/content")
    yield "file-content-slash", http.get(f"/files/{kept}/content/")
    yield "file-nested", http.get(f"/files/{kept}/content/more")
    yield "file-missing-post", http.post("/files/file-nope")
    yield "tasks-get", http.get("/tasks")
    yield "task-delete", http.delete("/tasks/task_nope")
    yield "chat-get", http.get("/chat/completions")
    yield "400-json", http.post("/chat/completions", content=b"{nope")
    yield "400-fault", http.post("/models", headers={FAULT_HEADER: "explode"})
    yield "429", http.post("/chat/completions", json={}, headers={FAULT_HEADER: "http-429"})
    yield "500", http.post("/completions", json={}, headers={FAULT_HEADER: "http-500"})


def whole_digest(response: httpx.Response) -> str:
    h = hashlib.sha256(str(response.status_code).encode())
    for key, value in response.headers.raw:
        if key.lower() not in (b"date", b"server"):
            h.update(b"|" + key.lower() + b":" + value)
    h.update(b"|" + response.read())
    return h.hexdigest()[:16]


WHOLE_DIGESTS = [
    ("chat", "ff50e68d8b8c4209"),
    ("chat-tools", "a824fc4d9977df3c"),
    ("completion", "24cb7d6de6f01f17"),
    ("embeddings", "806e1f47fcfa625c"),
    ("embeddings-b64", "b65d170dd32031dc"),
    ("models", "94ab20f848c3ed62"),
    ("model", "aba07462924b4511"),
    ("model-404", "f8c63318dcf45ea0"),
    ("moderations", "aa1789a6e281bfff"),
    ("images", "d71dab8f5599a24b"),
    ("images-url", "b80eec8d1ab4cd2f"),
    ("speech", "ae4cbc652af7a352"),
    ("speech-pcm", "34b6c0760eb1e645"),
    ("transcription-json", "1f45fda25fc0a3d1"),
    ("transcription-text", "d05c5fd302d0d4a1"),
    ("transcription-srt", "7b2af204f945ee29"),
    ("transcription-vtt", "a3325c220980f8e4"),
    ("transcription-verbose_json", "5f9506d94d142dac"),
    ("transcription-bogus", "1056f8bc1c634a95"),
    ("upload", "38a621198877b139"),
    ("files", "ad7d638a9dda0e36"),
    ("file", "52e340ec6b94d168"),
    ("file-content", "79e26cf93e61674d"),
    ("file-delete", "b59089c9e4b0b37c"),
    ("file-404", "b46afa72145743a0"),
    ("task", "0a58d9aeb6854208"),
    ("poll", "a44f8604b2a0c9b9"),
    ("poll", "022e3b3484663211"),
    ("poll", "0e96f6af0dd27c66"),
    ("task", "faf2e066fc7dbbd5"),
    ("poll", "1d3ebeb47055d508"),
    ("poll", "35e6ca36aff50105"),
    ("poll", "93aff4172ca9aee1"),
    ("task", "eb3b67b2752da69f"),
    ("poll", "4dd5833f77f4ecdb"),
    ("poll", "f14ad24db5987cfb"),
    ("poll", "221ff7b9059a0c5c"),
    ("task", "46f7972ac05c5010"),
    ("poll", "4866691192136934"),
    ("poll", "0355ef62b96a9b9c"),
    ("poll", "d127545305270c78"),
    ("gzip", "5ddfb21516ad0fb8"),
    ("401", "f6c1e66066327c7d"),
    ("404", "c743d4ef51284ce8"),
    ("models-slash", "fc764caa009cd871"),
    ("model-with-slash", "9b5ee2df2bebe40e"),
    ("models-post", "d1ab50f8c8cdc742"),
    ("files-put", "9782cb87c3c6d4bf"),
    ("file-post", "ca0face24224fdb8"),
    ("file-content-delete", "b089e2aff5e04c58"),
    ("file-content-slash", "c03fe12b9b19273b"),
    ("file-nested", "4ac5a227bbb3762a"),
    ("file-missing-post", "74e6bce1bb83a311"),
    ("tasks-get", "9ac2a3139d00f016"),
    ("task-delete", "9e05c96a4b94049f"),
    ("chat-get", "c96f13c2ac8dac6d"),
    ("400-json", "0a494dfcb8cd9989"),
    ("400-fault", "8549a86be74b4e88"),
    ("429", "c233937da63a4c5f"),
    ("500", "1106eab1d881b37a"),
]


def test_whole_responses_are_unchanged() -> None:
    """Every endpoint, in one fixed order (files and tasks keep state), over loopback."""
    with (
        UpstreamServer(speed=math.inf) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as http,
    ):
        transcript = [(name, whole_digest(r)) for name, r in exchanges(http)]
    assert transcript == WHOLE_DIGESTS
