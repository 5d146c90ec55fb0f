"""A fault plan applied to one replayed answer: pure, seeded, the same for transport and server.

The replay computes a *schedule* (status, headers and the reads, each at its deadline
in ns from the request after pacing); the plan picks the faults that hit this attempt
and returns the `Reply` to send instead, with the list of faults that fired and where.
Stalls add real seconds after pacing and ``slow`` stretches the paced gaps, so a stall
trips a client's read timeout whatever the pacing.

What a stream *means* (which byte ends token n, the format's error event and error
body) is asked of a `StreamFacts`, which ``streamtape.formats.fault_facts`` builds;
nothing here knows a format. A caller (transport or server) does, per request::

    plan = FaultPlan.parse(specs, seed=0)
    active = plan.for_request(exchange=i, attempt=j)  # j: earlier attempts at this request
    early = active.early_reply(facts, request=label)  # status / drop: answer without a recording
    reply = early or active.apply(schedule, facts, request=label)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from streamtape.core.exchange import Headers, Read
from streamtape.core.fault_spec import Fault, parse_faults
from streamtape.core.faults import KEEPALIVE
from streamtape.core.sse import parse_sse

__all__ = ["ActiveFaults", "FaultPlan", "Fired", "Reply", "Schedule", "StreamFacts"]

End = Literal["recorded", "close", "reset", "drop"]
"""How the body ends: as recorded, a clean early close, a connection reset, or no headers."""

_KEEPALIVE_EVERY = 8


class StreamFacts(Protocol):
    """What a fault needs to know about the stream's format."""

    def token_end(self, body: bytes, n: int) -> int | None:
        """The offset just past the event that carries token `n` (from 1), or None."""

    def error_event(self, index: int) -> bytes:
        """The format's own mid-stream error event, as event number `index`."""

    def error_reply(self, status: int, retry_after: float | None) -> tuple[Headers, bytes]:
        """Headers and body the API answers `status` with."""


@dataclass(frozen=True)
class Schedule:
    """One answer as replay would send it: reads at deadlines (ns from the request)."""

    status: int
    headers: Headers
    headers_ns: int
    reads: tuple[Read, ...]


@dataclass(frozen=True)
class Fired:
    """A fault that acted, and where: for the test's assertion message."""

    fault: str
    exchange: int
    attempt: int
    request: str
    where: str

    def __str__(self) -> str:
        return (
            f"{self.fault} on exchange {self.exchange} (attempt {self.attempt}, "
            f"{self.request}): {self.where}"
        )


@dataclass(frozen=True)
class Reply:
    """What to send instead of the schedule: status, headers, reads, and how it ends."""

    status: int
    headers: Headers
    headers_ns: int
    reads: tuple[Read, ...]
    end: End = "recorded"
    fired: tuple[Fired, ...] = ()

    @property
    def body(self) -> bytes:
        return b"".join(r.data for r in self.reads)


@dataclass
class _Body:
    """The reads being edited, with the event boundaries of the original bytes."""

    pieces: list[Read]
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, reads: Sequence[Read]) -> _Body:
        body = cls(list(reads))
        data = b"".join(r.data for r in reads)
        for ev in parse_sse(data):
            if ev.complete:
                end = ev.end + 1 if data[ev.end - 1 : ev.end + 1] == b"\r\n" else ev.end
                body.starts.append(ev.start)
                body.ends.append(end)
        return body

    def split(self, offset: int) -> int:
        """Make `offset` a piece boundary; the index of the piece starting there."""
        return self.split_all([offset])[0]

    def split_all(self, offsets: Sequence[int]) -> list[int]:
        """Make every offset (ascending) a piece boundary in one pass; their piece indices."""
        out: list[Read] = []
        found: list[int] = []
        pending = iter(offsets)
        want = next(pending, None)
        pos = 0
        for piece in self.pieces:
            data, start = piece.data, pos
            pos += len(data)
            while want is not None and want < pos:
                if want > start:
                    out.append(Read(piece.t_ns, data[: want - start]))
                    data, start = data[want - start :], want
                found.append(len(out))
                want = next(pending, None)
            out.append(Read(piece.t_ns, data) if data is not piece.data else piece)
        while want is not None:
            found.append(len(out))
            want = next(pending, None)
        self.pieces[:] = out
        return found

    def keep_events_before(self, offset: int) -> None:
        """Forget the events that no longer fit in the first `offset` bytes."""
        kept = sum(1 for end in self.ends if end <= offset)
        del self.starts[kept:], self.ends[kept:]

    def boundary(self, k: int) -> int | None:
        """The offset before event `k` (after k events), or None past the last event."""
        if k == 0:
            return 0
        return self.ends[k - 1] if k <= len(self.ends) else None


