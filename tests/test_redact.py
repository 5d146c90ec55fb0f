"""Redaction: what is replaced, what is kept, and the fail-closed scan."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import msgspec
import pytest

from streamtape.core.exchange import Exchange, Headers, Read, RecordedRequest
from streamtape.core.redact import (
    DEFAULT_HEADERS,
    PLACEHOLDER,
    Finding,
    RedactConfigError,
    RedactOptions,
    Redactor,
    is_sensitive_header,
    scan_text,
)
from streamtape.errors import SecretLeakError, StreamtapeError

OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 6
GOOGLE_KEY = "AIza" + "S" * 35


def _ex(
    headers: Headers | None = None,
    url: str = "https://api.openai.com/v1/chat/completions",
    body: bytes = b"",
    response_headers: Headers | None = None,
) -> Exchange:
    return Exchange(
        request=RecordedRequest(method="POST", url=url, headers=headers or [], body=body),
        status=200,
        response_headers=response_headers or [],
        reads=[Read(5, b"data: {}\n\n")],
    )


@pytest.mark.parametrize("name", sorted(DEFAULT_HEADERS))
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_every_default_header_is_redacted_in_requests_and_responses(
    name: str, case: Callable[[str], str]
) -> None:
    sent = case(name)
    ex = _ex(headers=[(sent, "value-1"), ("accept", "*/*")], response_headers=[(sent, "value-2")])
    out = Redactor().apply(ex)
    assert out.request.headers == [(sent, PLACEHOLDER), ("accept", "*/*")]
    assert out.response_headers == [(sent, PLACEHOLDER)]
    assert out.redacted == [f"request.header:{name}", f"response.header:{name}"]


@pytest.mark.parametrize(
    "name",
    [
        "x-auth-token",
        "X-Session-Id",
        "x-client-secret",
        "x-amz-security-token",
        "my_api_key",
        "X-ApiKey",
        "x-csrf-token",
        "x-access-key",
        "x-goog-signature",
        "cookie2",
    ],
)
def test_sensitive_header_names_by_word(name: str) -> None:
    assert is_sensitive_header(name)
    out = Redactor().apply(_ex(headers=[(name, "v")]))
    assert out.request.headers == [(name, PLACEHOLDER)]


@pytest.mark.parametrize(
    "name",
    [
        "content-type",
        "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-tokens-limit",
        "x-request-id",
        "openai-processing-ms",
        "www-authenticate",
        "access-control-allow-credentials",
        "anthropic-version",
        "openai-beta",
    ],
)
def test_ordinary_headers_are_kept(name: str) -> None:
    assert not is_sensitive_header(name)
    ex = _ex(headers=[(name, "v")], response_headers=[(name, "w")])
    out = Redactor().apply(ex)
    assert out.request.headers == [(name, "v")]
    assert out.response_headers == [(name, "w")]
    assert out.redacted == []


def test_query_params_redacted_case_insensitively_order_kept() -> None:
    url = "https://g.example/v1/models/x:generate?alt=sse&KEY=AIzaSecret&x=1&access_token=t&sig="
    out = Redactor().apply(_ex(url=url))
    assert out.request.url == (
        "https://g.example/v1/models/x:generate?alt=sse&KEY=%3Credacted%3E&x=1"
        "&access_token=%3Credacted%3E&sig="
    )
    assert out.redacted == ["request.query:KEY", "request.query:access_token"]


def test_url_password_redacted() -> None:
    out = Redactor().apply(_ex(url="https://user:hunter2@h.example/p?q=1"))
    assert out.request.url == "https://user:%3Credacted%3E@h.example/p?q=1"
    assert "request.url:password" in out.redacted


def test_extra_query_param() -> None:
    out = Redactor(query=["tenant"]).apply(_ex(url="http://h/p?tenant=abc&b=2"))
    assert out.request.url == "http://h/p?tenant=%3Credacted%3E&b=2"


def test_json_body_paths_nested_and_arrays() -> None:
    body = {
        "model": "m",
        "api_key": "k",
        "metadata": {"user": "alice", "team": "t"},
        "messages": [{"role": "user", "content": "a", "name": "bob"}, {"role": "user"}],
        "tools": [{"secret": 1}, {"secret": 2}],
    }
    raw = json.dumps(body).encode()
    r = Redactor(body_paths=["metadata.user", "messages.name", "tools.1.secret"])
    out = r.apply(_ex(headers=[("content-type", "application/json")], body=raw))
    got = json.loads(out.request.body)
    assert got["api_key"] == PLACEHOLDER  # a default path
    assert got["metadata"] == {"user": PLACEHOLDER, "team": "t"}
    assert got["messages"] == [
        {"role": "user", "content": "a", "name": PLACEHOLDER},
        {"role": "user"},
    ]
    assert got["tools"] == [{"secret": 1}, {"secret": PLACEHOLDER}]
    assert list(got) == list(body)  # key order kept
    assert out.redacted == [
        "request.body:api_key",
        "request.body:metadata.user",
        "request.body:messages.name",
        "request.body:tools.1.secret",
    ]


def test_body_without_matching_paths_is_byte_identical() -> None:
    raw = b'{ "model" : "m",  "messages": [] }'
    out = Redactor(body_paths=["metadata.user"]).apply(_ex(body=raw))
    assert out.request.body == raw
    assert out.redacted == []


def test_form_body_fields() -> None:
    headers: Headers = [("content-type", "application/x-www-form-urlencoded")]
    out = Redactor().apply(_ex(headers=headers, body=b"grant_type=x&client_secret=abc&scope=s"))
    assert out.request.body == b"grant_type=x&client_secret=%3Credacted%3E&scope=s"
    assert out.redacted == ["request.body:client_secret"]


def test_callable_runs_after_defaults() -> None:
    seen: list[Headers] = []

    def hook(ex: Exchange) -> Exchange:
        seen.append(list(ex.request.headers))
        return msgspec.structs.replace(
            ex,
            response_headers=[h for h in ex.response_headers if h[0] != "cf-ray"],
            redacted=[*ex.redacted, "response.header:cf-ray"],
        )

    r = Redactor.coerce(hook)
    out = r.apply(_ex(headers=[("authorization", "x")], response_headers=[("cf-ray", "1")]))
    assert seen == [[("authorization", PLACEHOLDER)]]
    assert out.response_headers == []
    assert out.redacted == ["request.header:authorization", "response.header:cf-ray"]


def test_hook_result_is_scanned_and_checked() -> None:
    def leaky(ex: Exchange) -> Exchange:
        return msgspec.structs.replace(ex, response_headers=[("x-echo", f"Bearer {OPENAI_KEY}")])

    with pytest.raises(SecretLeakError, match=r"response\.header:x-echo"):
        Redactor(hook=leaky).apply(_ex())
    with pytest.raises(RedactConfigError, match="not an Exchange"):
        Redactor(hook=lambda ex: None).apply(_ex())  # type: ignore[arg-type,return-value]


def test_opt_out_changes_nothing_and_does_not_scan() -> None:
    ex = _ex(
        headers=[("authorization", f"Bearer {OPENAI_KEY}")],
        url="http://h/p?key=" + GOOGLE_KEY,
        response_headers=[("set-cookie", "a=b")],
    )
    out = Redactor.coerce(False).apply(ex)
    assert out == ex


def test_coerce_shapes() -> None:
    assert "authorization" in Redactor.coerce(None).headers
    assert "authorization" in Redactor.coerce(True).headers
    r = Redactor(scan=False)
    assert Redactor.coerce(r) is r
    from_dict = Redactor.coerce({"headers": ["X-Tenant"], "query": ["t"], "body_paths": ["a.b"]})
    assert {"x-tenant", "authorization"} <= from_dict.headers
    assert {"t", "key"} <= from_dict.query
    assert "a.b" in from_dict.body_paths and "api_key" in from_dict.body_paths
    from_struct = Redactor.coerce(RedactOptions(headers=["x-tenant"], scan=False))
    assert "x-tenant" in from_struct.headers and not from_struct.scan
    with pytest.raises(RedactConfigError, match="heders") as info:
        Redactor.coerce({"heders": ["x"]})
    assert isinstance(info.value, StreamtapeError)
    with pytest.raises(RedactConfigError):
        Redactor.coerce(42)
    with pytest.raises(RedactConfigError, match="list of names"):
        Redactor(headers="x-tenant")


def test_defaults_false_keeps_only_the_extras() -> None:
    r = Redactor(headers=["x-tenant"], defaults=False, scan=False)
    out = r.apply(_ex(headers=[("x-tenant", "a"), ("authorization", "b"), ("x-auth-token", "c")]))
    assert out.request.headers == [
        ("x-tenant", PLACEHOLDER),
        ("authorization", "b"),
        ("x-auth-token", "c"),
    ]


@pytest.mark.parametrize(
    ("ex", "field"),
    [
        (_ex(headers=[("x-custom", f"Bearer {OPENAI_KEY}")]), "request.header:x-custom"),
        (_ex(headers=[("x-llm", "sk-ant-api03-abc")]), "request.header:x-llm"),
        (_ex(url=f"http://h/p?k={GOOGLE_KEY}"), "request.url"),
        (_ex(body=f'{{"note": "{OPENAI_KEY}"}}'.encode()), "request.body"),
    ],
)
def test_leak_detection_names_the_field_never_the_value(ex: Exchange, field: str) -> None:
    with pytest.raises(SecretLeakError) as info:
        Redactor().apply(ex)
    msg = str(info.value)
    assert field in msg
    assert OPENAI_KEY not in msg and GOOGLE_KEY not in msg and "sk-ant-api03" not in msg


def test_scan_off_lets_it_through() -> None:
    ex = _ex(headers=[("x-custom", OPENAI_KEY)])
    assert Redactor(scan=False).apply(ex).request.headers == [("x-custom", OPENAI_KEY)]
    assert Redactor.coerce({"scan": False}).apply(ex).request.headers == [("x-custom", OPENAI_KEY)]


def test_redacted_defaults_pass_the_scan() -> None:
    ex = _ex(
        headers=[("Authorization", f"Bearer {OPENAI_KEY}"), ("x-goog-api-key", GOOGLE_KEY)],
        url=f"https://h/p?key={GOOGLE_KEY}",
        body=json.dumps({"api_key": OPENAI_KEY, "model": "m"}).encode(),
        response_headers=[("openai-organization", "org-123"), ("set-cookie", "__cf_bm=x")],
    )
    out = Redactor().apply(ex)
    assert OPENAI_KEY.encode() not in msgspec.msgpack.encode(out)
    assert GOOGLE_KEY.encode() not in msgspec.msgpack.encode(out)


def test_original_exchange_is_not_modified() -> None:
    ex = _ex(
        headers=[("authorization", "Bearer x")],
        url="http://h/p?token=abc",
        body=b'{"api_key": "k", "metadata": {"user": "u"}}',
        response_headers=[("set-cookie", "c")],
    )
    ex.redacted.append("earlier")
    before = copy.deepcopy(ex)
    out = Redactor(body_paths=["metadata.user"], hook=lambda e: e).apply(ex)
    assert ex == before
    assert out is not ex
    assert out.redacted[0] == "earlier"
    out.reads.append(Read(9, b"more"))
    assert ex.reads == before.reads


def test_scan_text_findings() -> None:
    data = f"ok Bearer {OPENAI_KEY} then {GOOGLE_KEY} and sk-ant-api03-x".encode()
    found = scan_text(data, "f")
    kinds = [f.kind for f in found]
    assert kinds == ["bearer token", "Google API key (AIza...)", "Anthropic API key (sk-ant-...)"]
    assert found[0] == Finding("f", "bearer token", 3)
    assert scan_text("Bearer tokens are a kind of credential; sk-short") == []
    assert scan_text(PLACEHOLDER) == []
    assert scan_text(f"Bearer {PLACEHOLDER}") == []


# --------------------------------------------------------------------------- by name, any depth

HF_TOKEN = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3k"
GH_TOKEN = "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"
GH_PAT = (
    "github_pat_"
    + "11ABCDEFG0123456789abc"
    + "_"
    + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7Zy9Xw8Vu7Ts6Rq5Po4Nm3L"
)
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9" * 30
SHAPES = {
    "openai": OPENAI_KEY,
    "anthropic": ANTHROPIC_KEY,
    "google": GOOGLE_KEY,
    "huggingface": HF_TOKEN,
    "github": GH_TOKEN,
    "github_pat": GH_PAT,
    "aws": AWS_KEY,
    "slack": SLACK_TOKEN,
    "jwt": JWT,
    "bearer": "Bearer 4f8a9c0d1e2b3a4f5e6d7c8b9a0",
}


@pytest.mark.parametrize(
    "name",
    [
        "apiKey",
        "api_key",
        "api-key",
        "x-api-key",
        "APIKey",
        "Ocp-Apim-Subscription-Key",
        "subscription-key",
        "api-token",
        "x-credentials",
        "clientSecret",
        "accessToken",
        "authtoken",
        "sessionId",
        "password",
        "X-Amz-Signature",
    ],
)
def test_credential_names_in_any_spelling_everywhere(name: str) -> None:
    secret = "opaque-value-123"
    body = json.dumps({"model": "m", name: secret, "metadata": {"deep": [{name: secret}]}})
    ex = _ex(
        headers=[(name, secret), ("content-type", "application/json")],
        url=f"https://h.example/v1/x?{name}={secret}&alt=sse",
        body=body.encode(),
    )
    out = Redactor().apply(ex)
    assert out.request.headers[0] == (name, PLACEHOLDER)
    assert f"{name}=%3Credacted%3E&alt=sse" in out.request.url
    got = json.loads(out.request.body)
    assert got[name] == PLACEHOLDER and got["metadata"]["deep"][0][name] == PLACEHOLDER
    assert secret.encode() not in msgspec.msgpack.encode(out)
    assert f"request.header:{name.lower()}" in out.redacted
    assert f"request.query:{name}" in out.redacted
    assert f"request.body:metadata.deep.0.{name}" in out.redacted


def test_only_string_values_and_ordinary_names_are_kept() -> None:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 40,
        "max_completion_tokens": 40,
        "usage": {"total_tokens": 12, "prompt_tokens": 5},
        "metadata": {"token": "t-123456", "author": "ada", "tokens": "7"},
        "prompt_cache_key": "user-42",
        "tools": [{"function": {"parameters": {"properties": {"api_key": {"type": "string"}}}}}],
    }
    out = Redactor().apply(_ex(body=json.dumps(body).encode()))
    got = json.loads(out.request.body)
    expected = copy.deepcopy(body)
    expected["metadata"]["token"] = PLACEHOLDER
    assert got == expected
    assert out.redacted == ["request.body:metadata.token"]


def test_keep_list_by_name_or_path() -> None:
    body = json.dumps({"session": "s-1234567", "meta": {"token": "abc-123456", "key": "k-77777"}})
    r = Redactor(keep=["Session", "meta.token"])
    out = r.apply(_ex(headers=[("SESSION", "h-123456")], body=body.encode()))
    got = json.loads(out.request.body)
    assert got == {"session": "s-1234567", "meta": {"token": "abc-123456", "key": PLACEHOLDER}}
    assert out.request.headers == [("SESSION", "h-123456")]
    assert Redactor.coerce({"keep": ["x-session"]}).apply(
        _ex(headers=[("X-Session", "v")])
    ).request.headers == [("X-Session", "v")]


def test_form_fields_by_name() -> None:
    headers: Headers = [("content-type", "application/x-www-form-urlencoded")]
    raw = b"grant_type=x&apiToken=abc%2Fdef123&subscription-key=zz9988&scope=s"
    out = Redactor().apply(_ex(headers=headers, body=raw))
    assert out.request.body == (
        b"grant_type=x&apiToken=%3Credacted%3E&subscription-key=%3Credacted%3E&scope=s"
    )


def test_gzip_request_body_is_redacted_and_encoded_again_deterministically() -> None:
    import gzip

    plain = json.dumps({"model": "m", "api_key": OPENAI_KEY, "messages": []}).encode()
    headers: Headers = [("content-encoding", "gzip"), ("content-type", "application/json")]
    ex = _ex(headers=headers, body=gzip.compress(plain, mtime=123))
    r = Redactor()
    out = r.apply(ex)
    assert json.loads(gzip.decompress(out.request.body))["api_key"] == PLACEHOLDER
    assert out.request.header("content-encoding") == "gzip"
    assert "request.body:api_key" in out.redacted
    # replay redacts the sent request the same way: the same bytes come out
    again, _ = r.redact_request(ex.request)
    assert again.body == out.request.body
    # an untouched gzip body stays byte-identical
    quiet = _ex(headers=headers, body=gzip.compress(b'{"model": "m"}', mtime=5))
    assert r.apply(quiet).request.body == quiet.request.body


def test_undecodable_encoded_request_body_is_refused() -> None:
    ex = _ex(headers=[("content-encoding", "br")], body=b"\x8b\x02\x80hello")
    with pytest.raises(SecretLeakError, match="unreadable br-encoded body"):
        Redactor().apply(ex)


# --------------------------------------------------------------------------- echoes and masks


def _sse(*payloads: str) -> list[Read]:
    return [Read(10 * (i + 1), f"data: {p}\n\n".encode()) for i, p in enumerate(payloads)]


def test_redacted_values_are_masked_wherever_else_they_appear_same_length() -> None:
    key = "gw-opaque-secret-9931"
    body = json.dumps({"model": "m", "apiKey": key, "messages": [{"content": f"mine is {key}"}]})
    reads = _sse(
        json.dumps({"echo": {"x-api-key": key}}),
        json.dumps({"url": f"/v1?api-token={key}"}),
    )
    # the key split across a read boundary as well
    split = f"data: {{'k': '{key}'}}\n\n".encode()
    reads += [Read(40, split[:15]), Read(50, split[15:])]
    ex = Exchange(
        request=RecordedRequest(
            method="POST",
            url=f"https://h.example/v1/{key}/x?api-token={key}",
            headers=[("x-api-key", key), ("x-trace", f"t={key}")],
            body=body.encode(),
        ),
        status=200,
        response_headers=[("x-echo", key), ("content-type", "text/event-stream")],
        reads=reads,
    )
    out = Redactor().apply(ex)
    blob = msgspec.msgpack.encode(out)
    assert key.encode() not in blob
    assert [len(r.data) for r in out.reads] == [len(r.data) for r in ex.reads]
    assert [r.t_ns for r in out.reads] == [r.t_ns for r in ex.reads]
    masked = out.body
    assert masked.count(b"<redacted***********>") == 3
    assert out.response_headers[0] == ("x-echo", "<redacted***********>")
    assert out.request.url.startswith("https://h.example/v1/<redacted***********>/x?")
    assert "response.body (copy of request.header:x-api-key)" in out.redacted
    assert "response.header:x-echo (copy of request.header:x-api-key)" in out.redacted
    assert "request.header:x-trace (copy of request.header:x-api-key)" in out.redacted
    assert any(name.startswith("request.body (copy of") for name in out.redacted)
    assert json.loads(out.request.body)["messages"][0]["content"].startswith("mine is <redacted")


def test_echo_inside_a_gzip_response_body() -> None:
    import gzip

    key = "opaque-gw-secret-4242"
    plain = json.dumps({"echo": {"subscription-key": key}, "n": 1}).encode()
    packed = gzip.compress(plain)
    ex = Exchange(
        request=RecordedRequest(method="GET", url=f"https://h/x?subscription-key={key}"),
        status=200,
        response_headers=[("content-encoding", "gzip"), ("content-length", str(len(packed)))],
        reads=[Read(1, packed[:10]), Read(2, packed[10:])],
    )
    out = Redactor().apply(ex)
    got = gzip.decompress(out.body)
    assert key.encode() not in got and len(got) == len(plain)
    assert out.response_header("content-length") == str(len(out.body))
    assert [r.t_ns for r in out.reads] == [1, 2]
    assert "response.body (copy of request.query:subscription-key)" in out.redacted


def test_short_values_are_not_hunted_and_words_are_not_cut() -> None:
    ex = Exchange(
        request=RecordedRequest(
            method="GET", url="https://h/x?session=ab&token=123456", headers=[]
        ),
        status=200,
        reads=_sse('{"created":1234567890,"text":"ab ab","id":123456}'),
    )
    out = Redactor().apply(ex)
    assert out.body == ex.body.replace(b'"id":123456', b'"id":<reda>')


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_key_shapes_in_the_response_are_masked_not_refused(shape: str) -> None:
    value = SHAPES[shape]
    reads = _sse(json.dumps({"content": f"here: {value} ok"}))
    ex = Exchange(
        request=RecordedRequest(method="POST", url="https://h/x"),
        status=200,
        response_headers=[("x-debug", value)],
        reads=reads,
    )
    out = Redactor(scan_response=True).apply(ex)
    assert value.encode() not in out.body
    assert len(out.body) == len(ex.body)
    assert value not in out.response_headers[0][1]
    assert any(name.startswith("response.body (") for name in out.redacted)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("size", ["small", "large"])
def test_key_shapes_in_an_unnamed_request_field_are_refused(shape: str, size: str) -> None:
    value = SHAPES[shape]
    padding = "lorem ipsum " * (300 if size == "large" else 1)
    body = json.dumps({"messages": [{"content": f"{padding} {value} {padding}"}]})
    with pytest.raises(SecretLeakError, match=r"request\.body") as info:
        Redactor().apply(_ex(body=body.encode()))
    assert value not in str(info.value)


@pytest.mark.parametrize("size", ["small", "large"])
def test_json_escaped_key_is_found(size: str) -> None:
    escaped = OPENAI_KEY.replace("-", "\\u002d", 1).replace("A", "\\u0041", 2)
    pad = "x " * (2000 if size == "large" else 1)
    body = f'{{"note": "{pad}{escaped}/\\/ {pad}"}}'.encode()
    found = scan_text(body, "b")
    assert [f.kind for f in found] == ["secret key (sk-...)"]
    assert body[found[0].offset : found[0].offset + 4] == b"sk\\u"
    with pytest.raises(SecretLeakError):
        Redactor().apply(_ex(body=body))


def _ordinary_texts() -> list[bytes]:
    import base64
    import random

    rng = random.Random(7)
    image = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(150_000)))
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    ids = [
        "chatcmpl-" + "".join(rng.choice(alnum) for _ in range(29)),
        "call_" + "".join(rng.choice(alnum) for _ in range(24)),
        "resp_" + "".join(rng.choice("0123456789abcdef") for _ in range(48)),
        "msg_01" + "".join(rng.choice(alnum) for _ in range(22)),
        "toolu_01" + "".join(rng.choice(alnum) for _ in range(22)),
        "fp_44709d6fcb",
        "file-" + "".join(rng.choice(alnum) for _ in range(22)),
    ]
    prose = (
        "Bearer tokens are sent in the Authorization header: Authorization: Bearer YOUR_API_KEY. "
        "Ask for sk-... keys in the dashboard; the task-oriented sk-learn toolkit, Asia, "
        "hf_hub_download and ghp_ prefixes, xoxb tokens, eyJ starts a JWT. internationalization "
        "Donaudampfschifffahrtsgesellschaftskapitän 550e8400-e29b-41d4-a716-446655440000 "
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
    )
    events = b"".join(
        b"data: " + json.dumps({"id": ids[i % len(ids)], "delta": {"content": prose}}).encode()
        for i in range(40)
    )
    return [prose.encode(), events, image, b'{"b64_json": "' + image + b'"}', *map(str.encode, ids)]


def test_nothing_ordinary_is_taken_for_a_credential() -> None:
    for text in _ordinary_texts():
        assert scan_text(text) == []
    ex = Exchange(
        request=RecordedRequest(
            method="POST", url="https://h/x", body=b'{"messages":[{"content":"Asia"}]}'
        ),
        status=200,
        reads=[Read(i, t) for i, t in enumerate(_ordinary_texts())],
    )
    out = Redactor(scan_response=True).apply(ex)
    assert out.reads == ex.reads and out.redacted == []


def test_by_default_response_bodies_get_echo_masking_and_headers_the_scan() -> None:
    key = "gw-opaque-secret-9931"
    ex = Exchange(
        request=RecordedRequest(method="GET", url=f"https://h/x?api-token={key}"),
        status=200,
        response_headers=[("x-debug", HF_TOKEN)],
        reads=_sse(json.dumps({"echo": key, "other": GH_TOKEN})),
    )
    out = Redactor().apply(ex)
    assert key.encode() not in out.body  # copies of redacted values: always masked
    assert GH_TOKEN.encode() in out.body  # key shapes in the body: not searched by default
    assert HF_TOKEN not in out.response_headers[0][1]  # headers: searched
    scanned = Redactor.coerce({"scan_response": True}).apply(ex)
    assert GH_TOKEN.encode() not in scanned.body


def test_json_nested_too_deep_to_parse_is_still_redacted_by_name() -> None:
    secret = "opaque-deep-secret-55"
    deep = b'{"a":' * 100_000 + f'{{"apiKey": "{secret}", "n": "x"}}'.encode() + b"}" * 100_000
    out = Redactor().apply(_ex(headers=[("content-type", "application/json")], body=deep))
    assert secret.encode() not in out.request.body
    assert b'"apiKey": "<redacted>", "n": "x"' in out.request.body
    assert out.redacted == ["request.body:apiKey"]


def test_multipart_fields_by_name_files_untouched() -> None:
    body = (
        b'--xx\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b'--xx\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nopaque-123456\r\n'
        b'--xx\r\nContent-Disposition: form-data; name="token"; filename="token"\r\n\r\n'
        b"file-bytes\r\n--xx--\r\n"
    )
    headers: Headers = [("content-type", 'multipart/form-data; boundary="xx"')]
    out = Redactor().apply(_ex(headers=headers, body=body))
    assert out.request.body == body.replace(b"opaque-123456", PLACEHOLDER.encode())
    assert out.redacted == ["request.body:api_key"]
