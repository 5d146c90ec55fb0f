"""httpx/httpx2 transports that record exchanges into a cassette.

Recording tees every network read to the caller at once (no buffering) and keeps
``(t_ns, bytes)``; the exchange is redacted in memory and written when the body
ends, however it ends. The sync and async variants are thin loops over one core
(``Recording``), which the recording proxy drives too.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx

from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest, first_header
from streamtape.core.pacing import Clock
from streamtape.core.redact import Redactor
from streamtape.formats import stream_finished
from streamtape.transport._common import CassetteLike, cassette_to_write
from streamtape.transport.httpcompat import (
    AsyncStreamBase,
    AsyncTransportBase,
    SyncStreamBase,
    SyncTransportBase,
    convert_request,
    library_of,
    make_response,
    raw_headers,
    recorded_request,
    timeout_errors,
)

# --------------------------------------------------------------------------- record


class Recording:
    """One exchange while it happens: collects reads with their offsets, writes once.

    The response stream a recorder returns carries it as ``.recording``, so a caller
    that cuts the exchange short (the proxy at shutdown) can say why with ``finish``.
    """

    __slots__ = (
        "_clock",
        "_reads",
        "_sink",
        "headers_ns",
        "http_version",
        "request",
        "response_headers",
        "started_at_ns",
        "status",
        "t0",
        "written",
    )

    def __init__(
        self, request: RecordedRequest, sink: Callable[[Exchange], None], clock: Clock
    ) -> None:
        self.request = request
        self._sink = sink
        self._clock = clock
        self._reads: list[Read] = []
        self.status = 0
        self.response_headers: list[tuple[str, str]] = []
        self.http_version = "HTTP/1.1"
        self.headers_ns = 0
        self.written = False
        self.started_at_ns = time.time_ns()
        self.t0 = clock()

    def headers(self, response: Any) -> None:
        self.headers_ns = self._clock() - self.t0
        self.status = response.status_code
        self.response_headers = raw_headers(response.headers)
        version = response.extensions.get("http_version", b"HTTP/1.1")
        self.http_version = version.decode("ascii") if isinstance(version, bytes) else "HTTP/1.1"

    def read(self, data: bytes) -> None:
        self._reads.append(Read(self._clock() - self.t0, data))

    def closed(self) -> None:
        """The caller closed the body: complete if everything the upstream meant was read.

        SDKs stop reading at their stream's last event (``data: [DONE]``,
        ``message_stop``, ``response.completed``) and close; the upstream had sent its
        whole answer by then, so that counts as complete (the stream format says so),
        as does a body whose ``content-length`` was fully read. Anything else is a hang-up.
        """
        if self.written:
            return
        body = b"".join(r.data for r in self._reads)
        length = first_header(self.response_headers, "content-length")
        done = (length is not None and length == str(len(body))) or stream_finished(body)
        self.finish(Outcome.COMPLETE if done else Outcome.CLIENT_CLOSED)

    def failed(self, exc: BaseException) -> None:
        """The upstream failed: record what arrived and why, then let the error go on."""
        outcome = Outcome.TIMEOUT if isinstance(exc, timeout_errors()) else Outcome.UPSTREAM_ERROR
        self.finish(outcome, f"{type(exc).__name__}: {exc}")

    def finish(self, outcome: Outcome, error: str | None = None) -> None:
        """Write the exchange; later calls do nothing, so every exit path may call it."""
        if self.written:
            return
        self.written = True
        self._sink(
            Exchange(
                request=self.request,
                status=self.status,
                response_headers=self.response_headers,
                reads=self._reads,
                started_at_ns=self.started_at_ns,
                headers_ns=self.headers_ns,
                end_ns=self._clock() - self.t0,
                outcome=outcome,
                error=error,
                http_version=self.http_version,
            )
        )


class _RecordingStream(SyncStreamBase):
    """Hands each upstream read to the caller as it arrives and tees it into the recording."""

    def __init__(self, inner: Iterable[bytes], recording: Recording) -> None:
        self._inner = inner
        self.recording = recording

    def __iter__(self) -> Iterator[bytes]:
        recording = self.recording
        try:
            for chunk in self._inner:
                recording.read(chunk)
                yield chunk
        except Exception as exc:
            recording.failed(exc)
            raise
        recording.finish(Outcome.COMPLETE)

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self.recording.closed()


class _AsyncRecordingStream(AsyncStreamBase):
    """The async twin of ``_RecordingStream``."""

    def __init__(self, inner: Any, recording: Recording) -> None:
        self._inner = inner
        self.recording = recording

    async def __aiter__(self) -> AsyncIterator[bytes]:
        recording = self.recording
        try:
            async for chunk in self._inner:
                recording.read(chunk)
                yield chunk
        except Exception as exc:
            recording.failed(exc)
            raise
        recording.finish(Outcome.COMPLETE)

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self.recording.closed()


class _RecorderBase:
    """What the sync and async recorders share: the cassette, redaction, the inner transport."""

    def __init__(
        self, cassette: CassetteLike, transport: Any, redact: object, clock: Clock
    ) -> None:
        self.redactor = Redactor.coerce(redact)
        self.cassette = cassette_to_write(cassette)
        self._inner = transport
        self._defaults: dict[types.ModuleType, Any] = {}
        self._defaults_lock = threading.Lock()
        self._clock = clock

    def _write(self, exchange: Exchange) -> None:
        self.cassette.append(self.redactor.apply(exchange))

    def _start(self, request: Any, body: bytes) -> Recording:
        return Recording(recorded_request(request, body), self._write, self._clock)

    def _route(self, request: Any, body: bytes, default: str) -> tuple[Any, Any]:
        """The inner transport to use and the request in that transport's library."""
        lib = library_of(request)
        inner = self._inner
        if inner is None:
            inner = self._defaults.get(lib)
            if inner is None:
                with self._defaults_lock:  # many threads may send their first request at once
                    inner = self._defaults.get(lib) or getattr(lib, default)()
                    self._defaults[lib] = inner
            return inner, request
        if isinstance(inner, (lib.BaseTransport, lib.AsyncBaseTransport)):
            return inner, request
        return inner, convert_request(request, library_of(inner), body)

    def _respond(self, request: Any, response: Any, recording: Recording, tee: type[Any]) -> Any:
        """The caller's response: the upstream's status and headers, its body teed by ``tee``."""
        recording.headers(response)
        return make_response(
            library_of(request),
            response.status_code,
            recording.response_headers,
            tee(response.stream, recording),
            recording.http_version,
        )

    def _closables(self) -> list[Any]:
        return [*self._defaults.values(), *([self._inner] if self._inner is not None else [])]


