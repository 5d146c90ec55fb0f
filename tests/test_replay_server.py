"""The replay server over real sockets, with the official openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from _servers import GatedUpstream, exchange, gated_server, raw_request, sse

from streamtape import Cassette, Outcome, write_cassette
from streamtape.errors import ExposedServerWarning
from streamtape.server import ReplayServer, serve
from streamtape.server.proxy import RecordingProxy
from streamtape.server.run import loopback_server
from streamtape.simulator.app import UpstreamServer

MODEL = "claude-sonnet-4-5"
ASK = [{"role": "user", "content": "Say hello"}]
QUESTIONS = ["Why do rivers bend?", "What is a tool call?"]


def openai_chat(content: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}


def anthropic_sse(text_parts: list[str]) -> list[bytes]:
    """The reads of an Anthropic Messages stream, one event each, as the API sends them."""

    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    }
    reads = [
        event("message_start", {"type": "message_start", "message": message}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        event("ping", {"type": "ping"}),
    ]
    for part in text_parts:
        delta = {"type": "text_delta", "text": part}
        reads.append(
            event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        )
    reads += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(text_parts)},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return reads


@pytest.fixture(scope="module")
def anthropic_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    url = "https://api.anthropic.com/v1/messages"
    whole = {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 2},
    }
    path = tmp_path_factory.mktemp("anthropic") / "claude.tape"
    base = {"max_tokens": 64, "messages": ASK, "model": MODEL}
    write_cassette(
        path,
        [
            exchange(url, {**base, "stream": True}, anthropic_sse(["Hel", "lo", " there"])),
            exchange(url, base, [json.dumps(whole).encode()], content_type="application/json"),
        ],
    )
    return path


@pytest.fixture(scope="module")
def openai_tape(upstream: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chats recorded through the proxy from the simulator: streamed, then whole, each question."""
    path = tmp_path_factory.mktemp("openai") / "chat.tape"
    proxy = RecordingProxy(upstream.url, path)
    with loopback_server(proxy) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0)
        for question in QUESTIONS:
            for chunk in client.chat.completions.create(**openai_chat(question), stream=True):
                assert chunk.id
            client.chat.completions.create(**openai_chat(question))
    proxy.close()
    return path


def streamed_text(stream: openai.Stream[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_openai_sdk_replays_streams_and_whole_answers(openai_tape: Path) -> None:
    recorded = Cassette.open(openai_tape).exchanges()
    with serve(openai_tape, pacing="instant") as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
        for i, question in enumerate(QUESTIONS):
            text = streamed_text(
                client.chat.completions.create(**openai_chat(question), stream=True)
            )
            whole = client.chat.completions.create(**openai_chat(question))
            assert text == whole.choices[0].message.content
            assert whole.model_dump_json().encode() != b"" and whole.id.startswith("chatcmpl")
            assert json.loads(recorded[2 * i + 1].body)["choices"][0]["message"]["content"] == text


def test_async_openai_sdk_replays_concurrent_streams(openai_tape: Path) -> None:
    async def main(url: str) -> list[str]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0) as client:

            async def ask(question: str) -> str:
                stream = await client.chat.completions.create(**openai_chat(question), stream=True)
                return "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )

            return await asyncio.gather(*(ask(q) for q in QUESTIONS))

    with serve(openai_tape) as url:
        texts = asyncio.run(main(url))
    assert all(texts) and texts[0] != texts[1]


def test_the_replayed_reads_are_the_recorded_reads_each_at_its_time(openai_tape: Path) -> None:
    recorded = Cassette.open(openai_tape).exchanges()[0]
    with serve(openai_tape, max_gap=0.05) as url:
        start = time.perf_counter()
        response = raw_request(
            f"{url}/v1/chat/completions",
            body=recorded.request.body,
            headers={"content-type": "application/json"},
        )
        arrivals = []
        chunks = []
        for chunk in response.chunks():
            arrivals.append(time.perf_counter() - start)
            chunks.append(chunk)
        response.close()
    assert chunks == [r.data for r in recorded.reads]
    assert response.header("content-type") == recorded.response_header("content-type")
    assert arrivals == sorted(arrivals) and arrivals[-1] >= recorded.reads[-1].t_ns / 1e9 * 0.5


def test_a_read_goes_out_at_its_deadline_not_with_the_next(tmp_path: Path) -> None:
    tape = tmp_path / "slow.tape"
    reads = sse("one", "two", "three", "[DONE]")
    write_cassette(tape, [exchange("http://x/v1/chat/completions", {"q": 1}, reads, gap_ms=150)])
    with serve(tape) as url:
        start = time.perf_counter()
        response = raw_request(f"{url}/v1/chat/completions", body=b'{"q": 1}')
        arrivals = [(time.perf_counter() - start, chunk) for chunk in response.chunks()]
        response.close()
    assert [chunk for _, chunk in arrivals] == reads
    for i, (at, _) in enumerate(arrivals):  # read i+1 is due 150 ms after read i
        assert 0.150 * (i + 1) - 0.02 <= at < 0.150 * (i + 2)


def test_anthropic_sdk_replays_streams_and_whole_answers(anthropic_tape: Path) -> None:
    with serve(anthropic_tape) as url:
        client = anthropic.Anthropic(base_url=url, api_key="any", max_retries=0)
        with client.messages.stream(model=MODEL, max_tokens=64, messages=ASK) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        whole = client.messages.create(model=MODEL, max_tokens=64, messages=ASK)
    assert text == "Hello there" and final.stop_reason == "end_turn"
    assert whole.content[0].type == "text" and whole.content[0].text == "Hello there"


def test_async_anthropic_sdk_replays_a_stream(anthropic_tape: Path) -> None:
    async def main(url: str) -> str:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="any", max_retries=0) as client:
            stream = await client.messages.create(
                model=MODEL, max_tokens=64, messages=ASK, stream=True
            )
            parts = []
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
            return "".join(parts)

    with serve(anthropic_tape) as url:
        assert asyncio.run(main(url)) == "Hello there"


