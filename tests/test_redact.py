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
