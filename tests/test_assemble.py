"""The assembler on the quirks of real servers (E-numbers of the reassembly spec), faults,
text completions, non-stream bodies and the output conversions."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.formats.openai_chat.assembler import Assembler
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.formats.openai_chat.whole import _slow, assemble

TOP = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m"}


def chunk(*choices: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**TOP, "choices": list(choices), **top}


def ch(index: int | None = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"delta": delta, "logprobs": None, "finish_reason": finish}
    if index is not None:
        out["index"] = index
    return out


def sse(*events: dict[str, Any] | bytes, done: bool = True) -> bytes:
    """Events as ``data:`` lines; bytes are inserted verbatim."""
    parts = [
        e if isinstance(e, bytes) else b"data: " + json.dumps(e).encode() + b"\n\n" for e in events
    ]
    return b"".join(parts) + (b"data: [DONE]\n\n" if done else b"")


def chat(body: bytes) -> ChatCompletion:
    result = assemble(body)
    assert isinstance(result, ChatCompletion)
    return result


def msg(result: ChatCompletion, i: int = 0) -> dict[str, Any]:
    m: dict[str, Any] = result.to_dict()["choices"][i]["message"]
    return m


def kinds(result: ChatCompletion | TextCompletion) -> list[str]:
    return [p.kind for p in result.outcome.problems]


BASIC = [
    chunk(ch(role="assistant", content="")),
    chunk(ch(content="Hel")),
    chunk(ch(content="lo")),
    chunk(ch(finish="stop")),
]


def test_basic_content_and_outcome() -> None:
    r = chat(sse(*BASIC))
    d = r.to_dict()
    assert d["object"] == "chat.completion"
    assert d["id"] == "chatcmpl-1"
    assert d["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert r.outcome.ok and r.outcome.done and r.outcome.chunks == 4 and r.outcome.events == 5
    assert "outcome" not in d
    assert json.loads(r.to_json()) == d


def test_one_byte_reads_give_the_same_result() -> None:
    body = sse(*BASIC)
    assert assemble([body[i : i + 1] for i in range(len(body))]).to_dict() == chat(body).to_dict()


def test_e1_keepalive_comments_are_ignored() -> None:
    body = sse(b": OPENROUTER PROCESSING\n\n", *BASIC[:2], b": keep-alive\n\n", *BASIC[2:])
    r = chat(body)
    assert msg(r)["content"] == "Hello" and r.outcome.ok


def test_e2_data_without_space() -> None:
    body = b"".join(b"data:" + json.dumps(c).encode() + b"\n\n" for c in BASIC) + b"data:[DONE]\n\n"
    r = chat(body)
    assert msg(r)["content"] == "Hello" and r.outcome.done


@pytest.mark.parametrize("eol", [b"\r\n", b"\r"])
def test_e5_crlf_and_cr_line_ends_split_mid_line_end(eol: bytes) -> None:
    body = sse(*BASIC).replace(b"\n", eol)
    reads = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert msg(chat(b"".join(reads)))["content"] == "Hello"
    assert msg(assemble(reads))["content"] == "Hello"  # type: ignore[arg-type]


def test_e6_utf8_split_across_reads() -> None:
    body = sse(chunk(ch(role="assistant", content="東京🙂")), chunk(ch(finish="stop")))
    body = body.replace(b"\\u6771\\u4eac\\ud83d\\ude42", "東京🙂".encode())
    cut = body.index("🙂".encode()) + 2
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x"),
        status=200,
        reads=[Read(t_ns=10, data=body[:cut]), Read(t_ns=20, data=body[cut:])],
    )
    r = assemble(ex)
    assert isinstance(r, ChatCompletion)
    assert msg(r)["content"] == "東京🙂"
    # The first event is only complete once the second read arrives.
    assert r.outcome.t_first_ns == 20 and r.outcome.t_last_ns == 20
    assert assemble(ex.reads).to_dict() == r.to_dict()


def test_e7_lone_surrogates_fall_back_to_json_and_join() -> None:
    body = (
        sse(chunk(ch(role="assistant", content="a")), done=False)
        + b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":'
        b'[{"index":0,"delta":{"content":"\\ud83d"}}]}\n\n'
        + b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":'
        b'[{"index":0,"delta":{"content":"\\ude42b"},"finish_reason":"stop"}]}\n\n'
        + b"data: [DONE]\n\n"
    )
    r = chat(body)
    assert msg(r)["content"] == "a🙂b"
    fallbacks = [p for p in r.outcome.problems if p.kind == "json_fallback"]
    assert [p.event_index for p in fallbacks] == [1, 2]
    assert fallbacks[0].offset == body.index(b"data: ", 1)
    assert r.outcome.ok  # a fallback is a note, not a failure
    r.to_json()  # no lone surrogate left to break encoding


def test_e7_unpaired_surrogate_is_replaced() -> None:
    body = sse(done=False) + (
        b'data: {"object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"x\\ud83d"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    assert msg(chat(body))["content"] == "x\ufffd"


def test_e8_nan_and_minus_infinity_logprobs() -> None:
    raw = (
        b'data: {"object":"chat.completion.chunk","id":"c","choices":[{"index":0,'
        b'"delta":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":-Infinity,'
        b'"bytes":null,"top_logprobs":[]},{"token":"y","logprob":NaN,"bytes":null,'
        b'"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"}]}\n\n'
    )
    r = chat(sse(raw))
    lp = r.choices[0].logprobs
    assert lp is not None
    assert lp["content"][0]["logprob"] == -math.inf
    assert math.isnan(lp["content"][1]["logprob"])
    assert kinds(r) == ["json_fallback"]
    assert r.outcome.problems[0].event_index == 0


def test_e9_usage_in_penultimate_chunk_is_kept() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    body = sse(chunk(ch(role="assistant", content="x"), usage=usage), chunk(ch(finish="stop")))
    assert chat(body).usage == usage


def test_e9_cumulative_usage_on_every_chunk_last_wins() -> None:
    body = sse(
        chunk(ch(content="a"), usage={"completion_tokens": 1}),
        chunk(ch(content="b"), usage={"completion_tokens": 2}),
        chunk(ch(finish="stop"), usage=None),
    )
    assert chat(body).usage == {"completion_tokens": 2}


def test_e10_e23_mid_stream_error_keeps_the_partial_and_says_where() -> None:
    err = {"error": {"message": "overloaded", "code": 529}}
    body = sse(*BASIC[:2], err, done=False)
    r = chat(body)
    assert msg(r)["content"] == "Hel"
    assert r.outcome.error == {"message": "overloaded", "code": 529}
    assert not r.outcome.ok and r.usage is None
    p = next(p for p in r.outcome.problems if p.kind == "error_event")
    assert p.event_index == 2 and p.offset == body.index(b'data: {"error"')
    assert "overloaded" in p.message
    assert "missing_done" in kinds(r)


def test_e23_event_error_without_error_key_is_an_error() -> None:
    body = sse(*BASIC[:2], b'event: error\ndata: {"message": "boom"}\n\n', done=False)
    r = chat(body)
    assert r.outcome.error == {"message": "boom"} and msg(r)["content"] == "Hel"


def test_e23_openrouter_finish_reason_error_is_stored() -> None:
    r = chat(sse(BASIC[0], chunk(ch(content="x", finish="error"))))
    assert r.choices[0].finish_reason == "error"


def test_e11_empty_choices_first_and_last() -> None:
    body = sse(chunk(), *BASIC, chunk(usage={"total_tokens": 3}))
    r = chat(body)
    assert msg(r)["content"] == "Hello" and r.usage == {"total_tokens": 3}


def test_e12_azure_filter_chunks_are_skipped() -> None:
    placeholder = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [{"prompt_index": 0}],
    }
    late_filter = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [{"index": 0, "finish_reason": None, "content_filter_offsets": {}}],
    }
    r = chat(sse(placeholder, *BASIC, late_filter))
    assert r.id == "chatcmpl-1" and msg(r)["content"] == "Hello"
    assert kinds(r) == ["skipped_chunk", "skipped_chunk"]
    assert r.outcome.ok


def test_e13_role_in_every_chunk() -> None:
    body = sse(
        chunk(ch(role="assistant", content="a")),
        chunk(ch(role="assistant", content="b", finish="stop")),
    )
    assert msg(chat(body))["role"] == "assistant"


def tool(
    index: int | None = 0,
    id: str | None = None,
    name: str | None = None,
    args: str | None = None,
    type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    t: dict[str, Any] = dict(extra)
    if index is not None:
        t["index"] = index
    if id is not None:
        t["id"] = id
    if type is not None:
        t["type"] = type
    fn = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    if fn:
        t["function"] = fn
    return t


def calls(r: ChatCompletion) -> list[tuple[str | None, str, str | None, str]]:
    return [
        (t["id"], t["type"], t["function"]["name"], t["function"]["arguments"])
        for t in msg(r).get("tool_calls", [])
    ]


def tool_body(*frags: list[dict[str, Any]], finish: str = "tool_calls") -> bytes:
    return sse(
        chunk(ch(role="assistant", content=None)),
        *[chunk(ch(tool_calls=f)) for f in frags],
        chunk(ch(finish=finish)),
    )


def test_e14_id_and_name_repeated_in_every_fragment() -> None:
    r = chat(
        tool_body(
            [tool(0, "call_a", "f", "", "function")],
            [tool(0, "call_a", "f", '{"x"', "function")],
            [tool(0, "call_a", "f", ":1}", "function")],
        )
    )
    assert calls(r) == [("call_a", "function", "f", '{"x":1}')]


def test_e15_several_fragments_for_one_index_in_one_chunk() -> None:
    r = chat(tool_body([tool(0, "call_a", "f", '{"a"', "function"), tool(0, args=":1}")]))
    assert calls(r) == [("call_a", "function", "f", '{"a":1}')]


def test_e16_missing_tool_index() -> None:
    r = chat(
        tool_body(
            [tool(None, "call_a", "f", "{", "function")],
            [tool(None, args="}")],
            [tool(None, "call_b", "g", "[", "function")],
            [tool(None, args="]")],
        )
    )
    assert calls(r) == [("call_a", "function", "f", "{}"), ("call_b", "function", "g", "[]")]
    assert [t["index"] for t in msg(r)["tool_calls"]] == [0, 1]


def test_e17_parallel_calls_all_at_index_zero_with_different_ids() -> None:
    r = chat(
        tool_body(
            [tool(0, "call_a", "f", "{}", "function")],
            [tool(0, "call_b", "g", "", "function")],
            [tool(0, args="{}")],
        )
    )
    assert calls(r) == [("call_a", "function", "f", "{}"), ("call_b", "function", "g", "{}")]


def test_e18_sparse_tool_indices_starting_at_one() -> None:
    r = chat(
        tool_body(
            [tool(1, "call_a", "f", "{", "function")],
            [tool(3, "call_b", "g", "[", "function")],
            [tool(1, args="}")],
            [tool(3, args="]")],
        )
    )
    assert calls(r) == [("call_a", "function", "f", "{}"), ("call_b", "function", "g", "[]")]
    assert [t["index"] for t in msg(r)["tool_calls"]] == [0, 1]


def test_e19_e22_id_only_in_first_fragment_and_finish_stop() -> None:
    r = chat(
        tool_body([tool(0, "call_a", "f", "", "function")], [tool(0, args="{}")], finish="stop")
    )
    assert calls(r) == [("call_a", "function", "f", "{}")]
    assert r.choices[0].finish_reason == "stop"


def test_e20_choices_first_seen_out_of_order() -> None:
    body = sse(
        chunk(ch(1, role="assistant", content="B")),
        chunk(ch(0, role="assistant", content="A")),
        chunk(ch(1, finish="stop"), ch(0, finish="length")),
    )
    r = chat(body)
    assert [(c.index, c.message.content, c.finish_reason) for c in r.choices] == [
        (0, "A", "length"),
        (1, "B", "stop"),
    ]


def test_e21_empty_finish_reason_on_every_chunk() -> None:
    body = sse(
        chunk(ch(role="assistant", content="a", finish="")),
        chunk(ch(content="b", finish="stop")),
        chunk(ch(content="c", finish="")),
    )
    r = chat(body)
    assert r.choices[0].finish_reason == "stop" and msg(r)["content"] == "abc"


def test_e24_llama_cpp_error_field_is_reported_as_empty_stream() -> None:
    r = chat(b'error: {"message": "bad"}\n\n')
    assert kinds(r) == ["missing_done", "empty"] and not r.outcome.ok


def test_e25_missing_done() -> None:
    r = chat(sse(*BASIC, done=False))
    assert msg(r)["content"] == "Hello"
    assert kinds(r) == ["missing_done"] and not r.outcome.done and not r.outcome.ok


def test_e26_done_without_trailing_blank_line() -> None:
    r = chat(sse(*BASIC, done=False) + b"data: [DONE]")
    assert r.outcome.ok and msg(r)["content"] == "Hello"


def test_truncated_last_event_is_flushed_and_flagged() -> None:
    body = sse(*BASIC, done=False)[:-2]  # the last event loses its blank line
    r = chat(body)
    assert r.choices[0].finish_reason == "stop"
    p = next(p for p in r.outcome.problems if p.kind == "truncated_tail")
    assert p.event_index == 3 and p.offset == body.rindex(b"data: ")


def test_truncated_mid_json_keeps_earlier_chunks() -> None:
    body = sse(*BASIC, done=False)
    cut = body[: len(body) - 20]
    r = chat(cut)
    assert msg(r)["content"] == "Hello"
    assert {"truncated_tail", "invalid_json", "missing_done"} <= set(kinds(r))


def test_non_json_data_is_reported_with_index_and_offset() -> None:
    body = sse(BASIC[0], b"data: not json\n\n", *BASIC[1:])
    r = chat(body)
    assert msg(r)["content"] == "Hello"
    p = next(p for p in r.outcome.problems if p.kind == "invalid_json")
    assert p.event_index == 1 and p.offset == body.index(b"data: not")
    assert not r.outcome.ok


def test_json_that_is_not_a_chunk() -> None:
    r = chat(sse(BASIC[0], b"data: [1, 2]\n\n", b'data: {"choices": 5}\n\n', *BASIC[1:]))
    assert msg(r)["content"] == "Hello"
    assert kinds(r) == ["invalid_json", "invalid_chunk"]


def test_events_after_done_are_noted_not_assembled() -> None:
    body = sse(*BASIC) + sse(chunk(ch(content="late")), done=False)
    r = chat(body)
    assert msg(r)["content"] == "Hello" and kinds(r) == ["after_done"]


def test_e27_reasoning_content_and_reasoning() -> None:
    body = sse(
        chunk(ch(role="assistant", content="", reasoning_content="th")),
        chunk(ch(content="", reasoning_content="ink", reasoning="r")),
        chunk(ch(content="ok", finish="stop")),
    )
    m = msg(chat(body))
    assert (m["reasoning_content"], m["reasoning"], m["content"]) == ("think", "r", "ok")


def test_e28_obfuscation_is_dropped() -> None:
    r = chat(sse(*[{**c, "obfuscation": "xyz"} for c in BASIC]))
    assert "obfuscation" not in r.to_dict()


def test_e29_audio_fragments() -> None:
    body = sse(
        chunk(ch(role="assistant", audio={"id": "au_1", "transcript": "he"})),
        chunk(ch(audio={"id": "au_1", "transcript": "llo", "data": "AAA"})),
        chunk(ch(audio={"data": "BBB"})),
        chunk(ch(audio={"expires_at": 100})),
        chunk(ch(audio={"expires_at": 100})),
    )
    r = chat(body)
    assert msg(r)["audio"] == {
        "id": "au_1",
        "transcript": "hello",
        "data": "AAABBB",
        "expires_at": 100,
    }
    assert r.choices[0].finish_reason is None


def test_e30_annotations_in_several_chunks_extend() -> None:
    a1 = {"type": "url_citation", "url_citation": {"url": "https://a"}}
    a2 = {"type": "url_citation", "url_citation": {"url": "https://b"}}
    body = sse(
        chunk(ch(role="assistant", content="x")),
        chunk(ch(annotations=[a1])),
        chunk(ch(annotations=[a2], finish="stop")),
    )
    assert msg(chat(body))["annotations"] == [a1, a2]


def test_e31_content_as_list_of_parts() -> None:
    part = {"type": "text", "text": "hi"}
    body = sse(chunk(ch(role="assistant", content=[part])), chunk(ch(content=[part])))
    assert msg(chat(body))["content"] == [part, part]


def test_e32_null_choices_null_delta_missing_index() -> None:
    body = sse(
        {**TOP, "choices": None},
        chunk({"delta": {"role": "assistant", "content": "a"}}),
        chunk({"index": 0, "delta": None, "finish_reason": "stop", "logprobs": None}),
        chunk({"index": 0}),
    )
    r = chat(body)
    assert msg(r)["content"] == "a" and r.choices[0].finish_reason == "stop" and r.outcome.ok


def test_e33_unknown_keys_are_kept_first_chunk_or_first_appearance() -> None:
    body = sse(
        chunk(
            ch(role="assistant", content="a", x_delta="p"),
            provider="OpenAI",
            x_groq={"id": "req_1"},
        ),
        chunk(
            {**ch(content="b", x_delta="q"), "native_finish_reason": "first"},
            provider="Other",
        ),
        chunk({**ch(finish="stop"), "native_finish_reason": "later"}),
    )
    r = chat(body)
    d = r.to_dict()
    assert d["provider"] == "OpenAI" and d["x_groq"] == {"id": "req_1"}
    assert d["choices"][0]["native_finish_reason"] == "first"
    assert d["choices"][0]["message"]["x_delta"] == "pq"
    assert d["choices"][0]["message"]["content"] == "ab"
    assert r.outcome.ok


def test_e33_tool_call_extras_are_kept() -> None:
    r = chat(tool_body([tool(0, "c", "f", "{}", "function", extra_content={"sig": "s"})]))
    assert msg(r)["tool_calls"][0]["extra_content"] == {"sig": "s"}


def test_e34_non_stream_chat_completion_body() -> None:
    full = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {"total_tokens": 3},
        "system_fingerprint": None,
        "provider": "X",
    }
    r = chat(json.dumps(full).encode())
    assert r.to_dict() == full
    assert r.outcome.ok and not r.outcome.streamed


def test_e34_json_error_body() -> None:
    r = chat(b'{"error": {"message": "Invalid API key", "type": "auth"}}')
    assert r.outcome.error == {"message": "Invalid API key", "type": "auth"}
    assert kinds(r) == ["error_event"] and not r.outcome.ok


def test_e35_null_type_id_name_on_continuations() -> None:
    r = chat(
        tool_body(
            [tool(0, "call_a", "f", "", "function")],
            [{"index": 0, "id": None, "type": None, "function": {"name": None, "arguments": "{}"}}],
        )
    )
    assert calls(r) == [("call_a", "function", "f", "{}")]


def test_e35_no_type_at_all_defaults_to_function() -> None:
    r = chat(tool_body([tool(0, "call_a", "f", "{}")]))
    assert calls(r) == [("call_a", "function", "f", "{}")]


def test_e36_id_lines_and_extra_blank_lines() -> None:
    body = b"".join(
        b"id: " + str(i).encode() + b"\ndata: " + json.dumps(c).encode() + b"\n\n\n"
        for i, c in enumerate(BASIC)
    )
    r = chat(body + b"data: [DONE]\n\n")
    assert msg(r)["content"] == "Hello" and r.outcome.ok


def test_logprobs_of_a_choice_first_seen_later_are_not_duplicated() -> None:
    tok = {"token": "b", "logprob": -1.0, "bytes": None, "top_logprobs": []}
    body = sse(
        chunk(ch(0, role="assistant", content="a")),
        chunk({**ch(1, role="assistant", content="b"), "logprobs": {"content": [tok]}}),
        chunk({**ch(1, content="c"), "logprobs": {"content": [tok], "refusal": None}}),
    )
    lp = chat(body).choices[1].logprobs
    assert lp == {"content": [tok, tok], "refusal": None}


def test_refusal_and_refusal_logprobs() -> None:
    tok = {"token": "no", "logprob": -0.1, "bytes": None, "top_logprobs": []}
    body = sse(
        chunk({**ch(role="assistant", refusal=""), "logprobs": {"content": None, "refusal": []}}),
        chunk({**ch(refusal="I can't"), "logprobs": {"content": None, "refusal": [tok]}}),
        chunk(ch(finish="stop")),
    )
    r = chat(body)
    assert msg(r)["refusal"] == "I can't" and msg(r)["content"] is None
    assert r.choices[0].logprobs == {"content": None, "refusal": [tok]}


def test_legacy_function_call() -> None:
    body = sse(
        chunk(ch(role="assistant", content=None, function_call={"name": "f", "arguments": ""})),
        chunk(ch(function_call={"arguments": '{"a":'})),
        chunk(ch(function_call={"arguments": "1}"})),
        chunk(ch(finish="function_call")),
    )
    r = chat(body)
    assert msg(r)["function_call"] == {"name": "f", "arguments": '{"a":1}'}
    assert r.choices[0].finish_reason == "function_call"


def test_top_level_first_chunk_and_last_non_null_fingerprint() -> None:
    body = sse(
        chunk(ch(role="assistant", content="a"), system_fingerprint="fp1", service_tier="default"),
        chunk(ch(content="b"), id="other", model="other", system_fingerprint="fp2"),
        chunk(ch(finish="stop"), system_fingerprint=None, service_tier="flex"),
    )
    d = chat(body).to_dict()
    assert (d["id"], d["model"], d["created"]) == ("chatcmpl-1", "m", 7)
    assert d["system_fingerprint"] == "fp2" and d["service_tier"] == "default"


# ----------------------------------------------------------------------- text completions

TEXT_TOP = {"id": "cmpl-1", "object": "text_completion", "created": 3, "model": "instruct"}


def tchunk(index: int, text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        **TEXT_TOP,
        "choices": [{"index": index, "text": text, "finish_reason": finish, **extra}],
    }


def test_text_completion_interleaved_choices_and_logprobs() -> None:
    lp1 = {"tokens": ["a"], "token_logprobs": [None], "top_logprobs": [None], "text_offset": [5]}
    lp2 = {"tokens": ["b"], "token_logprobs": [-0.5], "top_logprobs": None, "text_offset": [6]}
    body = sse(
        tchunk(1, "X", logprobs=None),
        tchunk(0, "a", logprobs=lp1),
        tchunk(1, "Y", "length", logprobs=None, stop_reason=None),
        tchunk(0, "b", logprobs=lp2, stop_reason="\n"),
        tchunk(0, "", "stop", logprobs=None),
        {**TEXT_TOP, "choices": [], "usage": {"total_tokens": 9}},
    )
    r = assemble(body)
    assert isinstance(r, TextCompletion)
    d = r.to_dict()
    assert d["object"] == "text_completion" and d["usage"] == {"total_tokens": 9}
    c0, c1 = d["choices"]
    assert (c0["text"], c0["finish_reason"], c0["stop_reason"]) == ("ab", "stop", "\n")
    assert c0["logprobs"] == {
        "tokens": ["a", "b"],
        "token_logprobs": [None, -0.5],
        "top_logprobs": [None],
        "text_offset": [5, 6],
    }
    assert (c1["text"], c1["finish_reason"], c1["logprobs"]) == ("XY", "length", None)
    assert r.outcome.ok
    assert r.to_openai().choices[0].text == "ab"


def test_text_completion_non_stream_body() -> None:
    full = {
        **TEXT_TOP,
        "choices": [{"index": 0, "text": "hi", "finish_reason": "stop", "logprobs": None}],
    }
    r = assemble(json.dumps(full).encode())
    assert isinstance(r, TextCompletion)
    assert r.to_dict() == {**full, "usage": None, "system_fingerprint": None}


def _both_paths(body: bytes) -> TextCompletion:
    """The whole-body result, checked equal to the event-by-event (slow) path's."""
    fast, slow = assemble(body), _slow(body, None)
    assert isinstance(fast, TextCompletion) and isinstance(slow, TextCompletion)
    assert fast.to_dict() == slow.to_dict()
    assert fast.outcome == slow.outcome
    return fast


