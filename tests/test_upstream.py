"""The proxy's upstream HTTP/1.1 client against a raw loopback server sending exact bytes.

Each test scripts the server's side byte for byte, so framing, reuse and failures are
seen as the client meets them on a real socket. Gates (events), not sleeps, order the
two sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import httpx
import pytest

from streamtape.server.upstream import UpstreamTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 5)

    return asyncio.run(bounded())


class Upstream:
    """A loopback server running ``handler`` on each connection; counts its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer)
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Upstream]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()

    def url(self, path: str = "/v1/chat") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def read_request(reader: asyncio.StreamReader, into: list[bytes] | None = None) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    request = head + await reader.readexactly(length)
    if into is not None:
        into.append(request)
    return request


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def send(
    transport: UpstreamTransport, url: str, method: str = "GET", **kwargs: Any
) -> httpx.Response:
    request = httpx.Request(method, url, extensions={"timeout": TIMEOUT}, **kwargs)
    return await transport.handle_async_request(request)


async def body_of(response: httpx.Response) -> list[bytes]:
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    pieces = [piece async for piece in stream]
    await stream.aclose()
    return pieces


def test_chunked_body_yields_each_read_as_it_arrives() -> None:
    got_first = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n")
        await got_first.wait()  # a client that buffered would never let this go
        writer.write(b"6\r\n wor")
        await writer.drain()
        writer.write(b"ld\r\n0\r\nX-Trailer: yes\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> list[bytes]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url())
            assert response.status_code == 200
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            pieces = []
            async for piece in stream:
                pieces.append(piece)
                got_first.set()
            await transport.aclose()
            return pieces

    pieces = run(main())
    assert pieces[0] == b"hello"
    assert b"".join(pieces) == b"hello world"


def test_content_length_body_and_connection_reuse() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for body in (b"first", b"second!"):
            await read_request(reader, seen)
            writer.write(answer(body))

    async def main() -> tuple[list[bytes], list[bytes], int]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            one = await body_of(await send(transport, upstream.url(), "POST", content=b"{}"))
            two = await body_of(await send(transport, upstream.url("/x?a=1")))
            await transport.aclose()
            return one, two, upstream.connections

    one, two, connections = run(main())
    assert b"".join(one) == b"first" and b"".join(two) == b"second!"
    assert connections == 1
    assert seen[0].startswith(b"POST /v1/chat HTTP/1.1\r\n") and seen[0].endswith(b"\r\n\r\n{}")
    assert seen[1].startswith(b"GET /x?a=1 HTTP/1.1\r\n")


def test_connection_close_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"bye", b"Connection: close\r\n"))
        await reader.read()

    async def main() -> int:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            for _ in range(2):
                assert b"".join(await body_of(await send(transport, upstream.url()))) == b"bye"
            await transport.aclose()
            return upstream.connections

    assert run(main()) == 2


def test_close_delimited_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")

    async def main() -> bytes:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            body = b"".join(await body_of(await send(transport, upstream.url())))
            await transport.aclose()
            return body

    assert run(main()) == b"until the end"


def test_interim_100_continue_is_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"ok"))
        await reader.read()

    async def main() -> tuple[int, bytes]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url(), "POST", content=b"x")
            body = b"".join(await body_of(response))
            await transport.aclose()
            return response.status_code, body

    assert run(main()) == (200, b"ok")


def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await read_request(reader)
        writer.write(answer(b"third"))
        await reader.read()

    async def main() -> tuple[list[list[bytes]], int]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            bodies = [
                await body_of(await send(transport, upstream.url(), "HEAD")),
                await body_of(await send(transport, upstream.url(), "DELETE")),
                await body_of(await send(transport, upstream.url())),
            ]
            await transport.aclose()
            return bodies, upstream.connections

    bodies, connections = run(main())
    assert bodies == [[], [], [b"third"]]
    assert connections == 1


def test_stale_idle_connection_is_retried_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        # Drop it without a FIN the client could have seen before reusing it: a reset
        # once the next request arrives.
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async def main() -> tuple[bytes, int]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            await body_of(await send(transport, upstream.url()))
            body = b"".join(await body_of(await send(transport, upstream.url())))
            await transport.aclose()
            return body, upstream.connections

    assert run(main()) == (b"ok", 2)


