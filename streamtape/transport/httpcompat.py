"""Speak both httpx and httpx2 with one set of classes.

The openai SDK ≥ 3 builds on httpx2, whose Request/Response/stream classes are
distinct from httpx's; an httpx transport inside an httpx2 client fails an
``isinstance`` assertion. Our transports and streams subclass the base classes of
both libraries (httpx2 only when installed) and answer every request in the
library it came from. Nothing here knows about cassettes.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import httpx

from streamtape.core.exchange import Headers, RecordedRequest

httpx2: types.ModuleType | None
try:  # httpx2 needs Python >= 3.11; it is optional.
    import httpx2
except ImportError:  # pragma: no cover - depends on the environment
    httpx2 = None

HTTP_LIBS: tuple[types.ModuleType, ...] = (httpx,) if httpx2 is None else (httpx, httpx2)
"""The HTTP libraries whose clients our transports serve."""

if TYPE_CHECKING:
    # For the type checker the transports are httpx transports; at run time they
    # also subclass httpx2's base classes when it is installed.
    SyncTransportBase = httpx.BaseTransport
    AsyncTransportBase = httpx.AsyncBaseTransport
    SyncStreamBase = httpx.SyncByteStream
    AsyncStreamBase = httpx.AsyncByteStream
else:

    def _bases(name: str) -> type:
        parents = tuple(getattr(lib, name) for lib in HTTP_LIBS)
        return parents[0] if len(parents) == 1 else type(f"_Both{name}", parents, {})

    SyncTransportBase = _bases("BaseTransport")
    AsyncTransportBase = _bases("AsyncBaseTransport")
    SyncStreamBase = _bases("SyncByteStream")
    AsyncStreamBase = _bases("AsyncByteStream")


def library_of(obj: object) -> types.ModuleType:
    """The HTTP library (httpx or httpx2) whose Request or transport ``obj`` is."""
    if httpx2 is not None and isinstance(
        obj, (httpx2.Request, httpx2.BaseTransport, httpx2.AsyncBaseTransport, httpx2.Response)
    ):
        both = isinstance(obj, (httpx.BaseTransport, httpx.AsyncBaseTransport))
        if not both:
            return httpx2
    return httpx


def raw_headers(headers: Any) -> Headers:
    """Header pairs with their original case, as text (latin-1, as HTTP/1.1 allows)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]


def recorded_request(request: Any, body: bytes) -> RecordedRequest:
    """What we keep of an httpx/httpx2 request (before redaction): the one place it is built."""
    return RecordedRequest(
        method=request.method, url=str(request.url), headers=raw_headers(request.headers), body=body
    )


def convert_request(request: Any, lib: types.ModuleType, body: bytes) -> Any:
    """The same request as an object of ``lib``; ``body`` must already be read."""
    if library_of(request) is lib:
        return request
    return lib.Request(
        request.method,
        str(request.url),
        headers=request.headers.raw,
        content=body,
        extensions=dict(request.extensions),
    )


def make_response(
    lib: types.ModuleType,
    status: int,
    headers: Headers,
    stream: object,
    http_version: str = "HTTP/1.1",
) -> Any:
    """A transport-level response of ``lib`` whose body is ``stream`` (raw, still encoded)."""
    return lib.Response(
        status,
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        stream=stream,
        extensions={"http_version": http_version.encode("ascii")},
    )


def timeout_errors() -> tuple[type[BaseException], ...]:
    """Every library's timeout exception class."""
    return tuple(lib.TimeoutException for lib in HTTP_LIBS)


def transport_errors() -> tuple[type[BaseException], ...]:
    """Every library's transport-level exception class (connection, protocol, timeout)."""
    return tuple(lib.TransportError for lib in HTTP_LIBS)