def test_text_fast_path_plain_stream_equals_slow_path() -> None:
    body = sse(
        *(tchunk(0, w) for w in ["Hel", "lo", " ", "w\u00f6rld \U0001f642"]),
        tchunk(0, "", "length", logprobs=None),
        {**TEXT_TOP, "choices": [], "usage": {"total_tokens": 9}, "system_fingerprint": "fp"},
    )
    r = _both_paths(body)
    assert r.choices[0].text == "Hello w\u00f6rld \U0001f642"
    assert (r.choices[0].finish_reason, r.usage, r.system_fingerprint) == (
        "length",
        {"total_tokens": 9},
        "fp",
    )
    assert r.outcome.ok and (r.outcome.events, r.outcome.chunks) == (7, 6)


@pytest.mark.parametrize(
    "odd",
    [
        {"choices": [{"index": 0, "text": "x", "stop_reason": 5}]},  # unknown choice key
        {"choices": [{"index": 0, "text": "x"}], "provider": "p"},  # unknown chunk key
        {"choices": [{"index": 0, "text": None}]},  # null text
        {"choices": None},  # null choices
        {"choices": [{"index": 0, "text": "x"}], "object": None},  # null object
        {"choices": [{"text": "x"}], "object": "chat.completion.chunk"},  # foreign object
        {"error": {"message": "boom"}},  # mid-stream error
        {"choices": [{"index": 0, "text": "x"}], "service_tier": "default"},
        {"choices": [{"index": 2, "text": "x"}, {"text": "y", "finish_reason": "stop"}]},
        {"choices": [{"index": 0}], "id": 5},  # not a chunk: invalid_chunk
    ],
)
def test_text_fast_path_odd_chunks_equal_slow_path(odd: dict[str, Any]) -> None:
    second = {k: v for k, v in TEXT_TOP.items() if k != "object"}  # object is optional
    body = sse(
        tchunk(0, "a"),
        {**second, "choices": [{"index": 0, "text": "b"}]},
        {**TEXT_TOP, **odd},
        tchunk(0, "c", "stop"),
    )
    _both_paths(body)


