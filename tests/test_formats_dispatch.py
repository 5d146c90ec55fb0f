"""One ``assemble`` for three dialects: detection by path then by first event, forcing,
the neutral summary of each, and the recorder knowing when each stream ended."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from _corpus import corpus_files, require_corpus

import streamtape
from streamtape import formats
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.errors import AssemblyError
from streamtape.formats.anthropic_messages import Message
from streamtape.formats.openai_chat.results import ChatCompletion
from streamtape.formats.openai_responses import Response
from streamtape.simulator.app import UpstreamServer

KINDS = {
    "openai-python": ChatCompletion,
    "openai-responses": Response,
    "anthropic": Message,
}


def corpus() -> list[tuple[str, Path]]:
    files = [(kind, p) for kind in KINDS for p in corpus_files(kind)]
    return [*files, *(("anthropic", p) for p in corpus_files("anthropic", "*.txt"))]


@pytest.mark.parametrize(("kind", "path"), corpus(), ids=lambda v: getattr(v, "stem", v))
def test_bare_bytes_are_recognised_by_their_first_event(kind: str, path: Path) -> None:
    result = streamtape.assemble(path.read_bytes())
    assert isinstance(result, KINDS[kind])
    summary = formats.summarize(result)
    assert (
        summary.format
        == {
            ChatCompletion: "openai_chat",
            Response: "openai_responses",
            Message: "anthropic_messages",
        }[KINDS[kind]]
    )


def test_the_corpus_is_there_for_detection() -> None:
    require_corpus()
    assert {kind for kind, _ in corpus()} == set(KINDS)


def exchange_at(url: str, body: bytes) -> Exchange:
    return Exchange(
        request=RecordedRequest(method="POST", url=url),
        status=200,
        reads=[Read(1_000_000, body)],
        end_ns=2_000_000,
    )


def test_the_request_path_decides_before_the_bytes() -> None:
    chat = b'data: {"object":"chat.completion.chunk","choices":[]}\n\ndata: [DONE]\n\n'
    assert formats.detect(exchange_at("http://gw/v1/chat/completions", chat)) == "openai_chat"
    assert formats.detect(exchange_at("http://gw/v1/responses", chat)) == "openai_responses"
    assert formats.detect(exchange_at("http://gw/v1/messages?beta=true", chat)) == (
        "anthropic_messages"
    )
    # OpenAI's assistants API also ends in /messages: the body decides there.
    assert formats.detect(exchange_at("http://gw/v1/threads/t1/messages", chat)) == "openai_chat"
    assert formats.detect(exchange_at("http://gw/v1/whatever", chat)) == "openai_chat"


def test_format_forces_an_assembler_and_a_wrong_name_is_a_clear_error() -> None:
    body = b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
    assert isinstance(streamtape.assemble(body), Message)
    assert isinstance(streamtape.assemble(body, format="openai_chat"), ChatCompletion)
    with pytest.raises(AssemblyError, match=r"unknown stream format 'gemini'.*openai_chat"):
        streamtape.assemble(body, format="gemini")


def test_an_unknown_stream_says_what_it_saw() -> None:
    result = streamtape.assemble(b'data: {"candidates": [1]}\n\n')
    problems = [p for p in result.outcome.problems if p.kind == "unknown_format"]
    assert problems and "candidates" in problems[0].message
    assert not result.outcome.ok


@pytest.mark.parametrize(
    ("tail", "finished"),
    [
        (b'data: {"choices":[]}\n\ndata: [DONE]\n\n', True),
        (b'data: {"choices":[]}\n\n', False),
        (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', True),
        (b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n', False),
        (b'event: response.completed\ndata: {"type":"response.completed","response":{}}\n\n', True),
        (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"}\n\n',
            False,
        ),
    ],
)
def test_stream_finished_knows_each_dialects_last_event(tail: bytes, finished: bool) -> None:
    assert formats.stream_finished(b"data: {}\n\n" + tail) is finished


ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "Hi"}],
}
RESPONSES_BODY = {"model": "gpt-4.1-mini", "input": "Hi", "stream": True}


@pytest.mark.parametrize(
    ("path", "body", "last_event"),
    [
        ("/v1/messages", ANTHROPIC_BODY, b"message_stop"),
        ("/v1/responses", RESPONSES_BODY, b"response.completed"),
    ],
    ids=["anthropic", "responses"],
)
def test_a_client_that_closes_after_the_last_event_recorded_a_complete_exchange(
    upstream: UpstreamServer, tmp_path: Path, path: str, body: dict[str, object], last_event: bytes
) -> None:
    """Like an SDK: read until the terminal event arrives, then close the body."""
    tape = tmp_path / "close.tape"
    headers = {"authorization": "Bearer sk-test", "x-api-key": "sk-test"}
    with httpx.Client(transport=streamtape.RecordingTransport(tape), base_url=upstream.url) as c:
        with c.stream("POST", path, json=body, headers=headers) as response:
            seen = b""
            for piece in response.iter_raw():
                seen += piece
                if last_event in seen and seen.endswith(b"\n\n"):
                    break
    (exchange,) = Cassette.open(tape).exchanges()
    assert exchange.outcome is Outcome.COMPLETE
    result = streamtape.assemble(exchange)
    assert result.outcome.ok, result.outcome.problems
    assert json.loads(result.to_json())  # plain JSON of the SDK shape
