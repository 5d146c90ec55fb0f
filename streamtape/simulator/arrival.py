"""Stamp each request with the moment it reached the server, for answers paced from then.

A recording counts every read from the moment its request was sent, so a replay must
count from the moment the request reached the server. The ASGI app is called later
than that: after the loop has accepted the connection, read it, and run every task
ahead of it, which with hundreds of streams open is several milliseconds. Pacing from
the call would shift every read of a late stream by that much; pacing from the stamp
absorbs the queueing in the first read's wait.

The stamp is when the request's first bytes were read, except for the first request
of a connection read within ``FIRST_REQUEST_NS`` of its accept: clients send that one
as they connect, so the accept is the closer time (the read only waited for the loop).
The runner serves with these protocol classes; the stamp (``time.perf_counter_ns``)
travels in the scope's ``extensions``, where any other server simply has none.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

RECEIVED = "streamtape.received"
"""The scope extension: ``{"ns": time.perf_counter_ns() when the request arrived}``."""

FIRST_REQUEST_NS = 50_000_000
"""A connection's first request read this soon after its accept was sent as it connected."""


class _StampsArrival:
    """Mixin for a uvicorn HTTP protocol: a request begun by this read gets its arrival."""

    scope: Any
    _accepted_ns: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._accepted_ns = time.perf_counter_ns()  # built as the connection is accepted
        super().__init__(*args, **kwargs)

    def data_received(self, data: bytes) -> None:
        received = time.perf_counter_ns()
        accepted, self._accepted_ns = self._accepted_ns, None
        if accepted is not None and received - accepted < FIRST_REQUEST_NS:
            received = accepted
        before = getattr(self, "scope", None)
        super().data_received(data)  # type: ignore[misc]
        scope = getattr(self, "scope", None)
        if scope is not None and scope is not before:
            scope.setdefault("extensions", {})[RECEIVED] = {"ns": received}


class StampedH11Protocol(_StampsArrival, H11Protocol):
    """uvicorn's h11 protocol, stamping request arrival."""


if HttpToolsProtocol is not None:

    class StampedHttpToolsProtocol(_StampsArrival, HttpToolsProtocol):
        """uvicorn's httptools protocol, stamping request arrival."""

    _FASTEST: type[Any] = StampedHttpToolsProtocol
else:
    _FASTEST = StampedH11Protocol


def stamped_protocol(name: str) -> type[Any]:
    """The uvicorn protocol class for ``name`` (h11, httptools, auto), stamping arrival.

    ``auto`` is httptools when installed (less CPU per request and per chunk), else h11.
    """
    if name == "h11":
        return StampedH11Protocol
    if name == "httptools" and HttpToolsProtocol is None:
        raise ImportError("the httptools HTTP protocol needs the httptools package")
    if name in ("auto", "httptools"):
        return _FASTEST
    raise ValueError(f"unknown HTTP protocol {name!r}: expected h11, httptools or auto")


def received_ns(scope: Mapping[str, Any]) -> int | None:
    """When the server read this request (``perf_counter_ns``), or None if not stamped."""
    stamp = scope.get("extensions", {}).get(RECEIVED)
    return stamp.get("ns") if isinstance(stamp, dict) else None