def test_text_unknown_keys_are_kept_on_the_fast_path() -> None:
    body = sse(
        {**tchunk(0, "a", stop_reason=None), "x_gateway": {"id": 1}},
        tchunk(0, "b", "stop", stop_reason="\n", token_ids=[3]),
    )
    r = _both_paths(body)
    d = r.to_dict()
    assert d["x_gateway"] == {"id": 1}
    assert (d["choices"][0]["stop_reason"], d["choices"][0]["token_ids"]) == ("\n", [3])


def test_text_fast_path_first_chunk_without_object_is_chat() -> None:
    first = {k: v for k, v in TEXT_TOP.items() if k != "object"}
    body = sse({**first, "choices": [{"index": 0, "text": "a"}]}, tchunk(0, "b"))
    fast, slow = assemble(body), _slow(body, None)
    assert isinstance(fast, ChatCompletion) and fast.to_dict() == slow.to_dict()
    assert fast.outcome == slow.outcome


def test_text_fast_path_logprobs_and_interleaved_choices_equal_slow_path() -> None:
    lp = {"tokens": ["a"], "token_logprobs": [-1.0], "top_logprobs": None, "text_offset": [0]}
    body = sse(
        tchunk(1, "X", logprobs=lp),
        tchunk(0, "a", logprobs=None),
        tchunk(0, "b", logprobs=lp),
        tchunk(1, "Y", "length", logprobs=lp),
        tchunk(0, "", "stop", logprobs=None),
    )
    r = _both_paths(body)
    assert [c.text for c in r.choices] == ["ab", "XY"]
    assert r.choices[1].logprobs is not None and r.choices[1].logprobs["tokens"] == ["a", "a"]


