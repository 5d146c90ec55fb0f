"""The pytest plugin, run as a user runs it: real inner test files under ``pytester``.

The inner suites use the official openai and anthropic SDKs unchanged (bare clients,
one built at import time, sync and async) against the simulated upstream on real
loopback sockets; replay runs happen with that upstream stopped, so passing proves
they were offline.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from _corpus import CORPUS, require_corpus
from plugin_support import FAKE_KEY, live_upstream, run, tapes

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.simulator.app import UpstreamServer

pytest_plugins = ["pytester"]


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamServer]:
    yield from live_upstream(monkeypatch)


CHAT_SUITE = """
import asyncio, os
import httpx, openai, pytest

# Built at import time, before any test began: the plugin must still reach it.
EARLY = openai.OpenAI(max_retries=0)
PROMPT = os.environ.get("PROMPT", "Tell me about streams.")

def ask(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
        stream=True, max_tokens=30)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

@pytest.mark.tape
def test_import_time_client(tape):
    text = ask(EARLY)
    assert text and tape.responses[0].choices[0].message.content == text

@pytest.mark.tape
def test_bare_clients_sync_and_async(tape):
    text = ask(openai.OpenAI(max_retries=0))

    async def main():
        async with openai.AsyncOpenAI(max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
                stream=True, max_tokens=30)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()) == text
    url = os.environ["OPENAI_BASE_URL"] + "/models"
    auth = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    assert httpx.get(url, headers=auth).status_code == 200

    async def plain_async():
        async with httpx.AsyncClient() as client:
            return (await client.get(url, headers=auth)).status_code

    assert asyncio.run(plain_async()) == 200
    assert len(tape.exchanges) == 4
"""


# --------------------------------------------------------------------------- record, replay


def test_records_once_then_replays_offline_with_the_sdk_unchanged(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    pytester.makepyfile(test_chat=CHAT_SUITE)
    run(pytester, "--tape-mode=once").assert_outcomes(passed=2)
    recorded = tapes(pytester)
    assert sorted(recorded) == [
        "cassettes/test_chat/test_bare_clients_sync_and_async.tape",
        "cassettes/test_chat/test_import_time_client.tape",
    ]
    assert [len(v) for v in recorded.values()] == [4, 1]
    every = [ex for v in recorded.values() for ex in v]
    assert all(FAKE_KEY not in repr(ex.request) and ex.redacted for ex in every)

    live.stop()  # from here on, any real request would fail to connect
    result = run(pytester)  # the default mode replays only
    result.assert_outcomes(passed=2)
    assert tapes(pytester) == recorded  # replay wrote nothing


def test_the_plugin_leaves_unmarked_tests_alone(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    pytester.makepyfile(
        test_mixed="""
        import os, socket, httpx, pytest
        REAL = (httpx.HTTPTransport.handle_request, socket.getaddrinfo, socket.socket.connect)

        @pytest.mark.tape
        def test_marked(tape):
            assert httpx.HTTPTransport.handle_request is not REAL[0]
            assert socket.getaddrinfo is not REAL[1]

        def test_unmarked_after():
            assert (httpx.HTTPTransport.handle_request, socket.getaddrinfo,
                    socket.socket.connect) == REAL
            assert httpx.get(os.environ["OPENAI_BASE_URL"] + "/models",
                             headers={"authorization": "Bearer k"}).status_code == 200
        """
    )
    run(pytester).assert_outcomes(passed=2)
    assert tapes(pytester) == {}


# --------------------------------------------------------------------------- modes


def test_each_mode_does_what_it_says(
    pytester: pytest.Pytester, live: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_chat=CHAT_SUITE)
    path = "cassettes/test_chat/test_import_time_client.tape"
    target = "test_chat.py::test_import_time_client"

    missing = run(pytester, target)  # none: nothing recorded, nothing reached
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*does not exist: record it with --tape-mode=once*"])
    assert tapes(pytester) == {}

    run(pytester, "--tape-mode=once", target).assert_outcomes(passed=1)
    first = tapes(pytester)[path]
    run(pytester, "--tape-mode=once", target).assert_outcomes(passed=1)
    assert tapes(pytester)[path] == first  # once: an existing cassette only replays

    monkeypatch.setenv("PROMPT", "Something new.")
    changed = run(pytester, "--tape-mode=once", target)
    changed.assert_outcomes(failed=1)  # once never adds to an existing cassette
    changed.stdout.fnmatch_lines(["*no recorded exchange matches POST*/chat/completions*"])

    run(pytester, "--tape-mode=new_episodes", target).assert_outcomes(passed=1)
    grown = tapes(pytester)[path]
    assert grown[:1] == first and len(grown) == 2  # kept the old one, added the new one

    run(pytester, "--tape-mode=all", target).assert_outcomes(passed=1)
    again = tapes(pytester)[path]
    assert len(again) == 1 and again[0].started_at_ns > grown[1].started_at_ns
    assert not list(pytester.path.rglob(".*.recording-*"))


def test_ci_forces_replay_unless_the_mode_is_given(
    pytester: pytest.Pytester, live: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_chat=CHAT_SUITE)
    pytester.makeini("[pytest]\ntape_mode = once\n")
    target = "test_chat.py::test_import_time_client"
    monkeypatch.setenv("CI", "true")
    run(pytester, target).assert_outcomes(failed=1)  # the ini's "once" does not apply in CI
    assert tapes(pytester) == {}
    run(pytester, "--tape-mode=once", target).assert_outcomes(passed=1)
    monkeypatch.delenv("CI")
    assert len(tapes(pytester)) == 1


# --------------------------------------------------------------------------- failures


def test_an_unrecorded_request_fails_with_the_nearest_match(
    pytester: pytest.Pytester, live: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code under test swallows every error: the plugin must fail the test anyway.
    pytester.makepyfile(
        test_swallow="""
        import os, openai, pytest

        @pytest.mark.tape
        def test_ask():
            try:
                openai.OpenAI(max_retries=0).chat.completions.create(
                    model="gpt-4o-mini", max_tokens=20,
                    messages=[{"role": "user", "content": os.environ["PROMPT"]}])
            except Exception:
                pass
        """
    )
    monkeypatch.setenv("PROMPT", "What is a stream?")
    run(pytester, "--tape-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("PROMPT", "What is a river?")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recorded exchange matches POST */v1/chat/completions (JSON body*",
            "*nearest recorded request (#1 of 1): POST */v1/chat/completions",
            '*body.messages[[]0[]].content: recorded "What is a stream?" '
            '!= sent "What is a river?"',
        ]
    )


def test_strict_fails_a_test_that_left_exchanges_unused(
    pytester: pytest.Pytester, live: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_two="""
        import os, openai, pytest

        @pytest.mark.tape
        def test_ask():
            client = openai.OpenAI(max_retries=0)
            for prompt in os.environ["PROMPTS"].split(","):
                client.completions.create(model="gpt-3.5-turbo-instruct", prompt=prompt,
                                          max_tokens=5)
        """
    )
    monkeypatch.setenv("PROMPTS", "one,two")
    run(pytester, "--tape-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("PROMPTS", "one")  # the code changed; the cassette did not
    run(pytester).assert_outcomes(passed=1)
    strict = run(pytester, "--tape-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(
        [
            "*--tape-strict: 1 recorded exchange(s) in *test_ask.tape were not used*",
            "*POST */v1/completions",
        ]
    )


def test_replay_blocks_the_network_and_names_the_host(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    pytester.makepyfile(
        test_net=f"""
        import os, socket, urllib.request, pytest
        from urllib.parse import urlsplit

        @pytest.mark.tape
        def test_internet():
            urllib.request.urlopen("http://api.openai.com/v1/models", timeout=5)

        @pytest.mark.tape
        def test_stray_local_port():
            socket.create_connection(("127.0.0.1", {port}), timeout=5)

        @pytest.mark.tape
        def test_own_loopback_server_is_reachable():
            url = urlsplit(os.environ["OPENAI_BASE_URL"])
            socket.create_connection((url.hostname, url.port), timeout=5).close()

        @pytest.mark.tape(allow_hosts=["127.0.0.1:{port}"])
        def test_allowed_host_goes_through():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", {port}), timeout=5)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*streamtape blocked the network for test_net.py::test_internet: "
            "refused api.openai.com:80*",
        ]
    )
    result.stdout.fnmatch_lines([f"*refused 127.0.0.1:{port}*"])


