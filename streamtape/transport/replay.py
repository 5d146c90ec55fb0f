"""One httpx/httpx2 transport that replays recorded exchanges, sync and async.

Replay matches the request to a recording and releases each read at its absolute
deadline on one monotonic clock. The sync and async streams are thin loops over one
core (``_Replay``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Outcome
from streamtape.core.fault_plan import FaultPlan, Fired, Reply
from streamtape.core.match import Matcher
from streamtape.core.pacing import Clock, Pacing, asleep_until, loop_clock, sleep_until
from streamtape.core.redact import Redactor
from streamtape.transport._common import CassetteLike, cassette_to_read
from streamtape.transport.faulting import FaultedAnswers, as_reply, replay_schedule
from streamtape.transport.httpcompat import (
    AsyncStreamBase,
    AsyncTransportBase,
    SyncStreamBase,
    SyncTransportBase,
    library_of,
    make_response,
    recorded_request,
)

# --------------------------------------------------------------------------- replay


class _Replay:
    """One answer being replayed: its absolute deadlines and how its body must end."""

    def __init__(self, exchange: Exchange | None, reply: Reply, t0: int, request: Any) -> None:
        self.exchange = exchange
        self.reply = reply
        self.request = request
        self.lib = library_of(request)
        self.headers_at = t0 + reply.headers_ns
        self.reads = [r.data for r in reply.reads]
        self.read_at = [t0 + r.t_ns for r in reply.reads]
        timeout = (getattr(request, "extensions", None) or {}).get("timeout") or {}
        read = timeout.get("read")
        self.read_timeout_ns: int | None = None if read is None else round(float(read) * 1e9)

    def give_up_at(self, deadline: int, now: int) -> int | None:
        """When the client's read timeout fires first, if the wait to `deadline` exceeds it.

        A real socket read would time out there, so replay does too (a ``stall`` fault
        longer than the timeout must trip it).
        """
        limit = self.read_timeout_ns
        if limit is None or deadline - now <= limit:
            return None
        return now + limit

    def timed_out(self) -> Exception:
        error: Exception = self.lib.ReadTimeout(
            f"The read operation timed out ({_fault_note(self.reply)})", request=self.request
        )
        return error

    @classmethod
    def recorded(cls, exchange: Exchange, pacing: Pacing, t0: int, request: Any) -> _Replay:
        return cls(exchange, as_reply(replay_schedule(exchange, pacing)), t0, request)

    def failure(self) -> Exception | None:
        """The error the body ends with: a fault's, or the upstream's when recorded."""
        if self.reply.end == "reset":
            reset: Exception = self.lib.ReadError(
                f"[Errno 104] Connection reset by peer ({_fault_note(self.reply)})",
                request=self.request,
            )
            return reset
        exchange = self.exchange
        if self.reply.end != "recorded" or exchange is None:
            return None
        if exchange.outcome is Outcome.TIMEOUT:
            cls = self.lib.ReadTimeout if exchange.status else self.lib.ConnectTimeout
        elif exchange.outcome is Outcome.UPSTREAM_ERROR:
            cls = self.lib.RemoteProtocolError if exchange.status else self.lib.ConnectError
        else:
            return None
        message = f"{exchange.error or 'upstream failed'} (replayed from the cassette)"
        error: Exception = cls(message, request=self.request)
        return error

    def response(self, stream: object) -> Any:
        reply = self.reply
        if reply.end == "drop":
            raise self.lib.RemoteProtocolError(
                f"Server disconnected without sending a response. ({_fault_note(reply)})",
                request=self.request,
            )
        if reply.status == 0:
            raise self.failure() or self.lib.ConnectError(
                "no response was recorded", request=self.request
            )
        version = self.exchange.http_version if self.exchange else "HTTP/1.1"
        return make_response(self.lib, reply.status, reply.headers, stream, version)


def _fault_note(reply: Reply) -> str:
    return "; ".join(str(f) for f in reply.fired) or "replayed"


def wait_sync(replay: _Replay, deadline: int, clock: Clock) -> None:
    """Sleep until `deadline`, or raise the client's read timeout if it comes first."""
    give_up = replay.give_up_at(deadline, clock())
    if give_up is not None:
        sleep_until(give_up, clock=clock)
        raise replay.timed_out()
    sleep_until(deadline, clock=clock)


async def wait_async(replay: _Replay, deadline: int, clock: Clock) -> None:
    """The async twin of `wait_sync`."""
    give_up = replay.give_up_at(deadline, clock())
    if give_up is not None:
        await asleep_until(give_up, clock=clock)
        raise replay.timed_out()
    await asleep_until(deadline, clock=clock)