class RecordingTransport(_RecorderBase, SyncTransportBase):
    """An httpx/httpx2 transport that records every exchange into ``cassette``.

    ``transport`` is the transport that really talks to the upstream (default: the
    HTTP transport of the client's library). ``redact`` adds to or replaces the
    default redaction (see :class:`streamtape.redact.Redactor`); secrets are removed
    before anything is encoded.
    """

    def __init__(
        self,
        cassette: CassetteLike,
        transport: Any = None,
        *,
        redact: object = None,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        super().__init__(cassette, transport, redact, clock)

    def handle_request(self, request: httpx.Request) -> Any:
        body = request.read()
        inner, sent = self._route(request, body, "HTTPTransport")
        recording = self._start(request, body)
        try:
            response = inner.handle_request(sent)
        except Exception as exc:
            recording.failed(exc)
            raise
        return self._respond(request, response, recording, _RecordingStream)

    def close(self) -> None:
        for transport in self._closables():
            transport.close()


class AsyncRecordingTransport(_RecorderBase, AsyncTransportBase):
    """The asyncio twin of :class:`RecordingTransport`."""

    def __init__(
        self,
        cassette: CassetteLike,
        transport: Any = None,
        *,
        redact: object = None,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        super().__init__(cassette, transport, redact, clock)

    async def handle_async_request(self, request: httpx.Request) -> Any:
        body = await request.aread()
        inner, sent = self._route(request, body, "AsyncHTTPTransport")
        recording = self._start(request, body)
        try:
            response = await inner.handle_async_request(sent)
        except Exception as exc:
            recording.failed(exc)
            raise
        return self._respond(request, response, recording, _AsyncRecordingStream)

    async def aclose(self) -> None:
        for transport in self._closables():
            await transport.aclose()
