"""The proxy's upstream HTTP/1.1 client: one asyncio Protocol per connection, a small pool.

A general-purpose client (httpcore over anyio, parsing with h11) spends ~170 us of CPU
on every network read, which under a few hundred concurrent streams becomes tens of
milliseconds of queueing. The proxy needs much less: send one request, parse a status
line and headers, then hand each read's body bytes to the caller as soon as they
arrive. This module does only that, straight on ``asyncio.Protocol`` callbacks: per
read it parses in place, wakes at most one future and arms one timer.

Bodies are passed as received (no decoding, so gzip stays gzip); chunked framing is
removed. Header names keep their case and order.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx

MAX_HEAD = 64 * 1024
"""Largest status line plus headers accepted; a bigger head is not an HTTP answer we want."""
MAX_LINE = 8 * 1024
"""Largest chunk-size or trailer line."""
HIGH_WATER = 1 << 20
"""Unread body bytes at which the socket stops being read (resumed once drained)."""
IDLE_PER_ORIGIN = 64
IDLE_EXPIRY = 30.0
"""Seconds an idle connection is kept; upstreams commonly drop theirs after about a minute."""

Origin = tuple[str, str, int]
Timeouts = dict[str, Any]

# Where a connection's parser is.
_IDLE, _HEAD, _LENGTH, _UNTIL_CLOSE, _DONE = range(5)
_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER = range(5, 9)
_NO_BODY = frozenset({204, 304})
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"


class _Head:
    """A response's status line and headers."""

    __slots__ = ("headers", "reason", "status", "version")

    def __init__(
        self, version: bytes, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers


class _Stale(Exception):
    """A reused connection failed before any byte of the answer: the request may be resent."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def _protocol_error(name: str, what: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"upstream {name} sent {what}")


def _status_line(line: bytes, name: str) -> tuple[bytes, int, bytes]:
    """``HTTP/1.1 200 OK`` -> (version, status, reason)."""
    parts = line.split(b" ", 2)
    version, code = parts[0], parts[1] if len(parts) > 1 else b""
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or code.strip(_DIGITS):
        raise _protocol_error(name, f"a malformed status line: {line[:100]!r}")
    return version, int(code), parts[2] if len(parts) > 2 else b""


def _header(line: bytes, name: str) -> tuple[bytes, bytes]:
    key, colon, value = line.partition(b":")
    if not colon or not key or key != key.strip() or b" " in key or b"\t" in key:
        raise _protocol_error(name, f"a malformed header line: {line[:100]!r}")
    return key, value.strip(b" \t")


def _chunk_size(line: bytes, name: str) -> int:
    """The size on a chunk-size line; extensions after ``;`` are ignored."""
    size = line.split(b";", 1)[0].strip(b" \t")
    if not size or len(size) > 16 or size.strip(_HEX):
        raise _protocol_error(name, f"a malformed chunk size: {line[:100]!r}")
    return int(size, 16)


def _content_length(values: list[bytes], name: str) -> int:
    distinct = {v.strip() for value in values for v in value.split(b",")}
    if len(distinct) != 1:
        raise _protocol_error(name, f"conflicting Content-Length headers: {values!r}")
    length = distinct.pop()
    if not length or length.strip(_DIGITS):
        raise _protocol_error(name, f"a malformed Content-Length: {length[:100]!r}")
    return int(length)


def _tokens(headers: list[tuple[bytes, bytes]], wanted: bytes) -> list[bytes]:
    """The comma-separated tokens of every header named ``wanted`` (lowercase), lowercased."""
    return [
        token.strip().lower()
        for key, value in headers
        if key.lower() == wanted
        for token in value.split(b",")
    ]


class _Connection(asyncio.Protocol):
    """One upstream connection: parses the answer as it arrives and queues its body reads."""

    def __init__(self, origin: Origin, on_lost: Callable[[_Connection], None]) -> None:
        self.origin = origin
        self.name = f"{origin[1]}:{origin[2]}"
        self._on_lost = on_lost
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.state = _IDLE
        self.head: _Head | None = None
        self.error: httpx.TransportError | None = None
        self.pieces: collections.deque[bytes] = collections.deque()
        self.keep_alive = True
        self.lost = False
        self.got_bytes = False
        self.idle_since = 0.0
        self._head_request = False
        self._buffered = 0
        self._paused = False
        self._remaining = 0
        self._rest = b""
        self._parts: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._waiting: tuple[float, str] | None = None
        self._steps: dict[int, Callable[[bytes, int], int]] = {
            _HEAD: self._parse_head,
            _LENGTH: self._parse_length,
            _CHUNK_SIZE: self._parse_chunk_size,
            _CHUNK_DATA: self._parse_chunk_data,
            _CHUNK_END: self._parse_chunk_end,
            _TRAILER: self._parse_trailer,
            _UNTIL_CLOSE: self._parse_until_close,
        }

    # -- the request side --------------------------------------------------------------

    def send(self, payload: bytes, head_request: bool, close: bool) -> None:
        """Start an exchange: reset the parser and write the whole request at once."""
        self.state = _HEAD
        self.head = None
        self.error = None
        self.got_bytes = False
        self.keep_alive = not close
        self._head_request = head_request
        self._rest = b""
        self.pieces.clear()
        self._buffered = 0
        assert self.transport is not None
        self.transport.write(payload)

    async def wait(self, timeout: float | None, what: str) -> None:
        """Wait for the next read (or the end): one future; the timer is rarely re-armed.

        Each wait only moves a deadline; the connection's one timer, when it fires,
        re-arms itself for the deadline unless a wait has outlived it. That saves
        scheduling and cancelling a timer on every read.
        """
        waiter = self.loop.create_future()
        self._waiter = waiter
        if timeout is not None:
            deadline = self.loop.time() + timeout
            self._deadline, self._waiting = deadline, (timeout, what)
            timer = self._timer
            if timer is None or timer.when() > deadline:
                self._arm(deadline)
        else:
            self._waiting = None
        try:
            await waiter
        finally:
            self._waiter = None

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self._waiting is None:
            return  # no wait in progress: the next one arms the timer again
        if self.loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        timeout, what = self._waiting
        message = f"upstream {self.name} sent nothing for {timeout:g} s while we waited for {what}"
        waiter.set_exception(httpx.ReadTimeout(message))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def consumed(self, size: int) -> None:
        """The caller took ``size`` body bytes: read the socket again once drained."""
        self._buffered -= size
        if self._paused and self._buffered <= HIGH_WATER // 4 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        transport = self.transport
        return not self.lost and transport is not None and not transport.is_closing()

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.state == _IDLE:  # nothing was asked: an idle upstream giving up, say (408)
            self.close()
            return
        self.got_bytes = True
        if self._rest:
            data, self._rest = self._rest + data, b""
        try:
            self._parse(data)
        except httpx.RemoteProtocolError as exc:
            self.error = exc
            self.close()
        finally:
            self._queue()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost tells the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._on_lost(self)
        if self.state == _UNTIL_CLOSE:
            self.state = _DONE
        elif self.state not in (_IDLE, _DONE) and self.error is None:
            self.error = self._lost_error(exc)
        self._wake()

    def _lost_error(self, exc: Exception | None) -> httpx.TransportError:
        where = "the body" if self.head is not None else "the answer"
        if exc is not None:
            return httpx.ReadError(f"upstream {self.name}: connection lost during {where}: {exc}")
        message = f"upstream {self.name} closed the connection before the end of {where}"
        return httpx.RemoteProtocolError(message)

    # -- the parser --------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        pos, end, steps = 0, len(data), self._steps
        while pos < end:
            step = steps.get(self.state)
            if step is None:  # bytes past the end of the answer: do not reuse
                self.keep_alive = False
                return
            pos = step(data, pos)

    def _queue(self) -> None:
        """This read's body bytes become one piece for the caller."""
        parts = self._parts
        if not parts:
            return
        piece = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self.pieces.append(piece)
        self._buffered += len(piece)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _keep(self, data: bytes, pos: int, limit: int, what: str) -> int:
        """Keep an incomplete line for the next read."""
        if len(data) - pos > limit:
            raise _protocol_error(self.name, f"an over-long {what}")
        self._rest = data[pos:]
        return len(data)

    def _parse_head(self, data: bytes, pos: int) -> int:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return self._keep(data, pos, MAX_HEAD, "status line and headers")
        lines = data[pos:end].split(b"\r\n")
        version, status, reason = _status_line(lines[0], self.name)
        if 100 <= status < 200 and status != 101:
            return end + 4  # an interim answer (100 Continue): the real one follows
        headers = [_header(line, self.name) for line in lines[1:]]
        self.head = _Head(version, status, reason, headers)
        self._frame(version, status, headers)
        return end + 4

    def _frame(self, version: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Decide how the body ends, and whether the connection can be reused after it."""
        connection = _tokens(headers, b"connection")
        if b"close" in connection or (version == b"HTTP/1.0" and b"keep-alive" not in connection):
            self.keep_alive = False
        encodings = _tokens(headers, b"transfer-encoding")
        lengths = [value for key, value in headers if key.lower() == b"content-length"]
        if self._head_request or status in _NO_BODY or status == 101:
            self.keep_alive = self.keep_alive and status != 101
            self.state = _DONE
        elif encodings and encodings[-1] == b"chunked":
            self.state = _CHUNK_SIZE
        elif lengths and not encodings:
            self._remaining = _content_length(lengths, self.name)
            self.state = _LENGTH if self._remaining else _DONE
        else:
            self.keep_alive = False
            self.state = _UNTIL_CLOSE

    def _take(self, data: bytes, pos: int, then: int) -> int:
        """Keep up to ``_remaining`` body bytes; once all are in, the parser goes to ``then``."""
        take = min(self._remaining, len(data) - pos)
        self._parts.append(data[pos : pos + take])
        self._remaining -= take
        if not self._remaining:
            self.state = then
        return pos + take

    def _parse_length(self, data: bytes, pos: int) -> int:
        return self._take(data, pos, _DONE)

    def _parse_chunk_size(self, data: bytes, pos: int) -> int:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return self._keep(data, pos, MAX_LINE, "chunk-size line")
        size = _chunk_size(data[pos:end], self.name)
        self._remaining = size
        self.state = _CHUNK_DATA if size else _TRAILER
        return end + 2

    def _parse_chunk_data(self, data: bytes, pos: int) -> int:
        return self._take(data, pos, _CHUNK_END)

    def _parse_chunk_end(self, data: bytes, pos: int) -> int:
        if len(data) - pos < 2:
            return self._keep(data, pos, 2, "chunk end")
        if data[pos : pos + 2] != b"\r\n":
            raise _protocol_error(self.name, "a chunk longer than its size line said")
        self.state = _CHUNK_SIZE
        return pos + 2

    def _parse_trailer(self, data: bytes, pos: int) -> int:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return self._keep(data, pos, MAX_LINE, "trailer line")
        if end == pos:
            self.state = _DONE
        return end + 2  # a trailer field: not kept

    def _parse_until_close(self, data: bytes, pos: int) -> int:
        self._parts.append(data[pos:] if pos else data)
        return len(data)


class _Body(httpx.AsyncByteStream):
    """A response body: yields each network read's body bytes as soon as they arrive."""

    def __init__(self, conn: _Connection, pool: UpstreamTransport, read_timeout: float | None):
        self._conn = conn
        self._pool = pool
        self._timeout = read_timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        pieces = conn.pieces
        while True:
            if pieces:
                piece = pieces.popleft()
                conn.consumed(len(piece))
                yield piece
            elif conn.error is not None:
                self._end()
                raise conn.error
            elif conn.state == _DONE:
                self._end()
                return
            else:
                await conn.wait(self._timeout, "the next read of the body")

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.release(self._conn)

    async def aclose(self) -> None:
        """Closed before the end: the rest of the body is unread, so the connection goes."""
        if not self._closed:
            if self._conn.state != _DONE or self._conn.error is not None:
                self._conn.close()
            self._end()


def _origin(url: httpx.URL) -> Origin:
    scheme = url.scheme
    return scheme, url.host, url.port or (443 if scheme == "https" else 80)


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for key, value in request.headers.raw:
        parts += (key, b": ", value, b"\r\n")
    parts += (b"\r\n", body)
    return b"".join(parts)


class UpstreamTransport(httpx.AsyncBaseTransport):
    """An HTTP/1.1 transport for the proxy: asyncio-native, cheap per read.

    Connections are opened as needed (no limit) and up to ``max_idle`` per origin are
    kept for ``idle_expiry`` seconds. A reused connection that fails before any byte
    of the answer is retried once on a fresh one (the upstream had dropped it).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = IDLE_PER_ORIGIN,
        idle_expiry: float = IDLE_EXPIRY,
    ) -> None:
        self._tls = ssl_context
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._live: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request.url)
        timeouts: Timeouts = request.extensions.get("timeout") or {}
        payload = _serialize(request, await request.aread())
        conn = self._reuse(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, request, payload, timeouts)
            except _Stale:
                pass  # the upstream had closed it: once more on a fresh connection
        conn = await self._connect(origin, timeouts.get("connect"))
        try:
            return await self._exchange(conn, request, payload, timeouts)
        except _Stale as stale:
            raise stale.error from None

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, payload: bytes, timeouts: Timeouts
    ) -> httpx.Response:
        close = b"close" in _tokens(request.headers.raw, b"connection")
        conn.send(payload, request.method == "HEAD", close)
        read_timeout = timeouts.get("read")
        try:
            while conn.head is None:
                if conn.error is not None:
                    if conn.got_bytes:
                        raise conn.error
                    raise _Stale(conn.error)
                await conn.wait(read_timeout, "the status line and headers")
        except BaseException:
            conn.close()
            raise
        head = conn.head
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=_Body(conn, self, read_timeout),
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest = asyncio.get_running_loop().time() - self._idle_expiry
        while idle and idle[0].idle_since < oldest:
            idle.pop(0).close()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be dropped
            if conn.reusable:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        name = f"{host}:{port}"
        tls = self._tls_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(
            lambda: _Connection(origin, self._lost),
            host,
            port,
            ssl=tls,
            server_hostname=host if tls is not None else None,
        )
        try:
            _, conn = await asyncio.wait_for(opening, timeout)
        except asyncio.TimeoutError:
            message = f"could not connect to upstream {name} within {timeout:g} s"
            raise httpx.ConnectTimeout(message) from None
        except OSError as exc:
            raise httpx.ConnectError(f"could not connect to upstream {name}: {exc}") from exc
        self._live.add(conn)
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        """One context for every connection: loading the CA store takes ~0.1 s."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def release(self, conn: _Connection) -> None:
        """An answer was read to its end: keep the connection for the next request if we may."""
        if not conn.keep_alive or not conn.reusable:
            conn.close()
            return
        conn.state = _IDLE
        conn.idle_since = conn.loop.time()
        origin_idle = self._idle.setdefault(conn.origin, [])
        origin_idle.append(conn)
        if len(origin_idle) > self._max_idle:
            origin_idle.pop(0).close()

    def _lost(self, conn: _Connection) -> None:
        self._live.discard(conn)

    async def aclose(self) -> None:
        for conn in list(self._live):
            conn.close()
        self._live.clear()
        self._idle.clear()