class ActiveFaults:
    """The faults of a plan that hit one attempt, ready to apply."""

    def __init__(
        self, faults: Sequence[Fault], exchange: int, attempt: int, rng: random.Random
    ) -> None:
        self.faults = tuple(faults)
        self.exchange = exchange
        self.attempt = attempt
        self._rng = rng

    def __bool__(self) -> bool:
        return bool(self.faults)

    def _fired(self, fault: Fault, request: str, where: str) -> Fired:
        return Fired(str(fault), self.exchange, self.attempt, request, where)

    def early_reply(self, facts: StreamFacts, *, request: str = "") -> Reply | None:
        """The answer a status or drop fault gives in place of the recording, if one hits."""
        for fault in self.faults:
            if fault.kind == "drop":
                fired = self._fired(fault, request, "connection closed before the headers")
                return Reply(0, [], 0, (), "drop", (fired,))
            if fault.kind == "status":
                headers, body = facts.error_reply(fault.status, fault.retry_after)
                fired = self._fired(fault, request, f"answered HTTP {fault.status}")
                return Reply(fault.status, headers, 0, (Read(0, body),), "close", (fired,))
        return None

    def apply(self, schedule: Schedule, facts: StreamFacts, *, request: str = "") -> Reply:
        """The schedule with every stream fault of this attempt applied, in a fixed order."""
        stream = [f for f in self.faults if not f.preempts]
        if not stream:
            return Reply(schedule.status, schedule.headers, schedule.headers_ns, schedule.reads)
        body = _Body.of(schedule.reads)
        fired: list[Fired] = []
        end: End = "recorded"
        order = ("corrupt", "cut", "error-event", "stall", "slow", "keepalive", "crlf")
        for kind in order:
            for fault in (f for f in stream if f.kind == kind):
                where, ending = _APPLY[kind](self, fault, body, facts)
                if where is not None:
                    fired.append(self._fired(fault, request, where))
                    end = ending or end
        return Reply(
            schedule.status,
            schedule.headers,
            schedule.headers_ns,
            tuple(body.pieces),
            end,
            tuple(fired),
        )

    # -- the stream faults: each returns (where it fired or None, how the body ends) --

    def _corrupt(
        self, fault: Fault, body: _Body, facts: StreamFacts
    ) -> tuple[str | None, End | None]:
        k = fault.event or 0
        if k >= len(body.starts):
            return None, None
        start, end = body.starts[k], body.ends[k]
        first, last = body.split(start), body.split(end)
        chunk = b"".join(p.data for p in body.pieces[first:last])
        at = body.pieces[first].t_ns
        if fault.truncate:
            keep = self._rng.randrange(1, max(2, len(chunk.rstrip(b"\r\n"))))
            body.pieces[first:] = [Read(at, chunk[:keep])]
            body.keep_events_before(start)
            return f"event {k} truncated after {keep} of its {len(chunk)} bytes", "close"
        line_end = chunk.rstrip(b"\r\n")
        tail = chunk[len(line_end) :]
        head_len = line_end.find(b"data:") + 5 if b"data:" in line_end else 0
        payload_len = len(line_end) - head_len
        drop = self._rng.randrange(1, max(2, payload_len // 2 + 1))
        broken = line_end[: len(line_end) - drop] + tail
        body.pieces[first:last] = [Read(at, broken)]
        body.ends[k:] = [e - drop for e in body.ends[k:]]
        body.starts[k + 1 :] = [s - drop for s in body.starts[k + 1 :]]
        return f"event {k} (bytes {start}-{end}) lost its last {drop} byte(s) of JSON", None

    def _cut_offset(self, fault: Fault, body: _Body, facts: StreamFacts) -> tuple[int | None, str]:
        if fault.byte is not None:
            return fault.byte, f"at byte {fault.byte}"
        if fault.token is not None:
            data = b"".join(p.data for p in body.pieces)
            return facts.token_end(data, fault.token), f"after token {fault.token}"
        k = fault.event or 0
        return body.boundary(k), f"before event {k}"

    def _cut(self, fault: Fault, body: _Body, facts: StreamFacts) -> tuple[str | None, End | None]:
        offset, what = self._cut_offset(fault, body, facts)
        total = sum(len(p.data) for p in body.pieces)
        if offset is None or offset >= total:
            return None, None
        index = body.split(offset)
        t = body.pieces[index].t_ns if index < len(body.pieces) else 0
        del body.pieces[index:]
        body.keep_events_before(offset)
        how: End = "reset" if fault.reset else "close"
        closing = "connection reset" if fault.reset else "clean close"
        return f"cut {what}: {offset} bytes sent, then {closing} at {t / 1e9:.3f}s", how

    def _error_event(
        self, fault: Fault, body: _Body, facts: StreamFacts
    ) -> tuple[str | None, End | None]:
        k = fault.event or 0
        offset = body.boundary(k)
        if offset is None:
            return None, None
        index = body.split(offset)
        after = body.pieces[index - 1].t_ns if index else 0
        at = body.pieces[index].t_ns if index < len(body.pieces) else after
        del body.pieces[index:]
        error = facts.error_event(k)
        body.pieces.append(Read(max(at, after), error))
        body.keep_events_before(offset)
        body.starts.append(offset)
        body.ends.append(offset + len(error))
        return f"error event sent as event {k} (after {offset} bytes), then clean close", "close"

    def _stall(
        self, fault: Fault, body: _Body, facts: StreamFacts
    ) -> tuple[str | None, End | None]:
        k = fault.event or 0
        if k >= len(body.starts):
            return None, None
        index = body.split(body.starts[k])
        extra = round(fault.seconds * 1e9)
        body.pieces[index:] = [Read(p.t_ns + extra, p.data) for p in body.pieces[index:]]
        return f"stalled {fault.seconds:g}s before event {k}", None

    def _slow(self, fault: Fault, body: _Body, facts: StreamFacts) -> tuple[str | None, End | None]:
        a, b = fault.events or (0, 0)
        if a >= len(body.starts):
            return None, None
        first = body.split(body.starts[a])
        last = body.split(body.ends[min(b, len(body.ends) - 1)])
        shift = 0
        prev = body.pieces[first - 1].t_ns if first else 0
        out = body.pieces[:first]
        for i, piece in enumerate(body.pieces[first:], start=first):
            gap = piece.t_ns - prev
            prev = piece.t_ns
            if i < last:
                shift += round(gap * (fault.factor - 1.0))
            out.append(Read(max(0, piece.t_ns + shift), piece.data))
        body.pieces[:] = out
        return f"events {a}-{b} paced {fault.factor:g}x slower ({shift / 1e9:+.3f}s)", None

    def _keepalive(
        self, fault: Fault, body: _Body, facts: StreamFacts
    ) -> tuple[str | None, End | None]:
        total = sum(len(p.data) for p in body.pieces)
        spots = [s for i, s in enumerate(body.starts) if i % _KEEPALIVE_EVERY == 0 and s < total]
        for index in reversed(body.split_all(spots)):
            t = body.pieces[index].t_ns
            body.pieces.insert(index, Read(t, KEEPALIVE))
        return (f"{len(spots)} keep-alive comment(s)", None) if spots else (None, None)

    def _crlf(self, fault: Fault, body: _Body, facts: StreamFacts) -> tuple[str | None, End | None]:
        body.pieces[:] = [Read(p.t_ns, p.data.replace(b"\n", b"\r\n")) for p in body.pieces]
        return "every LF sent as CRLF", None


_APPLY = {
    "corrupt": ActiveFaults._corrupt,
    "cut": ActiveFaults._cut,
    "error-event": ActiveFaults._error_event,
    "stall": ActiveFaults._stall,
    "slow": ActiveFaults._slow,
    "keepalive": ActiveFaults._keepalive,
    "crlf": ActiveFaults._crlf,
}


class FaultPlan:
    """Faults parsed once, then chosen per attempt; ``seed`` fixes every random choice."""

    def __init__(self, faults: Iterable[Fault] = (), *, seed: int = 0) -> None:
        self.faults = tuple(faults)
        self.seed = seed

    @classmethod
    def parse(
        cls, specs: str | Fault | Iterable[str | Fault] | FaultPlan | None, *, seed: int = 0
    ) -> FaultPlan:
        """A plan from specs (see `streamtape.core.fault_spec.GRAMMAR`), or a plan as is."""
        if isinstance(specs, FaultPlan):
            return specs
        return cls(parse_faults(specs), seed=seed)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def __repr__(self) -> str:
        return f"FaultPlan({[str(f) for f in self.faults]!r}, seed={self.seed})"

    def for_request(self, *, exchange: int, attempt: int) -> ActiveFaults:
        """The faults that hit answer `exchange` (from 0), the `attempt`-th try at its request."""
        rng = random.Random(f"{self.seed}:{exchange}:{attempt}")
        hit = [f for f in self.faults if f.hits(exchange, attempt)]
        return ActiveFaults(hit, exchange, attempt, rng)
