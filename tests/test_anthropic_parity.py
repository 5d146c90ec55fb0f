"""Parity with the anthropic SDK's ``accumulate_event`` on well-formed Messages streams.

The installed SDK is the oracle: generated streams (every event and block type,
random read splits, CRLF and CR, split UTF-8, pings, comments) and the recorded
corpus must assemble to the SDK's final message, and the snapshot after every event
must equal the SDK's snapshot after it (absent == null).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _corpus import CORPUS, require_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_anthropic import (
    message_streams,
    norm,
    plain_body,
    sdk_final,
    sdk_snapshots,
    split_reads,
    sse_bodies,
)

from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.core.sse import parse_sse
from streamtape.formats.anthropic_messages import MessagesAssembler, assemble, whole

pytest.importorskip("anthropic")

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Events = list[tuple[str, dict[str, Any]]]


@SETTINGS
@given(events=message_streams(), data=st.data())
def test_generated_streams_match_sdk(events: Events, data: st.DataObject) -> None:
    body = data.draw(sse_bodies(events))
    reads = split_reads(data.draw, body)
    expected = sdk_final(reads)
    result = assemble(body)
    assert norm(result.to_dict()) == expected
    assert result.outcome.ok, result.outcome.problems
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x/v1/messages"),
        status=200,
        reads=[Read(t_ns=1000 * (i + 1), data=r) for i, r in enumerate(reads)],
    )
    timed = assemble(ex)
    assert norm(timed.to_dict()) == expected
    assert timed.outcome.t_first_ns is not None and timed.outcome.ok
    assert norm(assemble(iter(reads)).to_dict()) == expected


@SETTINGS
@given(events=message_streams(), data=st.data())
def test_the_fast_path_matches_the_sdk_and_the_sse_path(
    events: Events, data: st.DataObject
) -> None:
    body = plain_body(events)
    chunks = split_reads(data.draw, body)
    reads = [Read(t_ns=1000 * (i + 1), data=r) for i, r in enumerate(chunks)]
    fast = whole._fast(body, reads)
    assert fast is not None  # the API's own shape always takes the fast path
    expected = sdk_final(chunks)
    assert norm(fast.to_dict()) == expected
    slow = whole._slow(body, reads)
    assert norm(slow.to_dict()) == expected
    assert fast.outcome == slow.outcome and fast.outcome.ok  # timing included


@SETTINGS
@given(events=message_streams(), data=st.data())
def test_snapshots_match_sdk_after_every_event(events: Events, data: st.DataObject) -> None:
    body = data.draw(sse_bodies(events))
    theirs = list(sdk_snapshots(split_reads(data.draw, body)))
    asm = MessagesAssembler()
    ours = []
    for ev in parse_sse(body):
        asm.feed(ev.data, event=ev.event)
        if ev.event != "ping":
            ours.append((ev.event, norm(asm.snapshot().to_dict())))
    assert ours == theirs
    assert norm(asm.finish().to_dict()) == theirs[-1][1]


def corpus_files() -> list[Path]:
    folder = CORPUS / "anthropic"
    return (
        sorted(p for p in folder.iterdir() if p.suffix in (".sse", ".txt"))
        if folder.is_dir()
        else []
    )


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_recorded_streams_match_the_expected_sdk_results(path: Path) -> None:
    expected = json.loads((CORPUS / "expected" / f"{path.stem}.json").read_bytes())["final"]
    body = path.read_bytes()
    result = assemble(body)
    assert norm(result.to_dict()) == norm(expected)
    assert norm(result.to_dict()) == sdk_final([body])  # and the installed SDK agrees
    one_byte_reads = assemble([body[i : i + 1] for i in range(len(body))])
    assert norm(one_byte_reads.to_dict()) == norm(expected)
    # The SDK's own fixtures end without a final blank line: said, not hidden.
    kinds = {p.kind for p in result.outcome.problems}
    assert result.outcome.ok == body.endswith(b"\n\n")
    assert ("truncated_tail" in kinds) == (not body.endswith(b"\n\n"))


def test_corpus_present_or_skipped() -> None:
    if not corpus_files():
        if __import__("os").environ.get("CI"):
            pytest.fail("the recorded corpus is missing")
        pytest.skip("recorded corpus not found next to the checkout")
    assert len(corpus_files()) == 9


def test_cut_tool_json_keeps_the_sdk_partial_input_and_says_so() -> None:
    require_corpus()
    body = (
        CORPUS / "anthropic" / "anthropic-sdk-incomplete_partial_json_response.txt"
    ).read_bytes()
    result = assemble(body)
    tool = result.content[1]
    assert tool.to_dict()["input"] == {
        "filename": "taxes.txt",
        "lines_of_text": [
            "# COMPREHENSIVE TAX GUIDE FOR INDIVIDUALS WITH MULTIPLE W-2s",
            "",
            "## INTRODUCTION",
            "",
        ],
    }
    assert result.stop_reason == "max_tokens"
    cut = [p for p in result.outcome.problems if p.kind == "truncated_tool_input"]
    assert len(cut) == 1 and cut[0].event_index is not None and "make_file" in cut[0].message


def test_to_anthropic_round_trips_through_the_sdk_type() -> None:
    for path in corpus_files():
        result = assemble(path.read_bytes())
        assert norm(result.to_anthropic().to_dict()) == norm(result.to_dict())
