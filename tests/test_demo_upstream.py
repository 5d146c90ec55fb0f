"""The simulated upstream, exercised over real loopback sockets with the official openai SDK.

These tests pin what the rest of the suite relies on: realistic chunk shapes, byte-level
determinism, and faults that reach the client the way real server failures do.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import struct
import wave
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from streamtape.simulator.app import FAULT_HEADER, DemoUpstream, UpstreamServer

KEY = "sk-test-demo-upstream-0000"
AUTH = {"authorization": f"Bearer {KEY}"}
HI = [{"role": "user", "content": "Say hello."}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_stock_price",
            "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}},
        },
    },
]


@pytest.fixture(scope="module")
def srv() -> Iterator[UpstreamServer]:
    with UpstreamServer(speed=50.0) as server:
        yield server


@pytest.fixture
def client(srv: UpstreamServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def events(raw: bytes) -> list[Any]:
    """Decode an SSE body into JSON payloads, with the string "[DONE]" for the sentinel."""
    out: list[Any] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
                out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


def stream_raw(srv: UpstreamServer, body: dict[str, Any], **headers: str) -> bytes:
    with httpx.Client(timeout=10) as http:
        r = http.post(f"{srv.base_url}/chat/completions", json=body, headers={**AUTH, **headers})
        r.raise_for_status()
        return r.content


# -- chat streaming ---------------------------------------------------------------------------


def test_streaming_chat_content_matches_non_stream(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.split()) > 5

    whole = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.content == text
    assert whole.choices[0].finish_reason == "stop"
    assert whole.id == chunks[0].id
    assert whole.usage is not None and whole.usage.completion_tokens == len(chunks) - 2


def test_stream_helper_assembles_and_include_usage(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=HI, stream_options={"include_usage": True}
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.usage is not None
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert final.choices[0].message.content


def test_include_usage_last_chunk_has_empty_choices(srv: UpstreamServer) -> None:
    body = {
        "model": "gpt-4o",
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    payloads = events(stream_raw(srv, body))
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["choices"] == []
    assert payloads[-2]["usage"]["completion_tokens"] == len(payloads) - 4
    assert all("usage" not in p for p in payloads[:-2])
    assert set(payloads[0]) == {"id", "object", "created", "model", "system_fingerprint", "choices"}
    assert set(payloads[0]["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}


def test_max_tokens_controls_length(client: OpenAI) -> None:
    for n_tokens in (1, 7, 300):
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=HI, stream=True, max_tokens=n_tokens
            )
        )
        assert len([c for c in chunks if c.choices[0].delta.content]) == n_tokens
        assert chunks[-1].choices[0].finish_reason == "length"


def test_max_tokens_is_capped(srv: UpstreamServer) -> None:
    app = DemoUpstream(speed=math.inf, max_tokens_cap=10)
    plan = app.plan({"model": "m", "messages": HI, "max_tokens": 1000})
    assert len(plan) == 10 + 3  # role, 10 tokens, finish, [DONE]


def test_n_choices_interleave(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True, n=3)
    )
    indices = [c.choices[0].index for c in chunks]
    assert indices[:6] == [0, 1, 2, 0, 1, 2]
    texts = ["", "", ""]
    for c in chunks:
        texts[c.choices[0].index] += c.choices[0].delta.content or ""
    assert all(texts) and len(set(texts)) > 1
    finishes = [c.choices[0] for c in chunks if c.choices[0].finish_reason]
    assert sorted(f.index for f in finishes) == [0, 1, 2]


def test_logprobs_with_top_logprobs(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, logprobs=True, top_logprobs=3
        )
    )
    first = chunks[0].choices[0].logprobs
    assert first is not None and first.content == []
    content_chunks = [c for c in chunks if c.choices[0].delta.content]
    for c in content_chunks:
        lp = c.choices[0].logprobs
        assert lp is not None and lp.content is not None and len(lp.content) == 1
        entry = lp.content[0]
        assert entry.token == c.choices[0].delta.content
        assert entry.logprob <= 0
        assert bytes(entry.bytes or []) == entry.token.encode()
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token
    assert chunks[-1].choices[0].logprobs is None


def test_parallel_tool_calls_stream(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=TOOLS,
            stream=True,
        )
    )
    assert chunks[0].choices[0].delta.content is None
    fragments = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    firsts = [f for f in fragments if f.id]
    assert [f.index for f in firsts] == [0, 1]
    assert [f.function and f.function.name for f in firsts] == ["get_weather", "get_stock_price"]
    assert all(f.type == "function" and f.function and f.function.arguments == "" for f in firsts)
    args = ["", ""]
    for f in fragments:
        assert f.function is not None
        args[f.index] += f.function.arguments or ""
    weather = json.loads(args[0])
    assert weather["unit"] in ("celsius", "fahrenheit") and isinstance(weather["city"], str)
    assert set(json.loads(args[1])) == {"ticker"}
    assert len(fragments) > 6  # the arguments really are split
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    whole = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS
    )
    calls = whole.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        weather,
        json.loads(args[1]),
    ]


def test_tool_choice_variants(client: OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "Weather?"}]
    single = client.chat.completions.create(
        model="gpt-4o", messages=msgs, tools=TOOLS, parallel_tool_calls=False
    )
    assert len(single.choices[0].message.tool_calls or []) == 1
    forced = client.chat.completions.create(
        model="gpt-4o",
        messages=msgs,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_stock_price"}},
    )
    calls = forced.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_stock_price"]  # type: ignore[union-attr]
    assert forced.choices[0].finish_reason == "stop"
    none = client.chat.completions.create(
        model="gpt-4o", messages=msgs, tools=TOOLS, tool_choice="none"
    )
    assert none.choices[0].message.content and not none.choices[0].message.tool_calls


def test_refusal_stream(client: OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "demo:refuse please"}]
    with client.chat.completions.stream(model="gpt-4o", messages=msgs) as stream:
        for _ in stream:
            pass
        snapshot = stream.current_completion_snapshot
    assert snapshot.choices[0].message.refusal == "I'm sorry, but I can't help with that request."
    assert snapshot.choices[0].message.content is None


# -- determinism and plan() -------------------------------------------------------------------


def test_same_request_same_bytes(srv: UpstreamServer) -> None:
    body = {"model": "gpt-4o", "messages": HI, "stream": True, "n": 2, "logprobs": True}
    first = stream_raw(srv, body)
    assert stream_raw(srv, body) == first
    other = stream_raw(srv, {**body, "messages": [{"role": "user", "content": "Other."}]})
    assert other != first


def test_plan_matches_wire_bytes_and_pacing(srv: UpstreamServer) -> None:
    body = {"model": "gpt-4o", "messages": HI, "stream": True, "tools": TOOLS}
    plan = DemoUpstream(speed=1.0).plan(body)
    assert b"".join(data for _, data in plan) == stream_raw(srv, body)
    assert plan[-1][1] == b"data: [DONE]\n\n"
    assert 0.15 <= plan[0][0] <= 0.40
    assert all(0.005 <= d <= 0.040 for d, _ in plan[1:])
    assert DemoUpstream(speed=1.0).plan(body) == plan
    fast = DemoUpstream(speed=20.0).plan(body)
    assert [d * 20.0 for d, _ in fast] == pytest.approx([d for d, _ in plan])
    assert all(d == 0.0 for d, _ in DemoUpstream(speed=math.inf).plan(body))


def test_each_event_is_its_own_read(srv: UpstreamServer) -> None:
    body = {"model": "gpt-4o", "messages": HI, "stream": True, "max_tokens": 5}
    plan = DemoUpstream(speed=1.0).plan(body)
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", f"{srv.base_url}/chat/completions", json=body, headers=AUTH) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        reads = [bytes(b) for b in r.iter_raw()]
    assert b"".join(reads) == b"".join(d for _, d in plan)
    assert len(reads) >= 2


# -- faults and auth ----------------------------------------------------------------------------


def test_missing_key_is_401(srv: UpstreamServer) -> None:
    r = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": HI})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_fault_http_500(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="m", messages=HI, extra_headers={FAULT_HEADER: "http-500"}
        )
    assert info.value.status_code == 500
    assert info.value.type == "server_error"


def test_fault_http_429(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers={FAULT_HEADER: "http-429"}
        )
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.code == "rate_limit_exceeded"


def test_fault_mid_stream_error(client: OpenAI) -> None:
    seen = []
    with pytest.raises(openai.APIError, match="The server had an error"):
        for chunk in client.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers={FAULT_HEADER: "mid-stream-error"}
        ):
            seen.append(chunk)
    assert seen  # the error arrives after HTTP 200 and some chunks


def test_fault_drop(client: OpenAI) -> None:
    seen = []
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
        for chunk in client.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers={FAULT_HEADER: "drop"}
        ):
            seen.append(chunk)
    assert seen and all(c.choices[0].finish_reason is None for c in seen)


def test_fault_stall_then_client_gives_up(srv: UpstreamServer) -> None:
    body = {"model": "m", "messages": HI, "stream": True}
    plan = DemoUpstream().plan(body, fault="stall")
    expected = b"".join(d for _, d in plan)
    got = b""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=0.2)) as http,
        http.stream(
            "POST",
            f"{srv.base_url}/chat/completions",
            json=body,
            headers={**AUTH, FAULT_HEADER: "stall"},
        ) as r,
        pytest.raises(httpx.ReadTimeout),
    ):
        for piece in r.iter_raw():
            got += piece
    assert got == expected
    assert b"[DONE]" not in got and b'finish_reason":"stop' not in got


def test_fault_stall_does_not_block_shutdown() -> None:
    with UpstreamServer(speed=math.inf) as server:
        http = httpx.Client(timeout=10)
        cm = http.stream(
            "POST",
            f"{server.base_url}/chat/completions",
            json={"model": "m", "messages": HI, "stream": True},
            headers={**AUTH, FAULT_HEADER: "stall"},
        )
        pieces = cm.__enter__().iter_raw()
        assert next(pieces).startswith(b"data: ")
    # The server is gone; the client sees the connection close instead of hanging.
    with pytest.raises(httpx.RemoteProtocolError):
        for _ in pieces:
            pass
    cm.__exit__(None, None, None)
    http.close()


def test_fault_no_done(srv: UpstreamServer) -> None:
    raw = stream_raw(
        srv, {"model": "m", "messages": HI, "stream": True}, **{FAULT_HEADER: "no-done"}
    )
    payloads = events(raw)
    assert "[DONE]" not in payloads
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_fault_crlf_and_comments(client: OpenAI, srv: UpstreamServer) -> None:
    body = {"model": "m", "messages": HI, "stream": True}
    clean = events(stream_raw(srv, body))
    raw = stream_raw(srv, body, **{FAULT_HEADER: "crlf,comments"})
    assert b"\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    assert raw.count(b": keep-alive\r\n\r\n") >= 2
    assert events(raw) == clean
    faulty, plain = (
        list(
            client.chat.completions.create(
                model="m", messages=HI, stream=True, extra_headers={FAULT_HEADER: fault}
            )
        )
        for fault in ("crlf,comments", "")
    )
    assert faulty == plain


def test_unknown_fault_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="x-demo-fault"):
        client.chat.completions.create(
            model="m", messages=HI, extra_headers={FAULT_HEADER: "explode"}
        )


def test_gzip_json(srv: UpstreamServer) -> None:
    body = {"model": "m", "messages": HI}
    headers = {**AUTH, "accept-encoding": "gzip", "x-demo-gzip": "1"}
    with httpx.Client(timeout=10) as http:
        zipped = http.post(f"{srv.base_url}/chat/completions", json=body, headers=headers)
        plain = http.post(f"{srv.base_url}/chat/completions", json=body, headers=AUTH)
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.json() == plain.json()
    assert int(zipped.headers["content-length"]) < len(plain.content)


# -- text completions ---------------------------------------------------------------------------


def test_text_completion_stream_and_whole_agree(client: OpenAI) -> None:
    kwargs: Any = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon", "logprobs": 2}
    chunks = list(client.completions.create(stream=True, **kwargs))
    assert all(c.object == "text_completion" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"
    streamed = "".join(c.choices[0].text for c in chunks)
    whole = client.completions.create(**kwargs)
    assert whole.choices[0].text == streamed
    lp = whole.choices[0].logprobs
    assert lp is not None and lp.tokens is not None and lp.top_logprobs is not None
    assert len(lp.tokens) == 16  # the API's default max_tokens for this endpoint
    assert "".join(lp.tokens) == streamed
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(16)]
    assert all(
        len(top) == 2 and tok in top for tok, top in zip(lp.tokens, lp.top_logprobs, strict=True)
    )
    assert len(lp.token_logprobs or []) == 16


def test_text_completion_multiple_prompts_and_usage(client: OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt=["a", "b"],
            n=2,
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4 * 3
    assert sorted({c.choices[0].index for c in chunks[:-1]}) == [0, 1, 2, 3]


# -- other endpoints ----------------------------------------------------------------------------


def test_embeddings_float_and_base64(client: OpenAI) -> None:
    as_float = client.embeddings.create(
        model="text-embedding-3-small", input=["hi", "there"], encoding_format="float"
    )
    as_b64 = client.embeddings.create(model="text-embedding-3-small", input=["hi", "there"])
    assert [d.index for d in as_float.data] == [0, 1]
    assert len(as_float.data[0].embedding) == 1536
    assert as_b64.data[0].embedding == pytest.approx(as_float.data[0].embedding, rel=1e-6)
    assert math.isclose(sum(v * v for v in as_float.data[0].embedding), 1.0, rel_tol=1e-4)
    assert as_float.data[0].embedding != as_float.data[1].embedding
    small = client.embeddings.create(model="text-embedding-3-large", input="hi", dimensions=8)
    assert len(small.data[0].embedding) == 8
    assert as_float.usage.prompt_tokens > 0


def test_models(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_moderations(client: OpenAI) -> None:
    result = client.moderations.create(input=["a kind sentence", "demo:flag this one"])
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.violence is True
    assert result.results[0].category_scores.hate < 0.01


def test_images_are_valid_png(client: OpenAI) -> None:
    images = client.images.generate(model="dall-e-3", prompt="a lighthouse", n=2)
    assert len(images.data) == 2
    for image in images.data:
        png = base64.b64decode(image.b64_json or "")
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        pos = 8
        tags = []
        while pos < len(png):  # every chunk's CRC checks out
            (length,) = struct.unpack(">I", png[pos : pos + 4])
            tag, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
            (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
            assert zlib.crc32(tag + data) == crc
            tags.append(tag)
            if tag == b"IDAT":
                assert len(zlib.decompress(data)) == 16 * (1 + 16 * 3)
            pos += 12 + length
        assert tags == [b"IHDR", b"IDAT", b"IEND"]
    assert images.data[0].b64_json != images.data[1].b64_json


def test_speech_is_valid_wav_and_transcription_upload(client: OpenAI) -> None:
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")
    assert speech.response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(speech.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        frames = wav.getnframes()
        assert frames > 0 and len(wav.readframes(frames)) == 2 * frames

    text = client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", speech.content))
    assert (
        text.text
        and text.text
        == client.audio.transcriptions.create(
            model="whisper-1", file=("other-name.wav", speech.content)
        ).text
    )
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", speech.content), response_format="verbose_json"
    )
    assert verbose.duration == pytest.approx(frames / 24000, abs=0.001)
    plain = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", speech.content), response_format="text"
    )
    assert str(plain).strip() == text.text


def test_files_upload_retrieve_delete(client: OpenAI) -> None:
    content = b'{"prompt": "x"}\n' * 100 + b"\r\n--not-a-boundary\r\n\x00\xff"
    uploaded = client.files.create(file=("batch.jsonl", content), purpose="batch")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == (
        "batch.jsonl",
        len(content),
        "batch",
    )
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).content == content
    assert uploaded.id in [f.id for f in client.files.list()]
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_task_polling_until_succeeded(srv: UpstreamServer) -> None:
    task_input = {"model": "gpt-4o-mini", "messages": HI}
    with httpx.Client(base_url=srv.base_url, headers=AUTH, timeout=10) as http:
        created = http.post("/tasks", json=task_input).json()
        assert created["status"] == "queued"
        statuses = []
        while True:
            polled = http.get(f"/tasks/{created['id']}").json()
            statuses.append(polled["status"])
            if polled["status"] not in ("queued", "running"):
                break
        assert statuses == ["queued", "running", "succeeded"]  # task_polls=3
        whole = http.post("/chat/completions", json=task_input).json()
        assert polled["result"] == whole
        again = http.post("/tasks", json=task_input).json()
        assert again["id"] != created["id"]  # each submission is its own task
        assert http.get("/tasks/task_nope").status_code == 404
        failed = http.post("/tasks", json={"messages": []}).json()
        for _ in range(3):
            polled = http.get(f"/tasks/{failed['id']}").json()
        assert polled["status"] == "failed" and polled["error"]["param"] == "messages"


def test_gzip_applies_to_other_json_endpoints(srv: UpstreamServer) -> None:
    headers = {**AUTH, "accept-encoding": "gzip", "x-demo-gzip": "1"}
    r = httpx.get(f"{srv.base_url}/models", headers=headers)
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["object"] == "list"


def test_unknown_route_is_404_json(srv: UpstreamServer) -> None:
    r = httpx.get(f"{srv.base_url}/nope", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"


def test_server_restarts_on_new_port_with_same_app() -> None:
    app = DemoUpstream(speed=math.inf)
    with UpstreamServer(app) as first:
        body = {"model": "m", "messages": HI, "stream": True}
        raw = httpx.post(f"{first.base_url}/chat/completions", json=body, headers=AUTH).content
    with UpstreamServer(app) as second:
        again = httpx.post(f"{second.base_url}/chat/completions", json=body, headers=AUTH).content
    assert raw == again and raw.endswith(b"data: [DONE]\n\n")


def test_deliberate_aborts_are_not_logged_as_errors(
    srv: UpstreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"model": "m", "messages": HI, "stream": True}
    with caplog.at_level(logging.WARNING), pytest.raises(httpx.RemoteProtocolError):
        stream_raw(srv, body, **{FAULT_HEADER: "drop"})
    assert [r for r in caplog.records if r.name.startswith("uvicorn")] == []


def test_plan_rejects_bad_bodies() -> None:
    app = DemoUpstream()
    with pytest.raises(ValueError, match="messages"):
        app.plan({"model": "m", "messages": []})
    with pytest.raises(ValueError, match="x-demo-fault"):
        app.plan({"model": "m", "messages": HI}, fault="explode")
    with pytest.raises(ValueError):
        app.plan({"model": "m"})
    with pytest.raises(ValueError):
        DemoUpstream(speed=0)