def test_idle_connection_closed_by_the_peer_is_discarded() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        if closed.is_set():
            await reader.read()
            return
        closed.set()

    async def main() -> tuple[bytes, int]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            await body_of(await send(transport, upstream.url()))
            await closed.wait()
            for _ in range(20):  # let the client see the FIN
                await asyncio.sleep(0)
            body = b"".join(await body_of(await send(transport, upstream.url())))
            await transport.aclose()
            return body, upstream.connections

    assert run(main()) == (b"ok", 2)


@pytest.mark.parametrize(
    "reply",
    [b"HTTP/1.1 OK\r\n\r\n", b"SPDY/3 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"],
)
def test_malformed_head_is_a_protocol_error(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await reader.read()

    async def main() -> None:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            with pytest.raises(httpx.RemoteProtocolError, match=f"127.0.0.1:{upstream.port}"):
                await send(transport, upstream.url())
            await transport.aclose()

    run(main())


def test_malformed_chunk_size_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
        await reader.read()

    async def main() -> list[bytes]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url())
            got: list[bytes] = []
            with pytest.raises(httpx.RemoteProtocolError, match="chunk size"):
                async for piece in response.stream:  # type: ignore[union-attr]
                    got.append(piece)
            await transport.aclose()
            return got

    assert run(main()) == [b"abc"]


def test_eof_mid_chunked_body_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n8\r\ncut")

    async def main() -> list[bytes]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url())
            got: list[bytes] = []
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                async for piece in response.stream:  # type: ignore[union-attr]
                    got.append(piece)
            await transport.aclose()
            return got

    assert b"".join(run(main())) == b"partcut"


def test_eof_before_content_length_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")

    async def main() -> None:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url())
            with pytest.raises(httpx.RemoteProtocolError, match="before the end of the body"):
                await body_of(response)
            await transport.aclose()

    run(main())


def test_connect_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused

        async def main() -> None:
            transport = UpstreamTransport()
            with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
                await send(transport, f"http://127.0.0.1:{port}/")

        run(main())


def test_silent_upstream_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await release.wait()

    async def main() -> None:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            timeout = dict(TIMEOUT, read=0.05)
            request = httpx.Request("GET", upstream.url(), extensions={"timeout": timeout})
            response = await transport.handle_async_request(request)
            with pytest.raises(httpx.ReadTimeout, match=r"0\.05 s"):
                await body_of(response)
            release.set()
            await transport.aclose()

    run(main())


def test_gzip_bytes_and_header_case_and_order_pass_untouched() -> None:
    packed = gzip.compress(b'{"ok": true}')
    head = (
        b"HTTP/1.1 201 Created\r\nX-Zeta: 1\r\ncontent-TYPE: application/json\r\n"
        b"Content-Encoding: gzip\r\nX-Alpha: 2\r\nX-Zeta: 3\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(packed) + packed)
        await reader.read()

    async def main() -> tuple[httpx.Response, bytes]:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            response = await send(transport, upstream.url())
            body = b"".join(await body_of(response))
            await transport.aclose()
            return response, body

    response, body = run(main())
    assert body == packed
    assert response.status_code == 201 and response.reason_phrase == "Created"
    assert [k for k, _ in response.headers.raw] == [
        b"X-Zeta",
        b"content-TYPE",
        b"Content-Encoding",
        b"X-Alpha",
        b"X-Zeta",
        b"Content-Length",
    ]


def test_closing_mid_body_drops_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, None)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        await reader.read()

    async def main() -> int:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            for _ in range(2):
                response = await send(transport, upstream.url())
                stream = response.stream
                assert isinstance(stream, httpx.AsyncByteStream)
                async for _piece in stream:
                    break
                await stream.aclose()
            await transport.aclose()
            return upstream.connections

    assert run(main()) == 2


def test_upstream_sockets_have_nodelay() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await reader.read()

    async def main() -> int:
        async with Upstream(handler).running() as upstream:
            transport = UpstreamTransport()
            await body_of(await send(transport, upstream.url()))
            (conn,) = transport._live
            assert conn.transport is not None
            sock = conn.transport.get_extra_info("socket")
            nodelay = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            await transport.aclose()
            return nodelay

    assert run(main()) != 0
