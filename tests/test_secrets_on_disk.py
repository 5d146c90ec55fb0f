"""No secret reaches the cassette: each key shape in each place a client can put it.

Recorded through real loopback sockets: the official openai SDK (on httpx2) and raw
httpx/httpx2 clients against the simulated upstream, and against an echoing gateway
that copies the request into its response headers and body (gzipped on request).
Every cassette is then read back as bytes: each zstd frame decompressed, and the
request and response bodies decompressed again where they are content-encoded; no
form of any secret may be in there. Replay of a redacted recording still matches.
"""

from __future__ import annotations

import gzip
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import msgspec
import openai
import pytest
import zstandard

from streamtape.core.cassette import Cassette
from streamtape.core.codings import decoded_body
from streamtape.core.redact import PLACEHOLDER
from streamtape.errors import SecretLeakError
from streamtape.simulator.app import GZIP_HEADER, UpstreamServer
from streamtape.simulator.runner import LoopbackServer
from streamtape.transport import RecordingTransport, ReplayTransport
from streamtape.transport.httpcompat import HTTP_LIBS

SHAPES = {
    "openai": "sk-proj-" + "Qw3rTy7uIo9pAs1dFg5hJk2lZx4cVb6nM8" * 2,
    "anthropic": "sk-ant-api03-" + "Zx9Cv8Bn7Mq6Wz5" * 6,
    "google": "AIza" + "SyD4f7Gh2Jk9Lm3Np8Qr1St6Uv0Wx5Yz",
    "huggingface": "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3k",
    "github": "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2",
    "github_pat": "github_pat_11ABCDEFG0123456789abc_" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0" * 2,
    "aws": "AKIA" + "Z7Q2W8E4R6T1Y3U9",
    "slack": "xoxb-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "opaque": "opaque-gateway-secret-8841",
}
"""Every provider key shape, and one value that only its field's name gives away."""

PLACES = [
    "header:Ocp-Apim-Subscription-Key",
    "header:x-credentials",
    "query:subscription-key",
    "query:api-token",
    "json:apiKey",
    "json:metadata.token",
    "json:config.0.auth.clientSecret",
    "form:api_key",
    "multipart:subscriptionKey",
    "gzip-json:api_key",
]
HI = [{"role": "user", "content": "Tell me about streams."}]


def forms(secret: str) -> list[bytes]:
    """Every spelling of a secret that would still give it away on disk."""
    texts = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return [t.encode() for t in texts]


def cassette_texts(path: Path) -> Iterator[bytes]:
    """The cassette's bytes as a reader without streamtape would see them, decoded deeply."""
    raw = path.read_bytes()
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    yield reader.read()
    yield raw
    for exchange in Cassette.open(path):
        yield decoded_body(exchange.request.headers, exchange.request.body)
        yield decoded_body(exchange.response_headers, exchange.body)


def assert_not_on_disk(path: Path, secret: str) -> None:
    assert path.exists()
    for text in cassette_texts(path):
        for form in forms(secret):
            assert form not in text, f"{form[:12]!r}... reached {path.name}"


