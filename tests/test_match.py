"""Matching requests to recorded exchanges, and the diagnostics when nothing matches."""

from __future__ import annotations

import gzip
import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtape.core.exchange import Exchange, Headers, Read, RecordedRequest
from streamtape.core.match import Difference, Matcher
from streamtape.errors import MatchConfigError, NoMatchError, ReplayExhaustedError

JSON_CT: Headers = [("content-type", "application/json")]
URL = "https://api.openai.com/v1/chat/completions"


def _ex(
    method: str = "POST",
    url: str = URL,
    body: bytes | dict[str, Any] = b"",
    headers: Headers | None = None,
    answer: bytes = b"ok",
) -> Exchange:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers = JSON_CT if headers is None else headers
    return Exchange(
        request=RecordedRequest(method=method, url=url, headers=headers or [], body=body),
        status=200,
        reads=[Read(0, answer)],
    )


def _chat(content: str, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


def _match(m: Matcher, ex: Exchange) -> Exchange:
    r = ex.request
    return m.match(r.method, r.url, r.headers, r.body)


def test_json_key_order_and_whitespace_do_not_matter() -> None:
    m = Matcher([_ex(body=_chat("Hi", stream=True))])
    sent = b'{"stream": true,\n "messages": [{"content": "Hi", "role": "user"}], "model": "gpt-4o"}'
    assert m.match("POST", URL, JSON_CT, sent).body == b"ok"


def test_json_array_order_matters() -> None:
    rec = {"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]}
    sent = {"messages": [{"role": "user", "content": "b"}, {"role": "system", "content": "a"}]}
    m = Matcher([_ex(body=rec)])
    with pytest.raises(NoMatchError):
        m.match("POST", URL, JSON_CT, json.dumps(sent).encode())


def test_json_detected_without_content_type_and_gzip_decoded() -> None:
    m = Matcher([_ex(body=b'{"a": 1, "b": 2}', headers=[])])
    sent = gzip.compress(b'{"b":2,"a":1}')
    assert _match(m, _ex(body=sent, headers=[("content-encoding", "gzip")])).body == b"ok"


def test_json_number_types_are_distinct() -> None:
    m = Matcher([_ex(body={"temperature": 1})])
    with pytest.raises(NoMatchError, match=r"body\.temperature: recorded 1 != sent 1\.0"):
        m.match("POST", URL, JSON_CT, b'{"temperature": 1.0}')


@pytest.mark.parametrize(
    ("ignore", "sent_extra"),
    [
        (["stream_options"], {"stream_options": {"include_usage": True}}),
        (["user"], {"user": "someone-else"}),
        (["metadata.user"], {"metadata": {"user": "x", "keep": 1}}),
        (["messages.content"], {}),
    ],
)
def test_ignore_fields(ignore: list[str], sent_extra: dict[str, object]) -> None:
    rec = _chat("Hi", user="me", metadata={"user": "y", "keep": 1})
    sent = _chat("Hi", user="me", metadata={"user": "y", "keep": 1})
    sent.update(sent_extra)
    if ignore == ["messages.content"]:
        sent["messages"] = [{"role": "user", "content": "Hello"}]
    with pytest.raises(NoMatchError):
        _match(Matcher([_ex(body=rec)]), _ex(body=sent))
    m = Matcher([_ex(body=rec)], ignore_fields=ignore)
    assert _match(m, _ex(body=sent)).body == b"ok"


def test_ignore_fields_does_not_hide_other_fields() -> None:
    m = Matcher([_ex(body={"metadata": {"user": "a", "keep": 1}})], ignore_fields=["metadata.user"])
    with pytest.raises(NoMatchError, match=r"body\.metadata\.keep"):
        m.match("POST", URL, JSON_CT, b'{"metadata": {"user": "b", "keep": 2}}')


def test_ignore_fields_with_array_index() -> None:
    rec = {"messages": [{"content": "a"}, {"content": "b"}]}
    sent = {"messages": [{"content": "X"}, {"content": "b"}]}
    m = Matcher([_ex(body=rec)], ignore_fields=["messages.0.content"])
    assert _match(m, _ex(body=sent)).body == b"ok"
    sent2 = {"messages": [{"content": "a"}, {"content": "X"}]}
    with pytest.raises(NoMatchError):
        _match(m, _ex(body=sent2))


def test_query_order_insensitive_for_distinct_names_but_not_for_repeats() -> None:
    m = Matcher([_ex("GET", "http://h/v1/files?limit=10&after=a&tag=x&tag=y")])
    assert m.match("GET", "http://h/v1/files?tag=x&after=a&limit=10&tag=y", [], b"").status == 200
    with pytest.raises(NoMatchError, match=r'query\.tag: recorded \["x","y"\] != sent \["y","x"\]'):
        m.match("GET", "http://h/v1/files?limit=10&after=a&tag=y&tag=x", [], b"")


def test_ignore_query_and_missing_param_diagnostic() -> None:
    m = Matcher([_ex("GET", "http://h/v1/models?limit=10")])
    with pytest.raises(NoMatchError) as info:
        m.match("GET", "http://h/v1/models", [], b"")
    msg = str(info.value)
    assert 'query.limit: recorded "10", missing in sent' in msg
    assert 'ignore_query=["limit"]' in msg
    m2 = Matcher([_ex("GET", "http://h/v1/models?limit=10")], ignore_query=["limit"])
    assert m2.match("GET", "http://h/v1/models?limit=99", [], b"").status == 200


def test_host_and_scheme_ignored_by_default_but_matchable() -> None:
    m = Matcher([_ex("GET", "https://api.openai.com/v1/models")])
    assert m.match("GET", "http://127.0.0.1:8080/v1/models", [], b"").status == 200
    strict = Matcher(
        [_ex("GET", "https://api.openai.com/v1/models")], match_on=["method", "host", "path"]
    )
    assert strict.match("GET", "https://API.openai.com:443/v1/models", [], b"").status == 200
    with pytest.raises(NoMatchError, match=r"host: recorded https://api\.openai\.com != sent http"):
        strict.match("GET", "http://127.0.0.1:8080/v1/models", [], b"")


def test_match_on_subset_ignores_body() -> None:
    m = Matcher([_ex(body=_chat("Hi"))], match_on=("method", "path"))
    assert m.match("POST", URL + "?x=1", JSON_CT, b'{"anything": 1}').body == b"ok"


def test_bad_match_on_is_rejected() -> None:
    with pytest.raises(MatchConfigError, match="headers"):
        Matcher([], match_on=["method", "headers"])


def test_custom_key_function() -> None:
    def model_header(r: RecordedRequest) -> str | None:
        return r.header("x-model")

    rec_a = _ex("GET", "http://h/x", headers=[("x-model", "a")], answer=b"A")
    rec_b = _ex("GET", "http://h/x", headers=[("x-model", "b")], answer=b"B")
    m = Matcher([rec_a, rec_b], key=model_header)
    assert m.match("GET", "http://h/x", [("X-Model", "b")], b"").body == b"B"
    assert m.match("GET", "http://h/x", [("x-model", "a")], b"").body == b"A"
    with pytest.raises(NoMatchError, match='key: recorded "a" != sent "c"'):
        m.match("GET", "http://h/x", [("x-model", "c")], b"")


def _multipart(boundary: str, content: bytes) -> tuple[Headers, bytes]:
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return [("content-type", f'multipart/form-data; boundary="{boundary}"')], body


def test_multipart_ignores_random_boundary() -> None:
    headers, body = _multipart("a1b2c3d4e5", b"{}\n{}\n")
    m = Matcher([_ex(url="http://h/v1/files", headers=headers, body=body)])
    h2, b2 = _multipart("ffff0000ffff", b"{}\n{}\n")
    assert m.match("POST", "http://h/v1/files", h2, b2).body == b"ok"
    h3, b3 = _multipart("9999", b"{}\n[]\n")
    with pytest.raises(NoMatchError, match="first difference at byte"):
        m.match("POST", "http://h/v1/files", h3, b3)


def test_form_body_compared_by_fields() -> None:
    ct: Headers = [("content-type", "application/x-www-form-urlencoded")]
    m = Matcher(
        [_ex(url="http://h/t", headers=ct, body=b"a=1&b=2&nonce=x")], ignore_fields=["nonce"]
    )
    assert m.match("POST", "http://h/t", ct, b"b=2&a=1&nonce=y").body == b"ok"
    with pytest.raises(NoMatchError, match=r'body\.a: recorded "1" != sent "3"'):
        m.match("POST", "http://h/t", ct, b"a=3&b=2")


def test_repeated_requests_answer_in_recorded_order_then_exhaust() -> None:
    polls = [
        _ex("GET", "http://h/v1/batches/b1", answer=s) for s in (b"queued", b"running", b"done")
    ]
    m = Matcher(polls)
    got = [m.match("GET", "http://h/v1/batches/b1", [], b"").body for _ in range(3)]
    assert got == [b"queued", b"running", b"done"]
    assert m.unused() == []
    with pytest.raises(ReplayExhaustedError) as info:
        m.match("GET", "http://h/v1/batches/b1", [], b"")
    msg = str(info.value)
    assert "recorded 3 time(s)" in msg
    assert "all 3 answer(s) were already replayed" in msg
    assert "allow_playback_repeats=True" in msg
    m.reset()
    assert m.match("GET", "http://h/v1/batches/b1", [], b"").body == b"queued"


def test_playback_repeats_replays_last() -> None:
    polls = [_ex("GET", "http://h/p", answer=s) for s in (b"1", b"2")]
    m = Matcher(polls, allow_playback_repeats=True)
    got = [m.match("GET", "http://h/p", [], b"").body for _ in range(4)]
    assert got == [b"1", b"2", b"2", b"2"]


def test_interleaved_keys_keep_their_own_order_and_unused() -> None:
    a1, b1, a2 = (
        _ex("GET", "http://h/a", answer=b"a1"),
        _ex("GET", "http://h/b"),
        _ex("GET", "http://h/a", answer=b"a2"),
    )
    m = Matcher([a1, b1, a2])
    assert m.match("GET", "http://h/a", [], b"").body == b"a1"
    assert m.unused() == [b1, a2]
    assert len(m) == 3


def test_thread_safety_each_answer_used_once() -> None:
    n = 200
    m = Matcher([_ex("GET", "http://h/p", answer=str(i).encode()) for i in range(n)])
    got: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(n // 8):
            body = m.match("GET", "http://h/p", [], b"").body
            with lock:
                got.append(body)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got, key=int) == [str(i).encode() for i in range(n)]


def test_nearest_request_diagnostics() -> None:
    recorded = [
        _ex("GET", "https://api.openai.com/v1/models"),
        _ex(body={"model": "gpt-3.5-turbo", "messages": []}),
        _ex(body=_chat("Hi", temperature=0, user="u1")),
        _ex(url="https://api.openai.com/v1/embeddings", body={"input": "Hi"}),
    ]
    m = Matcher(recorded)
    sent = _chat("Hello", temperature=0, seed=7)
    with pytest.raises(NoMatchError) as info:
        m.match(
            "POST", "http://localhost:9/v1/chat/completions", JSON_CT, json.dumps(sent).encode()
        )
    msg = str(info.value)
    assert msg.startswith(
        "no recorded exchange matches POST http://localhost:9/v1/chat/completions"
    )
    assert "(JSON body," in msg
    assert (
        "nearest recorded request (#3 of 4): POST https://api.openai.com/v1/chat/completions" in msg
    )
    assert 'body.messages[0].content: recorded "Hi" != sent "Hello"' in msg
    assert 'body.user: recorded "u1", missing in sent' in msg
    assert "body.seed: sent 7, not in the recording" in msg
    assert "re-record" in msg
    assert 'ignore_fields=["messages.0.content", "user", "seed"]' in msg

    exp = m.explain("POST", URL, JSON_CT, json.dumps(sent).encode())
    assert exp.index == 2
    assert (
        Difference("body.user", 'recorded "u1", missing in sent', 'ignore_fields=["user"]')
        in exp.differences
    )


def test_diagnostics_prefer_same_path_and_truncate_long_values() -> None:
    long_text = "x" * 5000
    m = Matcher([_ex("GET", "http://h/other"), _ex(body=_chat(long_text))])
    with pytest.raises(NoMatchError) as info:
        m.match("POST", URL, JSON_CT, json.dumps(_chat(long_text + "y")).encode())
    msg = str(info.value)
    assert "#2 of 2" in msg
    assert len(msg) < 1000
    assert "…" in msg


def test_diagnostics_for_method_path_and_empty_cassette() -> None:
    m = Matcher([_ex("GET", "http://h/v1/models")])
    with pytest.raises(NoMatchError, match='path: recorded "/v1/models" != sent "/v1/files"'):
        m.match("GET", "http://h/v1/files", [], b"")
    with pytest.raises(NoMatchError, match="method: recorded GET != sent DELETE"):
        m.match("DELETE", "http://h/v1/models", [], b"")
    with pytest.raises(NoMatchError, match="holds no exchanges"):
        Matcher([]).match("GET", "http://h/", [], b"")


def test_diagnostics_list_length_and_kind_change() -> None:
    m = Matcher([_ex(body={"messages": [1, 2]}), _ex(url="http://h/raw", body=b"abc", headers=[])])
    with pytest.raises(
        NoMatchError, match=r"body\.messages: recorded 2 item\(s\) != sent 3 item\(s\)"
    ):
        m.match("POST", URL, JSON_CT, b'{"messages": [1, 2, 3]}')
    with pytest.raises(NoMatchError, match=r"body: recorded 3 bytes b'abc' != sent no body"):
        m.match("POST", "http://h/raw", [], b"")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.lists(st.text("abcxyz09-_.~%", min_size=1), max_size=4),
    query=st.lists(st.tuples(st.text("abqz", min_size=1), st.text(max_size=5)), max_size=5),
    body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)),
)
def test_a_request_always_matches_its_own_recording(
    method: str, path: list[str], query: list[tuple[str, str]], body: bytes
) -> None:
    from urllib.parse import urlencode

    url = "http://h/" + "/".join(path) + ("?" + urlencode(query) if query else "")
    headers: Headers = [("content-type", "application/json")] if body[:1] in (b"{", b"[") else []
    ex = _ex(method, url, body=body, headers=headers)
    m = Matcher([_ex("GET", "http://h/unrelated"), ex])
    assert m.match(method, url, headers, body) is ex
