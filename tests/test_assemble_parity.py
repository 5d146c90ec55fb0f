"""Parity with the openai SDK's ``ChatCompletionStreamState`` on well-formed streams.

The SDK is the oracle: generated streams (every field the assembler handles, random
read splits, CRLF/CR, comments, UTF-8 split across reads) and the real recorded
OpenAI streams must assemble to what the SDK accumulates, with an absent key equal to
null and the SDK's ``parsed``/``parsed_arguments`` stripped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _corpus import corpus_files, require_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_chat import chat_streams, split_reads, sse_bodies

from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.core.sse import parse_sse
from streamtape.formats.openai_chat.assembler import Assembler
from streamtape.formats.openai_chat.whole import assemble

openai_streaming = pytest.importorskip("openai.lib.streaming.chat._completions")
from openai._models import construct_type  # noqa: E402
from openai.types.chat import ChatCompletionChunk  # noqa: E402


def norm(x: Any) -> Any:
    """Absent == null: drop null-valued keys everywhere; drop the SDK's parse fields."""
    if isinstance(x, dict):
        return {
            k: norm(v)
            for k, v in x.items()
            if v is not None and k not in ("parsed", "parsed_arguments")
        }
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


class Oracle:
    """The SDK's accumulator fed the way its ``.stream()`` helper feeds it."""

    def __init__(self) -> None:
        self.state: Any = openai_streaming.ChatCompletionStreamState()
        self.fed = False

    def feed(self, chunk: dict[str, Any]) -> None:
        c = construct_type(type_=ChatCompletionChunk, value=copy.deepcopy(chunk))
        if c.object == "chat.completion.chunk":
            self.state.handle_chunk(c)
            self.fed = True

    def result(self) -> Any:
        d = self.state.current_completion_snapshot.to_dict()
        # openai < 3 keeps the first chunk's obfuscation; newer releases drop it, as we do.
        d.pop("obfuscation", None)
        return norm(d)


def oracle_of(chunks: list[dict[str, Any]]) -> Any:
    o = Oracle()
    for c in chunks:
        o.feed(c)
    return o.result()


def oracle_of_body(body: bytes) -> Any:
    o = Oracle()
    for ev in parse_sse(body):
        if ev.data.startswith(b"[DONE]"):
            break
        if ev.data:
            o.feed(json.loads(ev.data))
    return o.result()


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(chunks=chat_streams(), data=st.data())
def test_generated_streams_match_sdk(chunks: list[dict[str, Any]], data: st.DataObject) -> None:
    body = data.draw(sse_bodies(chunks))
    expected = oracle_of(chunks)
    result = assemble(body)
    assert norm(result.to_dict()) == expected
    assert result.outcome.ok, result.outcome.problems
    # The same bytes in random reads, through a timed exchange (the SSE parser path).
    reads = split_reads(data.draw, body)
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x/v1/chat/completions"),
        status=200,
        reads=[Read(t_ns=1000 * (i + 1), data=r) for i, r in enumerate(reads)],
    )
    timed = assemble(ex)
    assert norm(timed.to_dict()) == expected
    assert timed.outcome.t_first_ns is not None
    assert norm(assemble(iter(reads)).to_dict()) == expected


@SETTINGS
@given(chunks=chat_streams())
def test_snapshots_match_sdk_after_every_chunk(chunks: list[dict[str, Any]]) -> None:
    asm = Assembler()
    oracle = Oracle()
    for i, chunk in enumerate(chunks):
        asm.feed(json.dumps(chunk).encode(), event_index=i)
        oracle.feed(chunk)
        if oracle.fed:
            assert norm(asm.snapshot().to_dict()) == oracle.result()
    assert norm(asm.finish().to_dict()) == oracle.result()


def chat_corpus() -> list[Path]:
    return corpus_files("openai-python")


