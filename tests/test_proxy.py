"""The recording proxy over real sockets: the simulator or a gated upstream behind it."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from _servers import GatedUpstream, gated_server, raw_request, sse
from openai.types.chat import ChatCompletionChunk

from streamtape import Cassette, Exchange, Outcome
from streamtape.server.proxy import SHUTDOWN_CUT, RecordingProxy
from streamtape.server.run import loopback_server
from streamtape.simulator.app import UpstreamServer
from streamtape.simulator.runner import LoopbackServer

KEY = "sk-proxytest-0123456789abcdefghijklmnop"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me about rivers"}]}


class Proxy:
    """A running proxy, its cassette, and an event per exchange written."""

    def __init__(
        self, upstream: str, tape: Path, grace: float = 1.0, timeout: float = 10.0
    ) -> None:
        self.tape = tape
        self.written: list[Exchange] = []
        self._changed = threading.Condition()
        self.app = RecordingProxy(upstream, tape, on_exchange=self._on_exchange, timeout=timeout)
        self.server = loopback_server(self.app, grace=grace)

    def _on_exchange(self, exchange: Exchange) -> None:
        with self._changed:
            self.written.append(exchange)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[Exchange]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.written) >= count, timeout=20)
            return list(self.written)


@pytest.fixture
def proxy(upstream: UpstreamServer, tmp_path: Path) -> Iterator[Proxy]:
    running = Proxy(upstream.url, tmp_path / "proxy.tape")
    with running.server:
        yield running
    running.app.close()


@pytest.fixture
def gated() -> Iterator[tuple[GatedUpstream, LoopbackServer]]:
    upstream = GatedUpstream(sse(*(json.dumps({"i": i}) for i in range(6)), "[DONE]"))
    with gated_server(upstream) as server:
        yield upstream, server


def test_openai_sdk_streams_through_the_proxy_and_the_key_never_reaches_disk(
    proxy: Proxy,
) -> None:
    client = openai.OpenAI(base_url=proxy.server.base_url, api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(**CHAT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    whole = client.chat.completions.create(**CHAT)
    assert text and text == whole.choices[0].message.content
    streamed, complete = proxy.wait_for(2)
    assert streamed.outcome is Outcome.COMPLETE and streamed.is_event_stream
    assert len(streamed.reads) > 5 and streamed.body.rstrip().endswith(b"data: [DONE]")
    assert complete.outcome is Outcome.COMPLETE and len(complete.reads) >= 1
    on_disk = [e.request.url for e in Cassette.open(proxy.tape)]
    assert on_disk == [e.request.url for e in proxy.written]
    assert KEY.encode() not in proxy.tape.read_bytes()
    assert streamed.request.header("authorization") == "<redacted>"


def test_async_openai_sdk_streams_through_the_proxy(proxy: Proxy) -> None:
    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=proxy.server.base_url, api_key=KEY, max_retries=0)
        async with client:
            streams = [
                await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"question {i}"}],
                    stream=True,
                )
                for i in range(3)
            ]

            async def text(stream: openai.AsyncStream[ChatCompletionChunk]) -> str:
                parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
                return "".join(parts)

            return await asyncio.gather(*(text(s) for s in streams))

    texts = asyncio.run(main())
    assert all(texts) and len(set(texts)) == 3
    assert all(e.outcome is Outcome.COMPLETE for e in proxy.wait_for(3))


def test_bodies_pass_byte_exact_and_gzip_stays_gzip(proxy: Proxy) -> None:
    body = json.dumps({"model": "text-embedding-3-small", "input": "bytes"}).encode()
    response = raw_request(
        f"{proxy.server.base_url}/embeddings",
        body=body,
        headers={
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "accept-encoding": "gzip",
            "x-demo-gzip": "1",
        },
    )
    got = b"".join(response.chunks())
    response.close()
    assert response.status == 200 and response.header("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(got))["object"] == "list"
    (exchange,) = proxy.wait_for(1)
    assert exchange.body == got and exchange.request.body == body
    assert exchange.response_header("content-encoding") == "gzip"


def test_every_read_reaches_the_client_before_the_upstream_sends_the_next(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    upstream, server = gated
    running = Proxy(server.url, tmp_path / "gated.tape")
    with running.server:
        response = raw_request(
            f"{running.server.base_url}/chat/completions",
            body=json.dumps({**CHAT, "stream": True}).encode(),
            headers={"authorization": f"Bearer {KEY}", "connection": "keep-alive, x-hop"},
        )
        assert response.status == 200
        received = []
        for chunk in response.chunks():  # each arrives only because the last one did
            received.append(chunk)
            if len(received) < len(upstream.reads):
                upstream.release()
        response.close()
        (exchange,) = running.wait_for(1)
    running.app.close()
    assert received == upstream.reads == [r.data for r in exchange.reads]
    sent_headers = {k for k, _ in upstream.requests[0][2]}
    assert "x-hop" not in sent_headers and "connection" not in sent_headers
    assert KEY in dict(upstream.requests[0][2])["authorization"]  # forwarded, not written
    assert exchange.outcome is Outcome.COMPLETE


def test_a_client_hang_up_cancels_the_upstream_and_keeps_the_partial_exchange(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    upstream, server = gated
    running = Proxy(server.url, tmp_path / "hangup.tape")
    with running.server:
        response = raw_request(
            f"{running.server.base_url}/chat/completions", body=json.dumps(CHAT).encode()
        )
        chunks = response.chunks()
        first = next(chunks)
        upstream.release()
        second = next(chunks)
        response.sock.shutdown(socket.SHUT_RDWR)
        response.close()
        (exchange,) = running.wait_for(1)
        assert upstream.disconnected.wait(10)
    running.app.close()
    assert exchange.outcome is Outcome.CLIENT_CLOSED
    assert [r.data for r in exchange.reads][:2] == [first, second] == upstream.reads[:2]
    assert Cassette.open(running.tape).exchanges()[0].outcome is Outcome.CLIENT_CLOSED


def test_an_upstream_that_dies_mid_stream_cuts_the_client_and_is_recorded(proxy: Proxy) -> None:
    client = openai.OpenAI(
        base_url=proxy.server.base_url,
        api_key=KEY,
        max_retries=0,
        default_headers={"x-demo-fault": "drop"},
    )
    stream = client.chat.completions.create(**CHAT, stream=True)
    got = []
    with pytest.raises((openai.APIError, httpx.TransportError)):
        for chunk in stream:
            got.append(chunk)
    (exchange,) = proxy.wait_for(1)
    assert got and exchange.outcome is Outcome.UPSTREAM_ERROR
    assert exchange.reads and exchange.error


def test_an_unreachable_upstream_is_a_502_with_a_json_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    running = Proxy(f"http://127.0.0.1:{port}", tmp_path / "down.tape")
    with running.server:
        client = openai.OpenAI(base_url=running.server.base_url, api_key=KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(**CHAT)
        (exchange,) = running.wait_for(1)
    running.app.close()
    assert caught.value.status_code == 502
    assert "upstream" in caught.value.message and "ConnectError" in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_unreachable"
    assert exchange.status == 0 and exchange.outcome is Outcome.UPSTREAM_ERROR


def test_streams_still_open_when_the_grace_period_ends_are_cut_and_written(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    upstream, server = gated
    running = Proxy(server.url, tmp_path / "grace.tape", grace=0.2)
    running.server.start()
    responses = [
        raw_request(f"{running.server.base_url}/chat/completions", body=json.dumps(CHAT).encode())
        for _ in range(3)
    ]
    for response in responses:
        next(response.chunks())
    running.server.stop()  # the upstream never sends more: every stream outlives the grace
    running.app.close()
    exchanges = Cassette.open(running.tape).exchanges()
    for response in responses:
        response.close()
    assert len(exchanges) == 3
    assert all(e.outcome is Outcome.CLIENT_CLOSED and e.error == SHUTDOWN_CUT for e in exchanges)
    assert all([r.data for r in e.reads] == upstream.reads[:1] for e in exchanges)


def test_an_upstream_that_stalls_past_the_timeout_is_recorded_as_a_timeout(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    upstream, server = gated
    running = Proxy(server.url, tmp_path / "stall.tape", timeout=0.3)
    with running.server:
        response = raw_request(
            f"{running.server.base_url}/chat/completions", body=json.dumps(CHAT).encode()
        )
        chunks = response.chunks()
        assert next(chunks) == upstream.reads[0]
        with pytest.raises(ConnectionError):  # never released: the read times out
            next(chunks)
        response.close()
        (exchange,) = running.wait_for(1)
    running.app.close()
    assert exchange.outcome is Outcome.TIMEOUT and "ReadTimeout" in (exchange.error or "")
    assert exchange.body == upstream.reads[0]


def test_a_response_ends_only_once_its_exchange_is_in_the_cassette(proxy: Proxy) -> None:
    # The record is written off the loop; the client's last chunk waits for it.
    with httpx.Client(base_url=proxy.server.base_url) as client:
        for n in range(1, 4):
            client.post("/chat/completions", json=CHAT, headers={"authorization": f"Bearer {KEY}"})
            assert len(Cassette.open(proxy.tape).exchanges()) == n


def test_a_failed_write_is_reported_and_the_next_exchanges_still_recorded(
    upstream: UpstreamServer, tmp_path: Path
) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    errors: list[Exception] = []
    written: list[Exchange] = []
    app = RecordingProxy(
        upstream.url, folder / "p.tape", on_exchange=written.append, on_error=errors.append
    )
    auth = {"authorization": f"Bearer {KEY}"}
    with loopback_server(app) as server, httpx.Client(base_url=server.base_url) as client:
        folder.rmdir()  # the cassette's folder went away before the first write
        first = client.post("/chat/completions", json=CHAT, headers=auth)
        assert first.status_code == 200  # the client still got its whole answer
        folder.mkdir()
        client.post("/chat/completions", json=CHAT, headers=auth)
    app.close()
    assert len(errors) == 1 and "the folder does not exist" in str(errors[0])
    assert len(written) == 1 and len(Cassette.open(folder / "p.tape").exchanges()) == 1