# --------------------------------------------------------------------------- other SDKs


def _anthropic_exchange() -> Exchange:
    sse = (CORPUS / "anthropic" / "prism-anthropic-stream-basic-text-1.sse").read_bytes()
    events = [e + b"\n\n" for e in sse.split(b"\n\n") if e.strip()]
    body = {
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello"}],
        "model": "claude-3-7-sonnet-20250219",
        "stream": True,
    }
    return Exchange(
        request=RecordedRequest(
            method="POST",
            url="https://api.anthropic.com/v1/messages",
            headers=[("content-type", "application/json")],
            body=json.dumps(body).encode(),
        ),
        status=200,
        response_headers=[("content-type", "text/event-stream")],
        reads=[Read(50_000_000 + i * 1_000_000, e) for i, e in enumerate(events)],
        headers_ns=40_000_000,
        end_ns=50_000_000 + len(events) * 1_000_000,
    )


def test_a_bare_anthropic_client_replays_raw_anthropic_sse(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_corpus()
    pytest.importorskip("anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdefghijklmnop")
    folder = pytester.path / "cassettes"
    folder.mkdir()
    with Cassette(folder / "claude.tape") as cassette:
        cassette.append(_anthropic_exchange())
    pytester.makepyfile(
        test_claude="""
        import anthropic, pytest

        @pytest.mark.tape("claude")
        def test_stream(tape):
            client = anthropic.Anthropic(max_retries=0)
            with client.messages.stream(model="claude-3-7-sonnet-20250219", max_tokens=64,
                                        messages=[{"role": "user", "content": "Hello"}]) as s:
                text = "".join(s.text_stream)
                final = s.get_final_message()
            assert text and final.content[0].text == text
            assert final.stop_reason == "end_turn"
            assert len(tape.replayed) == 1
        """
    )
    run(pytester, "--tape-strict").assert_outcomes(passed=1)


def test_misuse_gets_a_message_that_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_misuse="""
        import pytest

        @pytest.mark.tape(pacin="original")
        def test_typo():
            pass

        def test_fixture_without_marker(tape):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_typo: unknown @pytest.mark.tape option(s) *pacin*; choose from*",
            "*the tape fixture needs @pytest.mark.tape on the test*",
        ]
    )


def test_ignored_hosts_go_out_for_real_and_stay_off_the_tape(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    pytester.makepyfile(
        test_ignored="""
        import os, httpx, openai, pytest

        @pytest.mark.tape(ignore_hosts=["127.0.0.1"])
        def test_live(tape, tape_httpx):
            assert openai.OpenAI(max_retries=0).models.list().data
            assert tape_httpx.get(os.environ["OPENAI_BASE_URL"] + "/models",
                                  headers={"authorization": "Bearer k"}).status_code == 200
            assert tape.exchanges == [] and not tape.recording
        """
    )
    run(pytester).assert_outcomes(passed=1)
    assert tapes(pytester) == {}