def test_an_unmatched_request_shows_in_the_openai_sdk_with_the_nearest_recording(
    openai_tape: Path,
) -> None:
    with serve(openai_tape) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(**openai_chat("Why do rivers bend so?"))
    message = caught.value.message
    assert "no recorded exchange matches POST" in message
    assert "nearest recorded request" in message
    assert 'body.messages[0].content: recorded "Why do rivers bend?"' in message
    assert (
        isinstance(caught.value.body, dict) and caught.value.body["code"] == "streamtape_no_match"
    )


def test_an_unmatched_request_shows_in_the_anthropic_sdk_in_its_own_shape(
    anthropic_tape: Path,
) -> None:
    with serve(anthropic_tape, miss_status=418) as url:
        client = anthropic.Anthropic(base_url=url, api_key="any", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(model=MODEL, max_tokens=99, messages=ASK)
        raw = raw_request(f"{url}/v1/messages", body=b"{}", headers={"anthropic-version": "x"})
        body = json.loads(b"".join(raw.chunks()))
        raw.close()
    assert caught.value.status_code == 418
    assert "body.max_tokens: recorded 64 != sent 99" in caught.value.message
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "nearest recorded request" in body["error"]["message"]


def test_models_are_listed_from_the_recordings(openai_tape: Path, anthropic_tape: Path) -> None:
    with serve(openai_tape, anthropic_tape) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
        assert sorted(m.id for m in client.models.list()) == [MODEL, "gpt-4o-mini"]
        claude = anthropic.Anthropic(base_url=url, api_key="any", max_retries=0)
        assert [m.id for m in claude.models.list()] == [MODEL, "gpt-4o-mini"]


def test_recorded_failures_replay_as_failures(tmp_path: Path) -> None:
    tape = tmp_path / "failures.tape"
    cut = exchange("http://x/v1/chat/completions", {"q": "cut"}, sse("a", "b"))
    cut.outcome, cut.error = Outcome.UPSTREAM_ERROR, "RemoteProtocolError: peer closed"
    down = exchange("http://x/v1/chat/completions", {"q": "down"}, [])
    down.status, down.outcome, down.error = 0, Outcome.UPSTREAM_ERROR, "ConnectError: refused"
    write_cassette(tape, [cut, down])
    with serve(tape, pacing="instant") as url:
        response = raw_request(f"{url}/v1/chat/completions", body=b'{"q": "cut"}')
        chunks = response.chunks()
        assert next(chunks) == b"data: a\n\ndata: b\n\n"
        with pytest.raises(ConnectionError):
            next(chunks)
        response.close()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.post("/chat/completions", body={"q": "down"}, cast_to=object)
    assert caught.value.status_code == 502 and "ConnectError: refused" in caught.value.message


@pytest.fixture
def gated() -> Iterator[tuple[GatedUpstream, str]]:
    upstream = GatedUpstream(sse('{"n": 1}', '{"n": 2}', "[DONE]"))
    with gated_server(upstream) as server:
        yield upstream, server.url


def test_new_episodes_forwards_what_is_missing_and_replays_it_afterwards(
    gated: tuple[GatedUpstream, str], tmp_path: Path, anthropic_tape: Path
) -> None:
    upstream, upstream_url = gated
    tape = tmp_path / "cache.tape"
    options: dict[str, Any] = {"upstream": upstream_url, "mode": "new_episodes"}
    with serve(anthropic_tape, record_to=tape, allow_playback_repeats=True, **options) as url:
        answers = []
        for _ in range(2):
            response = raw_request(f"{url}/v1/chat/completions", body=b'{"new": 1}')
            chunks = []
            for chunk in response.chunks():  # forwarded read by read, gated by this client
                chunks.append(chunk)
                if len(upstream.requests) == 1 and len(chunks) < len(upstream.reads):
                    upstream.release()
            response.close()
            answers.append(chunks)
        with anthropic.Anthropic(base_url=url, api_key="any", max_retries=0) as claude:
            assert claude.messages.create(model=MODEL, max_tokens=64, messages=ASK).id == "msg_02"
    assert len(upstream.requests) == 1  # the repeat and the recorded call never went upstream
    assert answers[0] == upstream.reads and b"".join(answers[1]) == b"".join(upstream.reads)
    (recorded,) = Cassette.open(tape).exchanges()
    assert recorded.body == b"".join(upstream.reads)
    with serve(tape) as url:  # mode none: what was recorded is now a plain recording
        response = raw_request(f"{url}/v1/chat/completions", body=b'{"new": 1}')
        assert b"".join(response.chunks()) == recorded.body
        response.close()


def test_mode_all_forwards_everything_and_none_needs_no_upstream(
    gated: tuple[GatedUpstream, str], tmp_path: Path, anthropic_tape: Path
) -> None:
    upstream, upstream_url = gated
    tape = tmp_path / "all.tape"
    upstream.release(10)
    with serve(tape, upstream=upstream_url, mode="all") as url:
        response = raw_request(f"{url}/v1/messages", body=b'{"any": 1}')
        assert b"".join(response.chunks()) == b"".join(upstream.reads)
        response.close()
    assert len(Cassette.open(tape).exchanges()) == 1
    with serve(tape, upstream=upstream_url, mode="once") as url:  # recorded once: replay only
        response = raw_request(f"{url}/v1/messages", body=b'{"other": 1}')
        assert (
            response.status == 404
            and response.header("x-streamtape-error") == "streamtape_no_match"
        )
        response.close()
    assert len(upstream.requests) == 1
    with pytest.raises(ValueError, match="--mode once needs --upstream"):
        ReplayServer([anthropic_tape], mode="once")
    with pytest.raises(ValueError, match="no such cassette file or folder"):
        ReplayServer([tmp_path / "missing.tape"])


def test_a_folder_starts_from_the_indexes_and_decodes_only_what_is_asked(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for name, path in (("chat", "/v1/chat/completions"), ("emb", "/v1/embeddings")):
        write_cassette(
            folder / f"{name}.tape",
            [exchange(f"http://x{path}", {"n": i}, [b"{}"]) for i in range(1000)],
        )
    app = ReplayServer([folder], pacing="instant")
    assert len(app.library) == 2000 and len(app.library.files) == 2
    assert not app.library.ready("POST", "http://h/v1/chat/completions")
    with loopback_server(app) as server:
        response = raw_request(f"{server.url}/v1/chat/completions", body=b'{"n": 999}')
        assert response.status == 200 and b"".join(response.chunks()) == b"{}"
        response.close()
    assert app.library.ready("POST", "http://h/v1/chat/completions")
    assert not app.library.ready("POST", "http://h/v1/embeddings")


def test_a_non_loopback_address_warns(anthropic_tape: Path) -> None:
    with pytest.warns(ExposedServerWarning, match="other machines can reach"):
        with serve(anthropic_tape, host="0.0.0.0") as url:
            port = url.rsplit(":", 1)[1]
            client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="a")
            assert client.messages.create(model=MODEL, max_tokens=64, messages=ASK).id == "msg_02"
