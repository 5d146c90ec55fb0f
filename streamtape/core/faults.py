"""Faults applied to a stream's schedule: pure, seeded transforms of ``(delay, bytes)`` events.

A schedule is the list of events a server sends, each with the delay (seconds) before
it. A fault turns a clean schedule into the one a misbehaving server or gateway sends:
cut it short (and close or hang), end it with an error event, leave out the final
sentinel, interleave keep-alive comments, or rewrite line endings. The same input and
seed give the same output, so the simulator and replay can inject the very same fault,
and a failing test reproduces. Nothing here knows a stream format: the caller passes
the bytes of its format's error event and final event.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = [
    "KEEPALIVE",
    "STREAM_FAULTS",
    "Ending",
    "Event",
    "apply_faults",
    "cut_point",
    "interleave_keepalives",
    "to_crlf",
    "without_final",
]

Event = tuple[float, bytes]
"""One send of a schedule: the delay before it (seconds) and its bytes."""

Ending = Literal["complete", "drop", "stall"]
"""How a schedule ends: the body completes, the connection closes early, or it hangs."""

STREAM_FAULTS = frozenset({"mid-stream-error", "drop", "stall", "no-done", "crlf", "comments"})
"""Every fault `apply_faults` knows. At most one of the first four (the cut faults) acts,
in that order of precedence; ``comments`` and ``crlf`` apply on top of it."""

KEEPALIVE = b": keep-alive\n\n"
"""The SSE comment servers send to keep an idle connection open."""

_KEEPALIVE_EVERY = 8


def cut_point(events: Sequence[Event]) -> int:
    """Where a cut fault ends a stream: halfway, but after at least one event."""
    return max(1, (len(events) - 1) // 2)


def without_final(events: Sequence[Event], final: bytes) -> list[Event]:
    """The schedule without its last event if that is `final` (a stream's end sentinel)."""
    if events and events[-1][1] == final:
        return list(events[:-1])
    return list(events)


def interleave_keepalives(events: Iterable[Event], comment: bytes = KEEPALIVE) -> list[Event]:
    """A keep-alive comment halfway into the first gap and before every eighth event after it.

    The delay before each original event is kept, so the stream's pacing is unchanged.
    """
    spaced: list[Event] = []
    for i, (delay, data) in enumerate(events):
        if i == 0:
            spaced += [(delay / 2, comment), (delay - delay / 2, data)]
        elif i % _KEEPALIVE_EVERY == 0:
            spaced += [(0.0, comment), (delay, data)]
        else:
            spaced.append((delay, data))
    return spaced


def to_crlf(events: Iterable[Event]) -> list[Event]:
    """Every LF written as CRLF, as some proxies and servers on Windows send it."""
    return [(delay, data.replace(b"\n", b"\r\n")) for delay, data in events]


def _cut(
    events: list[Event],
    faults: frozenset[str],
    rng: random.Random,
    error_event: bytes,
    final: bytes,
) -> tuple[list[Event], Ending]:
    """Apply the one cut fault of highest precedence in `faults`, if any."""
    cut = cut_point(events)
    if "mid-stream-error" in faults:
        return [*events[:cut], (rng.uniform(0.005, 0.040), error_event)], "complete"
    if "drop" in faults:
        return events[:cut], "drop"
    if "stall" in faults:
        return events[:cut], "stall"
    if "no-done" in faults:
        return without_final(events, final), "complete"
    return events, "complete"


def apply_faults(
    events: Sequence[Event],
    faults: Iterable[str],
    *,
    seed: int,
    error_event: bytes,
    final: bytes,
) -> tuple[list[Event], Ending]:
    """The schedule a misbehaving server sends instead of `events`, and how it ends.

    `faults` are names from `STREAM_FAULTS`; `seed` fixes the random choices (the gap
    before an injected error); `error_event` is the bytes of the format's error event
    (``mid-stream-error``) and `final` those of its last event (``no-done``).
    """
    kinds = frozenset(faults)
    unknown = kinds - STREAM_FAULTS
    if unknown:
        raise ValueError(
            f"unknown stream fault(s) {', '.join(sorted(unknown))}; "
            f"expected some of: {', '.join(sorted(STREAM_FAULTS))}"
        )
    out, ending = _cut(list(events), kinds, random.Random(seed), error_event, final)
    if "comments" in kinds:
        out = interleave_keepalives(out)
    if "crlf" in kinds:
        out = to_crlf(out)
    return out, ending
