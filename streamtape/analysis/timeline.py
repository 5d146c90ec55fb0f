"""When each event of a stream arrived: the raw material of sparklines and SVG timelines."""

from __future__ import annotations

import itertools

import msgspec

from streamtape.core.exchange import Exchange
from streamtape.core.sse import SSEEvent, parse_sse
from streamtape.errors import SSEError

__all__ = ["Timeline", "events_of", "timeline_of"]


class Timeline(msgspec.Struct, kw_only=True):
    """Arrival times (ms from the request) of the headers, each read and each SSE event."""

    headers_ms: float
    end_ms: float
    reads_ms: list[float]
    read_bytes: list[int]
    events_ms: list[float]
    """Dispatch time of each SSE event with data; empty for a body that is not a stream."""

    @property
    def gaps_ms(self) -> list[float]:
        """Gaps between consecutive events (the inter-token latencies)."""
        times = self.events_ms
        return [b - a for a, b in itertools.pairwise(times)]


def events_of(exchange: Exchange) -> list[SSEEvent]:
    """The SSE events of an event-stream body with their arrival times; [] otherwise."""
    if not exchange.is_event_stream or not exchange.reads:
        return []
    try:
        return parse_sse(exchange.reads)
    except SSEError:
        return []


def timeline_of(exchange: Exchange) -> Timeline:
    events = events_of(exchange)
    return Timeline(
        headers_ms=exchange.headers_ns / 1e6,
        end_ms=exchange.end_ns / 1e6,
        reads_ms=[r.t_ns / 1e6 for r in exchange.reads],
        read_bytes=[len(r.data) for r in exchange.reads],
        events_ms=[e.t_end_ns / 1e6 for e in events if e.t_end_ns is not None and e.data],
    )
