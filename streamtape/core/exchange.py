"""The recorded exchange: one request and the exact bytes and timing of its answer.

These Structs are the in-memory truth that every other module shares: the cassette
stores them, transports produce and consume them, the decoder reads their bytes.
They carry no behaviour beyond small derived views.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

Headers = list[tuple[str, str]]


class Outcome(str, enum.Enum):
    """How the response body ended."""

    COMPLETE = "complete"
    """The upstream sent the whole body."""
    CLIENT_CLOSED = "client_closed"
    """The caller closed the response before the body ended."""
    UPSTREAM_ERROR = "upstream_error"
    """The connection or the upstream failed mid-body (see ``Exchange.error``)."""
    TIMEOUT = "timeout"
    """A read timed out."""


class Read(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One network read: its offset from the moment the request was sent, and its bytes."""

    t_ns: int
    data: bytes


class RecordedRequest(msgspec.Struct, kw_only=True, gc=False):
    """The request as sent, after redaction."""

    method: str
    url: str
    headers: Headers = msgspec.field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return first_header(self.headers, name)


class Exchange(msgspec.Struct, kw_only=True, gc=False):
    """One request and its response, with the timing of every read.

    All ``*_ns`` fields except ``started_at_ns`` are offsets in nanoseconds from the
    moment the request was handed to the network (monotonic clock).

    ``gc=False`` (here and on the request): they hold text, bytes and lists of those,
    never a cycle, so the collector need not track them. A replay server keeps
    thousands; tracked, each full collection walked them all (18-30 ms pauses).
    """

    request: RecordedRequest
    status: int
    response_headers: Headers = msgspec.field(default_factory=list)
    reads: list[Read] = msgspec.field(default_factory=list)
    started_at_ns: int = 0
    """Wall-clock time (``time.time_ns()``) when the request was sent; for display and export."""
    headers_ns: int = 0
    """When the response headers arrived."""
    end_ns: int = 0
    """When the body ended (or the exchange was cut short)."""
    outcome: Outcome = Outcome.COMPLETE
    error: str | None = None
    """What went wrong, for ``UPSTREAM_ERROR`` and ``TIMEOUT``."""
    http_version: str = "HTTP/1.1"
    redacted: list[str] = msgspec.field(default_factory=list)
    """Names of what redaction removed or replaced (e.g. ``request.header:authorization``)."""

    @property
    def body(self) -> bytes:
        """The response body exactly as the upstream sent it (still content-encoded)."""
        return b"".join(r.data for r in self.reads)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def url(self) -> str:
        return self.request.url

    def response_header(self, name: str) -> str | None:
        """The first value of response header ``name`` (case-insensitive), or None."""
        return first_header(self.response_headers, name)

    @property
    def is_event_stream(self) -> bool:
        """Whether the response is a server-sent-event stream."""
        ctype = self.response_header("content-type") or ""
        return ctype.split(";", 1)[0].strip().lower() == "text/event-stream"


def first_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of ``name`` in a header list, compared case-insensitively."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None
