"""The recording proxy: an ASGI app any client can point its base URL at.

It is a front end for ``AsyncRecordingTransport``: each request goes upstream through
that transport, so the exchange is teed, redacted and written by the same
``Recording`` core as in-process recording, and each read is handed to the client as
soon as it arrives. Upstream it talks HTTP/1.1 through ``UpstreamTransport``, a lean
asyncio client that costs a few microseconds per read (a general-purpose client cost
~170 us, which under hundreds of streams became tens of ms of delay). Bodies pass
byte-exact (the upstream transport does not decode them: gzip stays gzip); hop-by-hop
headers stop here.

How exchanges end: a client that hangs up cancels the upstream request and the
partial exchange is written as ``client_closed``; an upstream that fails before its
headers gets the client a 502 (504 on a timeout) in the API's error shape, and one
that fails mid-body gets the client's connection cut, both recorded with the error.
When the server shuts down past its grace period, the streams still open are cut and
written with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Callable
from typing import Any, cast

import httpx

from streamtape.core.exchange import Exchange, Outcome, first_header
from streamtape.errors import ServerConfigError
from streamtape.server.asgi import (
    Receive,
    Scope,
    Send,
    encode_headers,
    end_to_end,
    lifespan,
    read_body,
    scope_headers,
    target,
    watch_disconnect,
)
from streamtape.server.errorshape import send_error
from streamtape.server.upstream import UpstreamTransport
from streamtape.server.writer import ExchangeWriter
from streamtape.simulator.runner import abort_response
from streamtape.transport._common import CassetteLike
from streamtape.transport.httpcompat import raw_headers, timeout_errors, transport_errors
from streamtape.transport.recording import AsyncRecordingTransport, Recording

SHUTDOWN_CUT = "the proxy shut down before the upstream finished (grace period over)"


def upstream_url(upstream: str) -> httpx.URL:
    """The upstream base URL, checked: http or https, a host, no query."""
    try:
        url = httpx.URL(upstream)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ServerConfigError(f"--upstream {upstream!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ServerConfigError(
            f"--upstream {upstream!r} must be an http:// or https:// URL with a host"
        )
    if url.query:
        raise ServerConfigError(f"--upstream {upstream!r} must not have a query string")
    return url


class _ProxyRecorder(AsyncRecordingTransport):
    """The recording transport, telling the proxy about each exchange it writes."""

    def __init__(
        self, proxy: RecordingProxy, cassette: CassetteLike, transport: Any, redact: object
    ):
        super().__init__(cassette, transport, redact=redact)
        self._proxy = proxy

    def _start(self, request: Any, body: bytes) -> Recording:
        recording = super()._start(request, body)
        self._proxy._open[request] = recording
        return recording

    def _write(self, exchange: Exchange) -> None:
        self._proxy.writer.submit(exchange)  # redacted there, before it is encoded


class _Call:
    """One proxied request: its upstream request and response, and whether the client left."""

    __slots__ = ("hung_up", "over", "request", "response", "task")

    def __init__(self, request: httpx.Request, task: asyncio.Task[Any] | None) -> None:
        self.request = request
        self.task = task
        self.response: httpx.Response | None = None
        self.hung_up = False
        self.over = False

    def hang_up(self) -> None:
        """The client left: stop waiting for the upstream (unless the answer is done)."""
        if not self.over and self.task is not None:
            self.hung_up = True
            self.task.cancel()


class RecordingProxy:
    """Forwards every request to ``upstream`` and records the exchange into ``cassette``.

    ``upstream`` is a base URL (``https://api.openai.com``; a path prefix is kept).
    ``redact`` is the transports' redaction; ``timeout`` (seconds) bounds each wait for
    the upstream (connect, and every read); ``on_exchange`` is called with each written
    (redacted) exchange, ``on_error`` with each failed write (default: logged on the
    ``streamtape`` logger); both run on the writer thread. ``transport`` replaces the
    HTTP transport that talks upstream.
    """

    def __init__(
        self,
        upstream: str,
        cassette: CassetteLike,
        *,
        redact: object = None,
        timeout: float | None = 600.0,
        on_exchange: Callable[[Exchange], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        transport: Any = None,
    ) -> None:
        self.upstream = upstream_url(upstream)
        self.timeout = httpx.Timeout(timeout).as_dict()
        self.on_exchange = on_exchange
        self.writer = ExchangeWriter(self._store, on_error or _log_write_error)
        self._open: dict[httpx.Request, Recording] = {}
        self.written = 0
        inner = transport or UpstreamTransport()
        self.recorder = _ProxyRecorder(self, cassette, inner, redact)
        self.cassette = self.recorder.cassette

    @property
    def open_streams(self) -> int:
        """Exchanges in flight (not written yet)."""
        return len(self._open)

    def _store(self, exchange: Exchange) -> None:
        """Redact, then append (on the writer thread): secrets never reach the encoder."""
        redacted = self.recorder.redactor.apply(exchange)
        self.cassette.append(redacted)
        self.written += 1
        if self.on_exchange is not None:
            self.on_exchange(redacted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self.aclose)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is not None:
            await self.forward(scope, body, receive, send)

    def _request(self, scope: Scope, body: bytes) -> httpx.Request:
        base = str(self.upstream).rstrip("/")
        headers = end_to_end(scope_headers(scope), drop=frozenset({"host", "content-length"}))
        return httpx.Request(
            scope["method"],
            base + target(scope),
            headers=encode_headers(headers),
            content=body,
            extensions={"timeout": self.timeout},
        )

    async def forward(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Send the request upstream, stream the answer back, and record it."""
        call = _Call(self._request(scope, body), asyncio.current_task())
        watcher = watch_disconnect(receive, call.hang_up)
        try:
            await self._exchange(scope, call, send)
        except asyncio.CancelledError:
            if not call.hung_up:  # the server is stopping and the grace period is over
                recording = self._open.get(call.request)
                if recording is not None:
                    recording.finish(Outcome.CLIENT_CLOSED, SHUTDOWN_CUT)
                abort_response()
        finally:
            call.over = True
            watcher.cancel()
            recording = self._open.pop(call.request, None)
            if call.response is not None:
                with contextlib.suppress(Exception):
                    await call.response.aclose()  # ends the upstream read; records a hang-up
            if recording is not None:
                recording.closed()

    async def _exchange(self, scope: Scope, call: _Call, send: Send) -> None:
        try:
            call.response = response = await self.recorder.handle_async_request(call.request)
        except transport_errors() as exc:  # recorded by the transport already
            timed_out = isinstance(exc, timeout_errors())
            status, code = (504, "upstream_timeout") if timed_out else (502, "upstream_unreachable")
            message = (
                f"streamtape proxy: upstream {self.upstream} failed: {type(exc).__name__}: {exc}"
            )
            await self.writer.written()
            await send_error(send, target(scope), scope_headers(scope), status, message, code)
            return
        headers = end_to_end(raw_headers(response.headers))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": encode_headers(headers),
            }
        )
        stream = cast(AsyncIterable[bytes], response.stream)
        try:
            last = await self._relay(stream, _length(headers), send)
        except transport_errors():  # recorded by the stream; the client sees the cut too
            await self.writer.written()
            abort_response()
            return
        call.over = True
        await self.writer.written()  # the client that has it all finds it recorded
        await send({"type": "http.response.body", "body": last, "more_body": False})

    @staticmethod
    async def _relay(stream: AsyncIterable[bytes], length: int | None, send: Send) -> bytes:
        """Pass each read on as it comes, except the one that completes a sized body.

        That one is returned unsent: a client reading ``content-length`` bytes has the
        whole answer with it, so it goes out once the exchange is recorded. Every other
        read (all of a stream's) goes at once.
        """
        left = length
        held: list[bytes] = []
        async for chunk in stream:
            if held:  # the upstream sent past its content-length: pass that on too
                await send({"type": "http.response.body", "body": held.pop(), "more_body": True})
            if left is not None:
                left -= len(chunk)
                if left <= 0:
                    held.append(chunk)
                    continue
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        return held[0] if held else b""

    async def aclose(self) -> None:
        """Close the upstream connections (on the loop that opened them), write what is left."""
        await self.recorder.aclose()
        await asyncio.to_thread(self.writer.close)

    def close(self) -> None:
        """Write what is left and close the cassette; a later recording reopens it."""
        self.writer.close()
        self.cassette.close()


def _length(headers: list[tuple[str, str]]) -> int | None:
    """The body size the upstream declared, if it declared one."""
    value = first_header(headers, "content-length")
    return int(value) if value is not None and value.isdigit() else None


def _log_write_error(exc: Exception) -> None:
    logging.getLogger("streamtape").error("streamtape proxy: an exchange was not recorded: %s", exc)
