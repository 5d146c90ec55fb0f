"""Responses API streams: parity with the openai SDK, the corpus, cuts and garbage.

The SDK's ``ResponseStreamState`` is the oracle on generated well-formed streams
(every event type, random reads, CRLF and CR, split UTF-8, comments, ``event:`` lines
or none); the recorded corpus is checked against what the SDK produced from it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_chat import split_reads
from strategies_responses import plain_body, response_streams, sse_bodies

from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.formats.openai_responses import ResponsesAssembler, assemble

sdk_state = pytest.importorskip("openai.lib.streaming.responses._responses")
from openai._models import construct_type  # noqa: E402
from openai._streaming import SSEDecoder  # noqa: E402
from openai._types import omit  # noqa: E402
from openai.types.responses import ResponseStreamEvent  # noqa: E402

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def norm(x: Any) -> Any:
    """Absent == null everywhere; the SDK's ``parsed``/``parsed_arguments`` dropped."""
    if isinstance(x, dict):
        return {
            k: norm(v)
            for k, v in x.items()
            if v is not None and k not in ("parsed", "parsed_arguments")
        }
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


def sdk_final(events: list[dict[str, Any]]) -> Any:
    """What ``client.responses.stream(...).get_final_response()`` returns for these events."""
    state: Any = sdk_state.ResponseStreamState(input_tools=omit, text_format=omit)
    for e in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=copy.deepcopy(e)))
    final = state._completed_response
    assert final is not None
    return norm(final.to_dict())


def sdk_final_of_body(body: bytes) -> Any:
    events = [json.loads(sse.data) for sse in SSEDecoder().iter_bytes(iter([body]))]
    return sdk_final(events)


@SETTINGS
@given(stream=response_streams(), data=st.data())
def test_generated_streams_match_sdk(stream: Any, data: st.DataObject) -> None:
    events, _ = stream
    expected = sdk_final(events)
    plain = assemble(plain_body(events))  # the fast path
    assert norm(plain.to_dict()) == expected
    assert plain.outcome.ok, plain.outcome.problems
    body = data.draw(sse_bodies(events))
    assert norm(assemble(body).to_dict()) == expected
    reads = split_reads(data.draw, body)
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x/v1/responses"),
        status=200,
        reads=[Read(t_ns=1000 * (i + 1), data=r) for i, r in enumerate(reads)],
    )
    timed = assemble(ex)
    assert norm(timed.to_dict()) == expected
    assert timed.outcome.ok, timed.outcome.problems
    assert timed.outcome.t_first_ns is not None


@SETTINGS
@given(stream=response_streams())
def test_fast_and_slow_paths_agree(stream: Any) -> None:
    events, _ = stream
    body = plain_body(events)
    fast = assemble(body)
    slow = assemble([body[i : i + 7] for i in range(0, len(body), 7)])
    assert fast.to_dict() == slow.to_dict()
    assert fast.outcome.events == slow.outcome.events == len(events)
    assert fast.outcome.chunks == slow.outcome.chunks


@SETTINGS
@given(stream=response_streams(), terminal=st.sampled_from(["incomplete", "failed"]))
def test_folded_items_equal_the_done_items(stream: Any, terminal: str) -> None:
    """Without ``output_item.done`` and a terminal output, the deltas rebuild each item."""
    events, final = stream
    kept = [e for e in events if e["type"] != "response.output_item.done"][:-1]
    result = assemble(plain_body(kept))
    assert not result.outcome.ok
    assert [strings(i) for i in result.output] == [strings(i) for i in final["output"]]
    last = dict(events[-1], type="response." + terminal)
    last["response"] = {**last["response"], "status": terminal}
    last["response"].pop("output", None)
    ended = assemble(plain_body([*kept, last]))
    assert ended.status == terminal
    assert [strings(i) for i in ended.output] == [strings(i) for i in final["output"]]
    assert ended.outcome.ok == (terminal == "incomplete")


STREAMED = ("text", "refusal", "arguments", "input", "code", "stdout", "stderr")


