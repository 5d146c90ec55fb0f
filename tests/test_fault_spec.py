"""The fault spec grammar: every spelling round-trips, anything else is one FaultSpecError line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtape import ConfigError, Fault, FaultPlan, FaultSpecError
from streamtape.core.fault_spec import GRAMMAR, parse_fault, parse_faults

small = st.integers(min_value=0, max_value=10_000)
seconds = st.floats(min_value=0, max_value=1e4, allow_nan=False).map(lambda x: round(x, 3))
selector = st.one_of(
    st.just({}),
    small.map(lambda k: {"exchange": k}),
    small.map(lambda m: {"attempts": m}),
)


@st.composite
def faults(draw: st.DrawFn) -> Fault:
    kind = draw(st.sampled_from(["cut", "stall", "slow", "status", "corrupt", "error-event"]))
    sel = draw(selector)
    if kind == "cut":
        where = draw(st.sampled_from(["event", "token", "byte"]))
        value = draw(small) + (1 if where == "token" else 0)
        return Fault("cut", **{where: value}, reset=draw(st.booleans()), **sel)
    if kind == "stall":
        return Fault("stall", event=draw(small), seconds=draw(seconds), **sel)
    if kind == "slow":
        a, b = sorted((draw(small), draw(small)))
        return Fault("slow", events=(a, b), factor=draw(seconds), **sel)
    if kind == "status":
        after = draw(st.one_of(st.none(), seconds))
        return Fault("status", status=draw(st.integers(100, 599)), retry_after=after, **sel)
    if kind == "corrupt":
        return Fault("corrupt", event=draw(small), truncate=draw(st.booleans()), **sel)
    return Fault("error-event", event=draw(small), **sel)


@given(faults())
def test_every_fault_round_trips_through_its_spelling(fault: Fault) -> None:
    assert parse_fault(str(fault)) == fault


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_one_line_fault_spec_error(text: str) -> None:
    try:
        fault = parse_fault(text)
    except FaultSpecError as exc:
        message = str(exc)
        assert "\n" not in message.replace(repr(text), "")
        assert GRAMMAR in message
    else:
        assert parse_fault(str(fault)) == fault


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("cut", "cut needs one of event=/token=/byte="),
        ("cut:event=1,token=2", "cut needs one of"),
        ("cut:token=0", "tokens count from 1"),
        ("stall:event=2", "stall needs SECONDS"),
        ("stall:abc:event=2", "SECONDS 'abc' is not a number"),
        ("stall:1", "stall needs its position"),
        ("slow:2:events=5-1", "not a range"),
        ("status:42", "not an HTTP status"),
        ("status:429:attempts=x", "not a whole number"),
        ("status:429:attempts=1,exchange=0", "not both"),
        ("status:429:when=now", "unknown option 'when=now'"),
        ("drop:body", "the one drop is drop:headers"),
        ("crlf:event=1", "crlf takes no stream position"),
        ("corrupt:event=1,reset", "only cut takes ,reset"),
        ("explode", "unknown fault 'explode'"),
        ("cut:event=1:more", "too many ':' parts"),
    ],
)
def test_bad_specs_name_what_is_wrong_and_show_the_grammar(spec: str, why: str) -> None:
    with pytest.raises(FaultSpecError) as exc:
        parse_fault(spec)
    assert why in str(exc.value) and GRAMMAR in str(exc.value)
    assert isinstance(exc.value, ConfigError) and isinstance(exc.value, ValueError)


def test_specs_and_objects_mix_and_one_spec_alone_is_accepted() -> None:
    assert parse_faults("crlf") == (Fault("crlf"),)
    assert parse_faults(None) == ()
    mixed = parse_faults(["cut:byte=10", Fault("keepalive")])
    assert mixed == (Fault("cut", byte=10), Fault("keepalive"))
    plan = FaultPlan.parse(mixed, seed=3)
    assert FaultPlan.parse(plan) is plan and plan.seed == 3


def test_selectors_pick_attempts_and_exchanges() -> None:
    first_two = parse_fault("status:429:attempts=2")
    assert [first_two.hits(e, a) for e, a in [(0, 0), (1, 1), (2, 2)]] == [True, True, False]
    third = parse_fault("cut:event=1,exchange=2")
    assert [third.hits(e, 0) for e in range(4)] == [False, False, True, False]
    assert parse_fault("crlf").hits(99, 99)
