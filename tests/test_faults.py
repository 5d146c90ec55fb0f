"""The stream fault transforms of core/faults: pure, seeded, and format-neutral.

The simulator serves them over sockets (tests/test_demo_upstream.py); here they are
checked as functions, on schedules of any shape, so replay can rely on them too.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtape.core.faults import (
    KEEPALIVE,
    STREAM_FAULTS,
    Event,
    apply_faults,
    cut_point,
    interleave_keepalives,
    to_crlf,
    without_final,
)

ERROR = b'event: error\ndata: {"oops":1}\n\n'
FINAL = b"data: end\n\n"


def schedule(count: int) -> list[Event]:
    """`count` events ending with FINAL, with distinct delays and payloads."""
    body = [(0.01 * (i + 1), f"data: {i}\n\n".encode()) for i in range(count - 1)]
    return [*body, (0.5, FINAL)] if count else []


def faulted(events: list[Event], *faults: str, seed: int = 7) -> tuple[list[Event], str]:
    return apply_faults(events, faults, seed=seed, error_event=ERROR, final=FINAL)


def test_no_faults_is_the_identity_and_the_input_is_untouched() -> None:
    events = schedule(6)
    before = list(events)
    out, ending = faulted(events)
    assert (out, ending) == (events, "complete")
    assert out is not events
    faulted(events, "drop", "comments", "crlf")
    assert events == before


@pytest.mark.parametrize("count, cut", [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (10, 4)])
def test_cut_point_is_halfway_but_after_one_event(count: int, cut: int) -> None:
    assert cut_point(schedule(count)) == cut


@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_drop_and_stall_cut_halfway_and_say_how_the_stream_ends(fault: str) -> None:
    events = schedule(10)
    out, ending = faulted(events, fault)
    assert out == events[:4]
    assert ending == fault


def test_mid_stream_error_replaces_the_rest_with_the_error_event() -> None:
    events = schedule(10)
    out, ending = faulted(events, "mid-stream-error")
    assert out[:-1] == events[:4]
    assert out[-1][1] == ERROR and 0.005 <= out[-1][0] <= 0.040
    assert ending == "complete"
    assert faulted(events, "mid-stream-error") == (out, ending)  # same seed, same gap
    gaps = {faulted(events, "mid-stream-error", seed=s)[0][-1][0] for s in range(5)}
    assert len(gaps) == 5  # the seed decides the gap


def test_cut_faults_take_precedence_in_order() -> None:
    events = schedule(10)
    assert faulted(events, "mid-stream-error", "drop", "stall")[0][-1][1] == ERROR
    assert faulted(events, "drop", "stall", "no-done")[1] == "drop"
    assert faulted(events, "stall", "no-done") == (events[:4], "stall")


def test_no_done_removes_only_a_final_event() -> None:
    events = schedule(5)
    assert faulted(events, "no-done") == (events[:-1], "complete")
    assert without_final(events[:-1], FINAL) == events[:-1]
    assert without_final([], FINAL) == []


def test_comments_keep_the_pacing_and_every_event() -> None:
    events = schedule(20)
    out = interleave_keepalives(events)
    assert [e for e in out if e[1] != KEEPALIVE] == [
        (events[0][0] - events[0][0] / 2, events[0][1]),
        *events[1:],
    ]
    assert sum(d for d, _ in out) == pytest.approx(sum(d for d, _ in events))
    positions = [i for i, (_, data) in enumerate(out) if data == KEEPALIVE]
    assert positions == [0, 9, 18]  # before event 0, 8 and 16
    assert interleave_keepalives(events, b": ping\n\n")[0] == (events[0][0] / 2, b": ping\n\n")


def test_crlf_rewrites_every_line_ending() -> None:
    assert to_crlf([(0.1, b"event: a\ndata: 1\n\n")]) == [(0.1, b"event: a\r\ndata: 1\r\n\r\n")]


def test_unknown_fault_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"explode.*expected some of: comments, crlf"):
        faulted(schedule(3), "drop", "explode")


@given(
    count=st.integers(min_value=0, max_value=40),
    faults=st.sets(st.sampled_from(sorted(STREAM_FAULTS))),
    seed=st.integers(min_value=0, max_value=2**64),
)
def test_a_faulted_schedule_is_a_prefix_of_the_clean_one(
    count: int, faults: set[str], seed: int
) -> None:
    """Undo the comments and CRLFs: what is left is the clean schedule, cut or whole."""
    events = schedule(count)
    out, ending = faulted(events, *faults, seed=seed)
    assert faulted(events, *faults, seed=seed) == (out, ending)
    kept = [(d, data.replace(b"\r\n", b"\n")) for d, data in out]
    kept = [(d, data) for d, data in kept if data != KEEPALIVE]
    if "mid-stream-error" in faults:
        assert kept[-1][1] == ERROR
        kept = kept[:-1]
    payloads = [data for _, data in kept]
    assert payloads == [data for _, data in events[: len(payloads)]]
    cut = next((f for f in ("mid-stream-error", "drop", "stall") if f in faults), None)
    assert ending == (cut if cut in ("drop", "stall") else "complete")
    if cut is not None:
        assert len(payloads) == min(cut_point(events), len(events))
