"""The fault plan as a pure function of a schedule: what each fault does to bytes and times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamtape import FaultPlan, Read, parse_sse
from streamtape.core.fault_plan import Reply, Schedule
from streamtape.formats.detect import OPENAI_CHAT
from streamtape.formats.fault_facts import FormatFacts

FACTS = FormatFacts(OPENAI_CHAT)
MS = 1_000_000


def chat_schedule(words: list[str], sizes: list[int]) -> Schedule:
    """Chat chunks, one word each, then [DONE], re-split into reads of the given sizes."""
    body = b"".join(
        b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'
        + w.encode()
        + b'"}}]}\n\n'
        for w in words
    )
    body += b"data: [DONE]\n\n"
    reads, pos, i = [], 0, 0
    while pos < len(body):
        size = sizes[i % len(sizes)]
        reads.append(Read((i + 1) * 10 * MS, body[pos : pos + size]))
        pos, i = pos + size, i + 1
    return Schedule(200, [("content-type", "text/event-stream")], 5 * MS, tuple(reads))


def apply(specs: list[str], schedule: Schedule, seed: int = 0) -> tuple[bytes, Reply]:
    reply = (
        FaultPlan.parse(specs, seed=seed)
        .for_request(exchange=0, attempt=0)
        .apply(schedule, FACTS, request="POST /v1/chat/completions")
    )
    return reply.body, reply


words = st.lists(st.sampled_from(["a", "bb", "ccc", "word"]), min_size=3, max_size=12)
sizes = st.lists(st.integers(1, 200), min_size=1, max_size=5)


@given(words, sizes, st.integers(1, 12))
def test_cut_after_token_n_is_a_prefix_ending_on_the_nth_token(
    ws: list[str], ss: list[int], n: int
) -> None:
    schedule = chat_schedule(ws, ss)
    whole = b"".join(r.data for r in schedule.reads)
    body, _ = apply([f"cut:token={n}"], schedule)
    if n >= len(ws) + 1:
        assert body == whole
        return
    assert whole.startswith(body)
    events = parse_sse(body)
    assert len(events) == min(n, len(ws)) and all(e.complete for e in events)


@given(words, sizes, st.integers(0, 400))
def test_cut_at_byte_b_keeps_b_bytes_at_their_times(ws: list[str], ss: list[int], b: int) -> None:
    schedule = chat_schedule(ws, ss)
    whole = b"".join(r.data for r in schedule.reads)
    body, reply = apply([f"cut:byte={b},reset"], schedule)
    assert body == whole[:b]
    assert reply.end == ("reset" if b < len(whole) else "recorded")
    times = {r.t_ns for r in schedule.reads}
    assert all(r.t_ns in times for r in reply.reads)


@given(words, sizes, st.integers(0, 5))
def test_stall_delays_event_k_and_everything_after_by_its_seconds(
    ws: list[str], ss: list[int], k: int
) -> None:
    schedule = chat_schedule(ws, ss)
    k %= len(ws) + 1  # the events, [DONE] included
    body, reply = apply([f"stall:0.25:event={k}"], schedule)
    assert body == b"".join(r.data for r in schedule.reads)
    start = parse_sse(body)[k].start
    pos = 0
    for r in reply.reads:
        original = next(o.t_ns for o in _at(schedule, pos))
        assert r.t_ns == original + (250 * MS if pos >= start else 0)
        pos += len(r.data)


def _at(schedule: Schedule, offset: int) -> list[Read]:
    pos = 0
    for r in schedule.reads:
        if pos <= offset < pos + len(r.data):
            return [r]
        pos += len(r.data)
    return []


@given(words, sizes, st.integers(0, 2**32))
def test_framing_faults_keep_every_event(ws: list[str], ss: list[int], seed: int) -> None:
    schedule = chat_schedule(ws, ss)
    before = [e.data for e in parse_sse(b"".join(r.data for r in schedule.reads))]
    body, _ = apply(["keepalive", "crlf"], schedule, seed)
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert [e.data for e in parse_sse(body)] == before


@given(words, sizes, st.integers(0, 2**32))
def test_corrupt_is_deterministic_per_seed_and_breaks_only_event_k(
    ws: list[str], ss: list[int], seed: int
) -> None:
    schedule = chat_schedule(ws, ss)
    body, _ = apply(["corrupt:event=1"], schedule, seed)
    assert apply(["corrupt:event=1"], schedule, seed)[0] == body
    original = parse_sse(b"".join(r.data for r in schedule.reads))
    events = parse_sse(body)
    assert [e.data for e in events[2:]] == [e.data for e in original[2:]]
    assert events[1].data != original[1].data and original[1].data.startswith(events[1].data)


def test_slow_stretches_only_the_gaps_inside_its_range() -> None:
    schedule = chat_schedule(["a"] * 8, [10_000])  # one read: split per event below
    spread = Schedule(
        200,
        schedule.headers,
        0,
        tuple(Read((i + 1) * 10 * MS, e) for i, e in enumerate(_events(schedule))),
    )
    _, reply = apply(["slow:3:events=2-4"], spread)
    times = [r.t_ns // MS for r in reply.reads]
    assert times == [10, 20, 50, 80, 110, 120, 130, 140, 150]


def _events(schedule: Schedule) -> list[bytes]:
    body = b"".join(r.data for r in schedule.reads)
    return [body[e.start : e.end] for e in parse_sse(body)]


def test_status_and_drop_answer_instead_of_the_recording() -> None:
    active = FaultPlan.parse(["status:429:attempts=1,retry-after=1.5"]).for_request(
        exchange=0, attempt=0
    )
    reply = active.early_reply(FACTS, request="POST /v1/chat/completions")
    assert reply is not None and reply.status == 429
    assert ("retry-after", "2") in reply.headers and ("retry-after-ms", "1500") in reply.headers
    assert b'"rate_limit_exceeded"' in reply.body
    later = FaultPlan.parse(["status:429:attempts=1"]).for_request(exchange=1, attempt=1)
    assert later.early_reply(FACTS) is None
    dropped = FaultPlan.parse(["drop:headers"]).for_request(exchange=0, attempt=0)
    assert dropped.early_reply(FACTS).end == "drop"  # type: ignore[union-attr]


def test_a_fault_past_the_end_does_not_fire() -> None:
    schedule = chat_schedule(["a", "b", "c"], [50])
    body, reply = apply(["cut:event=40", "stall:1:event=40", "cut:token=9"], schedule)
    assert body == b"".join(r.data for r in schedule.reads)
    assert reply.fired == () and reply.end == "recorded"
