"""The replay's fault bookkeeping: which answer and attempt this is, and what fired.

One object per transport (and per replay server), thread-safe, so that
``status:429:attempts=2`` counts the attempts at each distinct request (by the
matcher's key) and ``exchange=K`` counts every answer given, faulted or not.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from streamtape.core.exchange import Exchange, Read
from streamtape.core.fault_plan import ActiveFaults, FaultPlan, Fired, Reply, Schedule
from streamtape.core.pacing import Pacing, schedule
from streamtape.formats.fault_facts import fault_facts

__all__ = ["FaultedAnswers", "as_reply", "replay_schedule"]


def replay_schedule(exchange: Exchange, pacing: Pacing) -> Schedule:
    """The recorded answer with its paced deadlines: what a fault plan transforms."""
    deadlines = schedule(exchange, pacing)
    reads = tuple(Read(t, r.data) for t, r in zip(deadlines[1:], exchange.reads, strict=True))
    return Schedule(exchange.status, exchange.response_headers, deadlines[0], reads)


def as_reply(planned: Schedule) -> Reply:
    """A schedule sent untouched."""
    return Reply(planned.status, planned.headers, planned.headers_ns, planned.reads)


class FaultedAnswers:
    """Applies a `FaultPlan` to a sequence of answers and keeps the faults that fired."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._answers = 0
        self._attempts: dict[Hashable, int] = {}
        self._fired: list[Fired] = []

    def begin(self, key: Hashable) -> ActiveFaults:
        """The faults that hit the next answer, whose request matches by `key`."""
        with self._lock:
            exchange = self._answers
            self._answers += 1
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        return self.plan.for_request(exchange=exchange, attempt=attempt)

    def early(self, active: ActiveFaults, url: str, label: str) -> Reply | None:
        """A status or drop answer that stands in for the recording, if one hits."""
        if not active:
            return None
        return self._note(active.early_reply(fault_facts(url), request=label))

    def apply(
        self, active: ActiveFaults, exchange: Exchange, schedule: Schedule, label: str
    ) -> Reply:
        """The recorded answer's schedule with this attempt's stream faults applied."""
        reply = active.apply(schedule, fault_facts(exchange), request=label)
        if reply.fired:
            headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"]
            reply = Reply(
                reply.status, headers, reply.headers_ns, reply.reads, reply.end, reply.fired
            )
        noted = self._note(reply)
        assert noted is not None
        return noted

    def _note(self, reply: Reply | None) -> Reply | None:
        if reply is not None and reply.fired:
            with self._lock:
                self._fired.extend(reply.fired)
        return reply

    def fired(self) -> list[Fired]:
        with self._lock:
            return list(self._fired)

    def reset(self) -> None:
        """Start counting answers and attempts again (a new test, a server restart)."""
        with self._lock:
            self._answers = 0
            self._attempts.clear()
            self._fired.clear()