def chat_request(place: str, secret: str, stream: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``Client.build_request`` that put ``secret`` at ``place``."""
    kind, _, name = place.partition(":")
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HI, "stream": stream}
    headers = {"authorization": "Bearer sk-test-not-shaped", "content-type": "application/json"}
    params: dict[str, str] = {}
    if kind == "header":
        headers[name] = secret
    elif kind == "query":
        params[name] = secret
    elif kind in ("json", "gzip-json"):
        node: Any = body
        parts = name.split(".")
        for part, after in zip(parts, [*parts[1:], None], strict=True):
            if after is None:
                node[part] = secret
            elif after.isdigit():
                node = node.setdefault(part, [{}])
            elif part.isdigit():
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
    if kind == "form":
        headers["content-type"] = "application/x-www-form-urlencoded"
        content = f"model=gpt-4o-mini&{name}={quote_plus(secret)}".encode()
    elif kind == "multipart":
        headers["content-type"] = "multipart/form-data; boundary=b0undary"
        content = (
            '--b0undary\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--b0undary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{secret}\r\n'
            '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\nRIFF....\r\n--b0undary--\r\n"
        ).encode()
    elif kind == "gzip-json":
        headers["content-encoding"] = "gzip"
        content = gzip.compress(json.dumps(body).encode())
    else:
        content = json.dumps(body).encode()
    return {"headers": headers, "params": params, "content": content}


# --------------------------------------------------------------------------- raw clients


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("place", PLACES)
def test_every_shape_in_every_place_stays_off_disk(
    upstream: UpstreamServer, tmp_path: Path, place: str, shape: str
) -> None:
    secret = SHAPES[shape]
    tape = tmp_path / "t.tape"
    url = upstream.base_url + "/chat/completions"
    with httpx.Client(transport=RecordingTransport(tape)) as client:
        request = client.build_request("POST", url, **chat_request(place, secret))
        response = client.send(request)
        body = response.content
    assert body  # the client got its answer, untouched
    assert_not_on_disk(tape, secret)
    (exchange,) = Cassette.open(tape)
    field = place.split(":")[1].split(".")[-1].lower()
    assert any(field in name.lower() for name in exchange.redacted), exchange.redacted


@pytest.mark.parametrize("lib", HTTP_LIBS, ids=lambda lib: lib.__name__)
@pytest.mark.parametrize("place", ["query:api-token", "gzip-json:api_key", "json:metadata.token"])
def test_redacted_recording_replays(
    upstream: UpstreamServer, tmp_path: Path, lib: types.ModuleType, place: str
) -> None:
    tape = tmp_path / "t.tape"
    url = upstream.base_url + "/chat/completions"
    kwargs = chat_request(place, SHAPES["openai"])
    with lib.Client(transport=RecordingTransport(tape)) as client:
        recorded = client.send(client.build_request("POST", url, **kwargs)).content
    with lib.Client(transport=ReplayTransport(tape, pacing="instant")) as client:
        replayed = client.send(client.build_request("POST", url, **kwargs)).content
    assert replayed == recorded
    assert_not_on_disk(tape, SHAPES["openai"])


def test_escaped_key_in_an_unnamed_field_is_refused_and_nothing_written(
    upstream: UpstreamServer, tmp_path: Path
) -> None:
    tape = tmp_path / "t.tape"
    escaped = SHAPES["openai"].replace("-", "\\u002d")
    content = (
        '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"'
        + escaped
        + '"}]}'
    ).encode()
    headers = {"authorization": "Bearer x", "content-type": "application/json"}
    with httpx.Client(transport=RecordingTransport(tape)) as client:
        request = client.build_request(
            "POST", upstream.base_url + "/chat/completions", content=content, headers=headers
        )
        with pytest.raises(SecretLeakError, match=r"request\.body \(secret key") as info:
            client.send(request).read()
    assert escaped not in str(info.value)
    assert Cassette.open(tape).exchanges() == []


# --------------------------------------------------------------------------- the openai SDK


def test_openai_sdk_secrets_in_headers_query_and_body(
    upstream: UpstreamServer, tmp_path: Path
) -> None:
    lib = HTTP_LIBS[-1]  # httpx2 where installed: what the SDK builds on
    tape = tmp_path / "t.tape"
    secrets = {k: SHAPES[k] for k in ("openai", "huggingface", "github", "aws", "opaque", "jwt")}
    client = openai.OpenAI(
        base_url=upstream.base_url,
        api_key=secrets["openai"],
        max_retries=0,
        default_headers={"Ocp-Apim-Subscription-Key": secrets["huggingface"]},
        default_query={"api-token": secrets["github"]},
        http_client=lib.Client(transport=RecordingTransport(tape)),
    )
    with client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,
            stream=True,
            max_tokens=30,
            extra_headers={"x-credentials": secrets["jwt"]},
            extra_body={"apiKey": secrets["aws"], "metadata": {"token": secrets["opaque"]}},
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    for secret in secrets.values():
        assert_not_on_disk(tape, secret)
    (exchange,) = Cassette.open(tape)
    assert json.loads(exchange.request.body)["max_tokens"] == 30
    assert json.loads(exchange.request.body)["metadata"]["token"] == PLACEHOLDER
    assert {
        "request.header:authorization",
        "request.header:ocp-apim-subscription-key",
        "request.header:x-credentials",
        "request.query:api-token",
        "request.body:apiKey",
        "request.body:metadata.token",
    } <= set(exchange.redacted)


def test_ordinary_traffic_is_recorded_untouched(upstream: UpstreamServer, tmp_path: Path) -> None:
    """Nothing that is not a credential is refused or masked (tools, logprobs, base64),
    with the key-shape search of response bodies on."""
    tape = tmp_path / "t.tape"
    lib = HTTP_LIBS[-1]
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"session_name": {"type": "string"}, "max_tokens": {}},
                },
            },
        }
    ]
    client = openai.OpenAI(
        base_url=upstream.base_url,
        api_key="sk-test-key",
        max_retries=0,
        http_client=lib.Client(transport=RecordingTransport(tape, redact={"scan_response": True})),
    )
    with client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, tools=tools, n=2, max_tokens=60
        ).close()
        list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=HI,
                stream=True,
                logprobs=True,
                top_logprobs=3,
                max_tokens=60,
            )
        )
        client.embeddings.create(
            model="text-embedding-3-small", input=["a", "b"], encoding_format="base64"
        )
        client.images.generate(model="dall-e-3", prompt="a lighthouse", response_format="b64_json")
    exchanges = Cassette.open(tape).exchanges()
    assert len(exchanges) == 4
    for exchange in exchanges:
        assert set(exchange.redacted) == {"request.header:authorization"}, exchange.redacted


# --------------------------------------------------------------------------- an echoing upstream


class EchoGateway:
    """An ASGI app that streams the request back, as debug gateways do.

    The answer is a chat stream whose content is the request (headers, path and query,
    decoded body) as JSON, with the authorization value in a response header too;
    gzipped when the request asks for it with ``GZIP_HEADER``.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        body = decoded_body(headers, b"".join(chunks)).decode("utf-8", "replace")
        echo = json.dumps(
            {
                "headers": headers,
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "body": body,
            }
        )
        auth = dict(headers).get("authorization", "")
        events = [
            b"data: "
            + json.dumps(
                {
                    "id": "chatcmpl-echo",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "echo",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            ).encode()
            + b"\n\n"
            for piece in ("Your request: ", echo, " (end of echo)")
        ]
        events.append(b"data: [DONE]\n\n")
        out = [("content-type", "text/event-stream"), ("x-echo-authorization", auth)]
        if dict(headers).get(GZIP_HEADER) == "1":
            whole = gzip.compress(b"".join(events))
            events = [whole[i : i + 64] for i in range(0, len(whole), 64)]
            out.append(("content-encoding", "gzip"))
        raw = [(k.encode(), v.encode()) for k, v in out]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def echo_gateway() -> Iterator[LoopbackServer]:
    with LoopbackServer(EchoGateway(), name="echo-gateway") as server:
        yield server


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("place", PLACES)
def test_echoed_secrets_are_masked_in_the_response(
    echo_gateway: LoopbackServer, tmp_path: Path, place: str, gzipped: bool
) -> None:
    secret = SHAPES["opaque"]  # not key-shaped: only the echo rule can catch it
    tape = tmp_path / "t.tape"
    kwargs = chat_request(place, secret)
    if gzipped:
        kwargs["headers"] |= {GZIP_HEADER: "1", "accept-encoding": "gzip"}
    with httpx.Client(transport=RecordingTransport(tape)) as client:
        request = client.build_request(
            "POST", echo_gateway.base_url + "/chat/completions", **kwargs
        )
        response = client.send(request, stream=True)
        try:
            received = [bytes(chunk) for chunk in response.iter_raw()]
        finally:
            response.close()
    assert any(
        secret.encode() in decoded_body(list(response.headers.items()), b"".join(received))
        for _ in [0]
    )  # the gateway really echoed it
    assert_not_on_disk(tape, secret)
    (exchange,) = Cassette.open(tape)
    assert any(name.startswith("response.body (copy of") for name in exchange.redacted)
    if not gzipped:  # masks keep every read's size and time
        assert [len(r.data) for r in exchange.reads] == [len(c) for c in received]
        assert len(exchange.body) == sum(map(len, received))


def test_echoed_bearer_key_through_the_openai_sdk(
    echo_gateway: LoopbackServer, tmp_path: Path
) -> None:
    tape = tmp_path / "t.tape"
    lib = HTTP_LIBS[-1]
    key = SHAPES["opaque"]
    client = openai.OpenAI(
        base_url=echo_gateway.base_url,
        api_key=key,
        max_retries=0,
        http_client=lib.Client(transport=RecordingTransport(tape)),
    )
    with client:
        stream = client.chat.completions.create(model="echo", messages=HI, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert key in text  # the SDK user saw the echo as it was sent
    assert_not_on_disk(tape, key)
    (exchange,) = Cassette.open(tape)
    assert exchange.response_header("x-echo-authorization") == PLACEHOLDER or key not in (
        exchange.response_header("x-echo-authorization") or ""
    )
    assert "response.body (copy of request.header:authorization)" in exchange.redacted
    assert msgspec.json.decode(exchange.request.body)["messages"] == HI