@pytest.mark.parametrize("path", chat_corpus(), ids=lambda p: p.stem)
def test_recorded_openai_streams_match_sdk(path: Path) -> None:
    body = path.read_bytes()
    expected = oracle_of_body(body)
    result = assemble(body)
    assert norm(result.to_dict()) == expected
    assert result.outcome.ok
    one_byte_reads = assemble([body[i : i + 1] for i in range(len(body))])
    assert norm(one_byte_reads.to_dict()) == expected


def test_corpus_present_or_skipped() -> None:
    require_corpus()
    assert len(chat_corpus()) >= 1


def test_to_openai_round_trips_through_the_sdk_type() -> None:
    require_corpus()
    for path in chat_corpus():
        result = assemble(path.read_bytes())
        sdk = result.to_openai()
        assert norm(sdk.to_dict()) == norm(result.to_dict())


@SETTINGS
@given(chunks=chat_streams(), data=st.data())
def test_any_cut_keeps_a_prefix_of_the_full_result(
    chunks: list[dict[str, Any]], data: st.DataObject
) -> None:
    body = data.draw(sse_bodies(chunks))
    full = assemble(body)
    cut = data.draw(st.integers(0, body.rindex(b"data: [DONE]")))
    part = assemble(body[:cut])
    assert not part.outcome.ok  # a cut stream never claims to be complete
    for p in part.outcome.problems:
        assert p.offset is None or 0 <= p.offset <= cut
    whole = {c.index: c.message for c in full.choices}  # type: ignore[union-attr]
    for c in part.choices:
        m, w = c.message, whole[c.index]  # type: ignore[union-attr]
        for text, full_text in ((m.content, w.content), (m.refusal, w.refusal)):
            if isinstance(text, str):
                assert isinstance(full_text, str) and full_text.startswith(text)


@SETTINGS
@given(data=st.binary(max_size=300) | st.lists(st.binary(max_size=40), max_size=10))
def test_arbitrary_bytes_never_raise(data: bytes | list[bytes]) -> None:
    result = assemble(data)
    result.to_dict()
    result.to_json()


QUIRKS = ["e13_role", "e14_ids", "e35_nulls", "e21_empty_finish", "e32_index", "e16", "e17"]


def add_quirks(chunks: list[dict[str, Any]], quirks: list[str]) -> list[dict[str, Any]]:  # noqa: C901 - one branch per quirk
    """What non-OpenAI servers do to a well-formed stream without changing its meaning."""
    chunks = copy.deepcopy(chunks)
    heads: dict[tuple[int, int], dict[str, Any]] = {}
    for c in chunks:
        for choice in c["choices"]:
            delta = choice.get("delta")
            if delta is None:
                continue
            if "e13_role" in quirks:
                delta["role"] = "assistant"
            if "e21_empty_finish" in quirks and choice.get("finish_reason") is None:
                choice["finish_reason"] = ""
            for frag in delta.get("tool_calls", []):
                key = (choice["index"], frag["index"])
                if "id" in frag:
                    heads[key] = frag
                elif "e14_ids" in quirks:
                    head = heads[key]
                    frag.update(id=head["id"], type=head["type"])
                    frag["function"]["name"] = head["function"]["name"]
                elif "e35_nulls" in quirks:
                    frag.update(id=None, type=None)
                    frag["function"]["name"] = None
                if "e16" in quirks:
                    del frag["index"]
                elif "e17" in quirks:
                    frag["index"] = 0
            if "e32_index" in quirks and choice["index"] == 0:
                del choice["index"]
    return chunks


@SETTINGS
@given(chunks=chat_streams(), quirks=st.lists(st.sampled_from(QUIRKS), unique=True))
def test_robust_rules_undo_server_quirks(chunks: list[dict[str, Any]], quirks: list[str]) -> None:
    expected = oracle_of(chunks)
    body = b"".join(
        b"data: " + json.dumps(c).encode() + b"\n\n" for c in add_quirks(chunks, quirks)
    )
    result = assemble(body + b"data: [DONE]\n\n")
    assert norm(result.to_dict()) == expected
    assert result.outcome.done
