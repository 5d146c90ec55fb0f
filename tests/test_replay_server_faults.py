"""``streamtape serve --fault``: the same fault specs on the replay server, through the SDKs.

Clients in any language meet the very faults ``ReplayTransport(faults=...)`` injects:
a 429 retried by the SDK, a stream cut after token n, an Anthropic 529, a dropped
connection, and a bad spec refused in one line by the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest

import streamtape
from streamtape import Cassette, RecordingTransport, parse_sse
from streamtape.formats.fault_facts import fault_facts
from streamtape.simulator.app import UpstreamServer

KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
HI = [{"role": "user", "content": "Tell me about streams."}]
CHAT = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 24, "stream": True}
MESSAGES = {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 24, "stream": True}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Path:
    """One chat and one Anthropic stream, recorded from the simulator over real sockets."""
    tape = tmp_path_factory.mktemp("serve-faults") / "both.tape"
    headers = {"authorization": f"Bearer {KEY}", "x-api-key": KEY}
    with httpx.Client(transport=RecordingTransport(tape), base_url=upstream.url) as client:
        for path, body in (("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)):
            client.post(path, json=body, headers=headers).read()
    return tape


def chat_text(client: openai.OpenAI) -> str:
    stream = client.chat.completions.create(**CHAT)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def recorded_chat_text(tape: Path) -> str:
    chat = next(e for e in Cassette.open(tape) if e.request.url.endswith("/chat/completions"))
    return streamtape.formats.summarize(streamtape.assemble(chat)).text


def test_a_429_twice_is_retried_by_the_openai_sdk_then_streams(recorded: Path) -> None:
    faults = ["status:429:attempts=2,retry-after=0.01"]
    with streamtape.serve(
        recorded, pacing="instant", allow_playback_repeats=True, faults=faults
    ) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=2)
        assert chat_text(client) == recorded_chat_text(recorded)
        # Attempts count per request: another request meets its own first 429.
        with pytest.raises(openai.RateLimitError):
            openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0).chat.completions.create(
                **{**CHAT, "max_tokens": 25}
            )


def test_a_cut_after_token_n_gives_exactly_the_recorded_prefix(recorded: Path) -> None:
    chat = next(e for e in Cassette.open(recorded) if e.request.url.endswith("/chat/completions"))
    end = fault_facts(chat).token_end(chat.body, 3)
    assert end is not None
    with streamtape.serve(
        recorded, pacing="instant", allow_playback_repeats=True, faults=["cut:token=3"]
    ) as url:
        got = b""
        with httpx2.Client(base_url=url) as client:
            with client.stream("POST", "/v1/chat/completions", json=CHAT) as response:
                assert response.status_code == 200
                for piece in response.iter_raw():
                    got += piece
    assert got == chat.body[:end]
    tokens = [e for e in parse_sse(got) if b'"content"' in e.data]
    assert len(tokens) >= 3


def test_an_anthropic_529_reaches_the_sdk_in_its_own_shape(recorded: Path) -> None:
    with streamtape.serve(
        recorded, pacing="instant", allow_playback_repeats=True, faults=["status:529:attempts=1"]
    ) as url:
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as err:
            client.messages.create(**MESSAGES)
        assert err.value.status_code == 529
        assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        retried = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=1)
        with retried.messages.stream(**{k: v for k, v in MESSAGES.items() if k != "stream"}) as s:
            assert "".join(s.text_stream)


def test_a_connection_dropped_before_the_headers(recorded: Path) -> None:
    with streamtape.serve(
        recorded, pacing="instant", allow_playback_repeats=True, faults=["drop:headers,attempts=1"]
    ) as url:
        with httpx.Client(base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/v1/chat/completions", json=CHAT)
            again = client.post("/v1/chat/completions", json=CHAT)
            assert again.status_code == 200 and b"[DONE]" in again.content


def test_a_bad_fault_spec_is_one_line_with_the_grammar(recorded: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streamtape", "serve", str(recorded), "--fault", "cut:wat"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "bad fault spec 'cut:wat'" in proc.stderr and "status:CODE" in proc.stderr