class _ReplayStream(SyncStreamBase):
    def __init__(self, replay: _Replay, clock: Clock) -> None:
        self._replay = replay
        self._clock = clock

    def __iter__(self) -> Iterator[bytes]:
        replay = self._replay
        for data, deadline in zip(replay.reads, replay.read_at, strict=True):
            wait_sync(replay, deadline, self._clock)
            yield data
        error = replay.failure()
        if error is not None:
            raise error


class _AsyncReplayStream(AsyncStreamBase):
    def __init__(self, replay: _Replay, clock: Clock) -> None:
        self._replay = replay
        self._clock = clock

    async def __aiter__(self) -> AsyncIterator[bytes]:
        replay = self._replay
        for data, deadline in zip(replay.reads, replay.read_at, strict=True):
            await wait_async(replay, deadline, self._clock)
            yield data
        error = replay.failure()
        if error is not None:
            raise error


class ReplayTransport(SyncTransportBase, AsyncTransportBase):
    """Answers requests from a cassette, with no network, at the recorded pacing.

    Works in sync and async clients of httpx and httpx2 alike. ``pacing`` is
    ``"original"``, ``"instant"`` or a speed factor (``2.0`` = twice as fast);
    ``max_gap`` caps any single recorded gap (seconds). Matching options
    (``ignore_fields``, ``ignore_query``, ``match_on``, ``allow_playback_repeats``)
    go to :class:`streamtape.match.Matcher`. Sent requests are redacted as the
    recorder would (``redact``) before matching, so secrets never need to match.

    ``clock`` (ns) defaults to ``time.perf_counter_ns`` for sync clients and to the
    running event loop's clock for async ones, so a loop with virtual time
    (``looptime``) sees the recorded gaps without waiting for them.

    ``faults`` are fault specs (``"cut:token=5"``, ``"status:429:attempts=2"``; see
    ``streamtape.core.fault_spec.GRAMMAR``), `Fault` objects or a `FaultPlan`;
    ``seed`` fixes their random choices. ``fired`` lists every fault that acted, and
    where, for assertion messages.
    """

    def __init__(
        self,
        cassette: CassetteLike | Iterable[Exchange],
        pacing: str | float | Pacing = "original",
        *,
        max_gap: float | None = None,
        redact: object = None,
        clock: Clock | None = None,
        faults: Any = None,
        seed: int = 0,
        **match_options: Any,
    ) -> None:
        if isinstance(cassette, (Cassette, str, os.PathLike)):
            exchanges: Iterable[Exchange] = cassette_to_read(cassette).exchanges()
        else:
            exchanges = cassette
        self.pacing = Pacing.parse(pacing)
        if max_gap is not None:
            self.pacing = dataclasses.replace(self.pacing, max_gap_s=max_gap)
        self.matcher = Matcher(exchanges, **match_options)
        self.redactor = Redactor.coerce(redact)
        self._clock = clock
        self.faults = FaultedAnswers(FaultPlan.parse(faults, seed=seed))

    @property
    def fired(self) -> list[Fired]:
        """Every fault that acted so far, in order, each saying where."""
        return self.faults.fired()

    def _begin(self, request: Any, body: bytes, t0: int) -> _Replay:
        sent, _ = self.redactor.redact_request(recorded_request(request, body))
        args = (sent.method, sent.url, sent.headers, sent.body)
        if not self.faults.plan:
            return _Replay.recorded(self.matcher.match(*args), self.pacing, t0, request)
        active = self.faults.begin(self.matcher.key(*args))
        label = f"{sent.method} {urlsplit(sent.url).path}"
        early = self.faults.early(active, sent.url, label)
        if early is not None:
            return _Replay(None, early, t0, request)
        exchange = self.matcher.match(*args)
        reply = self.faults.apply(active, exchange, replay_schedule(exchange, self.pacing), label)
        return _Replay(exchange, reply, t0, request)

    def handle_request(self, request: httpx.Request) -> Any:
        clock = self._clock or time.perf_counter_ns
        replay = self._begin(request, request.read(), clock())
        wait_sync(replay, replay.headers_at, clock)
        return replay.response(_ReplayStream(replay, clock))

    async def handle_async_request(self, request: httpx.Request) -> Any:
        clock = self._clock or loop_clock()
        replay = self._begin(request, await request.aread(), clock())
        await wait_async(replay, replay.headers_at, clock)
        return replay.response(_AsyncReplayStream(replay, clock))