@pytest.mark.parametrize(
    "between",
    [b"{}\n\n", b" {}\n\n", b"event: x\n", b": keepalive\n\n", b"data:{}\n\n", b"\n"],
)
def test_text_fast_path_other_lines_go_to_the_sse_parser(between: bytes) -> None:
    body = sse(tchunk(0, "a"), between, tchunk(0, "b", "stop"))
    _both_paths(body)


def test_text_fast_path_timing_from_reads() -> None:
    body = sse(tchunk(0, "a"), tchunk(0, "b", "stop"))
    cut = body.index(b"\n\n") + 2
    r = assemble([Read(t_ns=10, data=body[:cut]), Read(t_ns=20, data=body[cut:])])
    assert (r.outcome.t_first_ns, r.outcome.t_last_ns) == (10, 20)
    assert r.choices[0].text == "ab"  # type: ignore[union-attr]


# ----------------------------------------------------------------------- API surface


def test_incremental_feed_snapshot_finish() -> None:
    asm = Assembler()
    asm.feed(json.dumps(BASIC[0]).encode(), event_index=0, offset=0, t_ns=5)
    asm.feed(json.dumps(BASIC[1]).encode(), event_index=1, offset=100, t_ns=9)
    snap = asm.snapshot()
    assert snap.choices[0].message.content == "Hel"  # type: ignore[union-attr]
    asm.feed(json.dumps(BASIC[2]).encode())
    assert snap.choices[0].message.content == "Hel"  # type: ignore[union-attr]
    asm.feed_event(b"[DONE]", 3)
    final = asm.finish()
    assert final.choices[0].message.content == "Hello"  # type: ignore[union-attr]
    assert final.outcome.done and (final.outcome.t_first_ns, final.outcome.t_last_ns) == (5, 9)


