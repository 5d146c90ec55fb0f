"""Test helpers for the servers: a raw HTTP/1.1 client that sees every chunk, a gated upstream.

The raw client reads the chunked body one chunk at a time as it arrives, so a test
sees exactly how the bytes were cut. The gated upstream sends read i+1 only once the
test says the client has read i: a server that buffered would deadlock it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from streamtape import Exchange, Read, RecordedRequest
from streamtape.simulator.runner import LoopbackServer, abort_response

GATE_TIMEOUT = 20.0


class RawResponse:
    """A response read by hand: status line, headers, then the body chunk by chunk."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        status_line = self.file.readline().decode("latin-1")
        self.status = int(status_line.split()[1])
        self.headers: list[tuple[str, str]] = []
        while True:
            line = self.file.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def chunks(self) -> Iterator[bytes]:
        """Each chunk of a chunked body as it arrives (or the whole body by length)."""
        if self.header("transfer-encoding") != "chunked":
            length = self.header("content-length")
            yield self.file.read(int(length)) if length is not None else self.file.read()
            return
        while True:
            size_line = self.file.readline()
            if not size_line:
                raise ConnectionError("the connection closed inside the chunked body")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                self.file.readline()
                return
            data = self.file.read(size)
            self.file.readline()
            yield data

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def raw_request(
    url: str,
    method: str = "POST",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> RawResponse:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GATE_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"]
    all_headers = {"host": f"{parts.hostname}:{parts.port}", "connection": "close"}
    all_headers.update(headers or {})
    if body or method == "POST":
        all_headers["content-length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return RawResponse(sock)


class GatedUpstream:
    """An ASGI upstream that sends ``reads`` one by one, each after ``release()``.

    The first read goes out with the headers; read i+1 waits for the i-th release.
    ``disconnected`` is set when a client (the proxy) hangs up mid-stream.
    """

    def __init__(self, reads: list[bytes], content_type: str = "text/event-stream") -> None:
        self.reads = reads
        self.content_type = content_type
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.disconnected = threading.Event()
        self.started = threading.Semaphore(0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gates: asyncio.Queue[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._early = 0

    def release(self, times: int = 1) -> None:
        """Let ``times`` more reads go (before the first request too)."""
        with self._lock:
            if self._loop is None or self._gates is None:
                self._early += times
                return
            for _ in range(times):
                self._loop.call_soon_threadsafe(self._gates.put_nowait, None)

    def interrupt(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop.set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            if self._loop is None:
                self._gates, self._stop = asyncio.Queue(), asyncio.Event()
                for _ in range(self._early):
                    self._gates.put_nowait(None)
                self._loop = asyncio.get_running_loop()
        assert self._gates is not None and self._stop is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        self.requests.append((scope["method"], scope["path"], headers, body))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", self.content_type.encode())],
            }
        )
        gone = asyncio.ensure_future(self._wait_disconnect(receive))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            for i, data in enumerate(self.reads):
                if i:
                    gate = asyncio.ensure_future(self._gates.get())
                    await asyncio.wait(
                        {gate, gone, stop}, timeout=GATE_TIMEOUT, return_when="FIRST_COMPLETED"
                    )
                    if not gate.done():
                        gate.cancel()
                        abort_response()
                        return
                await send({"type": "http.response.body", "body": data, "more_body": True})
                if i == 0:
                    self.started.release()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            stop.cancel()

    async def _wait_disconnect(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()


def gated_server(upstream: GatedUpstream) -> LoopbackServer:
    return LoopbackServer(upstream, on_stop=upstream.interrupt, name="gated-upstream")


def sse(*events: str) -> list[bytes]:
    """One read per event, each a complete ``data:`` event."""
    return [f"data: {e}\n\n".encode() for e in events]


def exchange(
    url: str,
    request: dict[str, Any],
    reads: list[bytes],
    gap_ms: float = 2.0,
    content_type: str = "text/event-stream",
) -> Exchange:
    """A recorded POST answered 200 with ``reads``, ``gap_ms`` apart."""
    step = int(gap_ms * 1e6)
    return Exchange(
        request=RecordedRequest(
            method="POST",
            url=url,
            headers=[("content-type", "application/json")],
            body=json.dumps(request).encode(),
        ),
        status=200,
        response_headers=[("content-type", content_type), ("request-id", "req_1")],
        reads=[Read(step * (i + 1), data) for i, data in enumerate(reads)],
        headers_ns=step // 2,
        end_ns=step * (len(reads) + 1),
    )