def strings(item: Any, path: str = "") -> dict[str, str]:
    """Every streamed string of an item, by path (text, refusal, arguments, code...)."""
    found: dict[str, str] = {}
    if isinstance(item, dict):
        for k, v in item.items():
            if isinstance(v, str) and k in STREAMED:
                found[f"{path}.{k}"] = v
            elif isinstance(v, (dict, list)):
                found.update(strings(v, f"{path}.{k}"))
    elif isinstance(item, list):
        for i, v in enumerate(item):
            if isinstance(v, str) and path.endswith("commands"):
                found[f"{path}[{i}]"] = v
            else:
                found.update(strings(v, f"{path}[{i}]"))
    return found


def assert_prefix(partial: list[Any], full: list[Any]) -> None:
    """Each partial item's streamed strings begin the same item's (matched by id; items
    of parallel streams can be announced out of index order, so positions may differ)."""
    by_id = {item["id"]: strings(item) for item in full}
    for item in partial:
        for path, text in strings(item).items():
            assert by_id[item["id"]].get(path, "").startswith(text), (path, text)


@SETTINGS
@given(stream=response_streams(), data=st.data())
def test_any_cut_keeps_a_prefix_and_is_never_ok(stream: Any, data: st.DataObject) -> None:
    events, final = stream
    body = data.draw(sse_bodies(events, done=False))
    eol = 1 if body.endswith(b"\n\n") and not body.endswith(b"\r\n\r\n") else 2
    if body.endswith(b"\r\r"):
        eol = 1
    cut = data.draw(st.integers(0, len(body.rstrip(b"\r\n")) + eol))
    part = assemble(body[:cut])
    assert not part.outcome.ok  # a cut stream never claims to be complete
    for p in part.outcome.problems:
        assert p.offset is None or 0 <= p.offset <= cut
    assert len(part.output) <= len(final["output"])
    assert_prefix(part.output, final["output"])


@SETTINGS
@given(stream=response_streams())
def test_snapshot_after_every_event_is_a_prefix(stream: Any) -> None:
    events, final = stream
    asm = ResponsesAssembler()
    for n, e in enumerate(events):
        asm.feed(json.dumps(e).encode(), event_index=n)
        assert_prefix(asm.snapshot().output, final["output"])
    assert norm(asm.finish().to_dict()) == sdk_final(events)


@SETTINGS
@given(data=st.binary(max_size=300) | st.lists(st.binary(max_size=40), max_size=10))
def test_arbitrary_bytes_never_raise(data: bytes | list[bytes]) -> None:
    result = assemble(data)
    result.to_dict()
    result.to_json()


@SETTINGS
@given(stream=response_streams(), data=st.data())
def test_corrupted_streams_never_raise(stream: Any, data: st.DataObject) -> None:
    body = bytearray(plain_body(stream[0]))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] = data.draw(st.sampled_from(b'{}[]":,\n 0a\xff'))
    result = assemble(bytes(body))
    result.to_json()
    for p in result.outcome.problems:
        assert p.offset is None or 0 <= p.offset <= len(body)


# --------------------------------------------------------------------------- the corpus


def corpus_files() -> list[Path]:
    folder = CORPUS / "openai-responses"
    return sorted(folder.glob("*.sse")) if folder.is_dir() else []


def expected_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / "expected" / f"{path.stem}.json").read_text())
    return data


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_recorded_streams_match_the_sdk_results(path: Path) -> None:
    body = path.read_bytes()
    expected = expected_of(path)
    result = assemble(body)
    one_byte = assemble([body[i : i + 1] for i in range(len(body))])
    assert one_byte.to_dict() == result.to_dict()
    if expected.get("final") is not None:
        assert norm(result.to_dict()) == norm(expected["final"])
        assert norm(result.to_dict()) == sdk_final_of_body(body)
        assert result.outcome.ok
        assert result.output_text == expected["output_text"]
    else:  # the SDK raised; we report the error and keep the failed response
        assert "Foobar" in expected["iter_error"]
        assert not result.outcome.ok
        assert result.outcome.error["message"] == "Foobar"
        (problem,) = [p for p in result.outcome.problems if p.kind == "error_event"]
        assert problem.event_index == 2 and problem.offset == body.index(b"event: error")
        assert result.status == "failed"


def test_corpus_present() -> None:
    if not corpus_files():
        pytest.skip("recorded corpus not found next to the checkout")
    assert len(corpus_files()) == 5


def test_to_openai_builds_the_sdk_type() -> None:
    for path in corpus_files():
        result = assemble(path.read_bytes())
        assert norm(result.to_openai().to_dict()) == norm(result.to_dict())