def test_snapshot_before_any_chunk_is_empty() -> None:
    r = Assembler().finish()
    assert isinstance(r, ChatCompletion) and r.choices == []
    assert kinds(r) == ["missing_done", "empty"]


def test_exchange_transport_error_is_a_problem() -> None:
    body = sse(*BASIC[:2], done=False)
    ex = Exchange(
        request=RecordedRequest(method="POST", url="http://x"),
        status=200,
        reads=[Read(t_ns=1, data=body)],
        outcome=Outcome.UPSTREAM_ERROR,
        error="connection reset",
        end_ns=50,
    )
    r = assemble(ex)
    p = next(p for p in r.outcome.problems if p.kind == "transport")
    assert "connection reset" in p.message and p.offset == len(body) and p.t_ns == 50
    assert r.choices[0].message.content == "Hel"  # type: ignore[union-attr]


def test_to_openai_chat_partial_result() -> None:
    r = chat(sse(*BASIC[:2], done=False))
    sdk = r.to_openai()
    assert sdk.choices[0].message.content == "Hel" and sdk.choices[0].finish_reason is None


def test_garbage_never_raises() -> None:
    for body in [b"", b"\xff\xfe\x00", b"data: {", b"{", b"[]", b"data: \xff\n\n", b"\n\n\n"]:
        r = assemble(body)
        assert not r.outcome.ok
