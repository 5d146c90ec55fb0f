"""What the server benchmark runs on: server processes read from /proc, and a raw HTTP/1.1 client.

The client is one asyncio process with a connection per stream; it notes when each
chunk of a chunked body arrives, so a benchmark sees every read as the client got it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
SPREAD_S = 0.5
"""The window in which the concurrent streams start, as independent clients would."""

# --------------------------------------------------------------------------- processes


class Proc:
    """A server process: started, its URL read from its output, its CPU read from /proc."""

    def __init__(self, argv: Sequence[str], pattern: str, env: dict[str, str] | None = None):
        self.popen = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.popen.stdout is not None
        self.output: list[str] = []
        for line in self.popen.stdout:
            self.output.append(line)
            found = re.search(pattern, line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise RuntimeError(f"{argv[0]} did not start:\n{''.join(self.output)}")
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.communicate()


def free_port() -> int:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 30.0) -> None:

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class ReelProc(Proc):
    """reel-vcr's proxy: it takes a fixed port and prints nothing parseable, so poll it."""

    def __init__(self, reel: str, mode: str, cassette: Path, upstream: str | None = None):
        port = free_port()
        argv = [reel, mode, "-c", str(cassette), "--port", str(port)]
        if upstream is not None:
            argv += ["--upstream", upstream]
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "REEL_REDACT_PII": "0"},
        )
        self.output = []
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        wait_listening(port)


# --------------------------------------------------------------------------- the client


@dataclass
class Stream:
    """One response as the client saw it: when it asked, when each chunk came."""

    sent_ns: int = 0
    status: int = 0
    headers: bytes = b""
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    complete: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(c for _, c in self.chunks)


class _Client(asyncio.Protocol):
    """HTTP/1.1 over one connection: sends one request, splits the chunked body as it comes."""

    def __init__(self, request: bytes, done: asyncio.Future[Stream]) -> None:
        self.request = request
        self.done = done
        self.stream = Stream()
        self.buf = bytearray()
        self.need: int | None = None
        self.in_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.stream.sent_ns = time.perf_counter_ns()
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf
        buf += data
        if not self.in_body:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.stream.headers = bytes(buf[:end])
            self.stream.status = int(self.stream.headers.split(b" ", 2)[1])
            del buf[: end + 4]
            self.in_body = True
        while True:
            if self.need is None:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(buf[:eol]).split(b";")[0], 16)
                del buf[: eol + 2]
                if size == 0:
                    self.stream.complete = True
                    self.transport.close()
                    return
                self.need = size
            if len(buf) < self.need + 2:
                return
            self.stream.chunks.append((now, bytes(buf[: self.need])))
            del buf[: self.need + 2]
            self.need = None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.stream)


def http_request(url: str, path: str, body: bytes) -> bytes:
    host = url.split("//", 1)[1]
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer sk-bench-0000000000000000\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


async def fetch_all(
    url: str,
    bodies: Sequence[bytes],
    path: str = "/v1/chat/completions",
    spread_s: float = SPREAD_S,
) -> list[Stream]:
    """All requests within ``spread_s``, one connection each, as independent clients would.

    Returns each stream as the client saw it.
    """
    loop = asyncio.get_running_loop()
    port = int(url.rsplit(":", 1)[1])
    # The instrument must not pause: its chunk list grows by tens of thousands of
    # tuples, and a full collection of them would delay the arrival stamps.
    collecting = gc.isenabled()
    gc.disable()

    async def one(i: int, body: bytes) -> Stream:
        await asyncio.sleep(spread_s * i / len(bodies))
        done: asyncio.Future[Stream] = loop.create_future()
        await loop.create_connection(
            lambda: _Client(http_request(url, path, body), done), "127.0.0.1", port
        )
        return await asyncio.wait_for(done, 120)

    try:
        return await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    finally:
        if collecting:
            gc.enable()


def stream_bodies(n: int, tag: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "model": "bench",
                "stream": True,
                "messages": [{"role": "user", "content": f"{tag} {i}"}],
            }
        ).encode()
        for i in range(n)
    ]
