"""A simulated OpenAI-compatible upstream, so demos and tests need no API key and no network.

`DemoUpstream` is a plain ASGI app: deterministic (the same request body streams the
same bytes with the same gaps), paced like a real model (time to first token, jittered
gaps between tokens), and able to misbehave on request (header ``x-demo-fault``) the
way real servers and gateways do, so the recorder and the assembler can be tested
against real sockets instead of mocks. `UpstreamServer` runs it on loopback.

Routes (all under ``/v1``, all need ``authorization: Bearer <any key>``):
``POST chat/completions``, ``POST completions``, ``POST embeddings``, ``GET models``,
``GET models/{id}``, ``POST moderations``, ``POST images/generations``,
``POST audio/speech``, ``POST audio/transcriptions``, ``POST|GET files``,
``GET|DELETE files/{id}``, ``GET files/{id}/content``, ``POST tasks``, ``GET tasks/{id}``.
Magic words in the last user message: ``demo:refuse`` (a refusal); in a moderation
input: ``demo:flag`` (flagged).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import math
import random
import re
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streamtape.simulator.runner import LoopbackServer, abort_response

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "GZIP_HEADER",
    "DemoUpstream",
    "UpstreamServer",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FAULT_HEADER = "x-demo-fault"
"""Request header naming the faults to inject (comma-separated)."""
GZIP_HEADER = "x-demo-gzip"
"""Request header that, set to ``1`` with ``accept-encoding: gzip``, gzips the response."""
FAULTS = frozenset(
    {"http-500", "http-429", "mid-stream-error", "drop", "stall", "no-done", "crlf", "comments"}
)
"""Every fault kind `x-demo-fault` accepts."""

_EPOCH = 1_730_000_000  # `created` is derived from the request so replays stay byte-equal
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DONE = b"data: [DONE]\n\n"
_KEEPALIVE = b": keep-alive\n\n"

_SENTENCES = (
    "Streaming responses arrive one small piece at a time, so the first words show up fast.",
    "A good test replays the exact bytes a server sent, including the pauses between them.",
    "Edinburgh is a hilly city, and its castle sits on an old volcanic rock.",
    "The quickest way to debug a flaky stream is to record it once and replay it many times.",
    "Tokens are not words: a long word is often split into two or three pieces.",
    "When a request fails halfway, the partial answer is still worth keeping.",
    "Rivers carry sediment downstream and drop it where the water slows.",
    "Most chat models reply with a role first, then the content, then a finish reason.",
    "Caching a response saves money, but only if the cache key captures the whole request.",
    "The lighthouse keeper wound the clockwork every four hours through the night.",
    "Latency matters more than throughput when a person is watching the text appear.",
    "A tool call is just structured text that the client agrees to execute.",
    "Bread rises because yeast turns sugar into carbon dioxide and a little alcohol.",
    "Retry with backoff, and respect the retry-after header when the server sends one.",
    "Good logs say what happened, where it happened, and what to do next.",
    "The recipe calls for two eggs, a cup of flour, and a pinch of salt.",
    "Compression works well on streams because every chunk repeats the same keys.",
    "Octopuses have three hearts and can taste with the suckers on their arms.",
    "Small deterministic fixtures make failures easy to reproduce on any machine.",
    "The train left on time, which surprised everyone on the platform.",
    "Sure! Here is a short answer, followed by a longer explanation if you need it.",
    "Keep secrets out of fixtures: redact headers before anything is written to disk.",
)
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_REFUSAL = "I'm sorry, but I can't help with that request."
_ALT_TOKENS = (" the", " a", " and", ",", ".", " it", " to", " of", " is", " in", " that", "!")
_ARG_STRINGS = ("Edinburgh", "Paris", "celsius", "AAPL", "2024-09-26", "hello world", "Lisbon")
_MODELS = (
    ("gpt-4o-mini", "system"),
    ("gpt-4o", "system"),
    ("gpt-3.5-turbo-instruct", "system"),
    ("text-embedding-3-small", "system"),
    ("text-embedding-3-large", "system"),
    ("omni-moderation-latest", "system"),
    ("dall-e-3", "system"),
    ("tts-1", "system"),
    ("whisper-1", "openai-internal"),
    ("demo-echo", "streamtape"),
)
_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_TOKEN_RE = re.compile(r"\s*[A-Za-z]{1,7}|\s*[A-Za-z']+|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")
_ARG_TOKEN_RE = re.compile(r"[A-Za-z0-9_]{1,6}|[^A-Za-z0-9_]{1,3}")

# ---------------------------------------------------------------------------------------------
# small pure helpers


def _dumps(obj: Any) -> bytes:
    """Compact JSON like the OpenAI API sends (no spaces, raw UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(*parts: Any) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else _dumps(part))
        h.update(b"\x00")
    return h.digest()


def _seed(*parts: Any) -> int:
    return int.from_bytes(_digest(*parts)[:8], "big")


def _ident(prefix: str, length: int, *parts: Any) -> str:
    rng = random.Random(_seed(prefix, *parts))
    return prefix + "".join(rng.choice(_B62) for _ in range(length))


def _sig(x: float) -> float:
    """Round to 8 significant digits, as the real API prints logprobs."""
    return float(f"{x:.8g}")


def _tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _text_of(content: Any) -> str:
    """The text of a message `content`, which may be a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _count_tokens(text: str) -> int:
    return len(_tokenize(text))


def _canned_text(rng: random.Random, min_tokens: int = 0) -> str:
    """Two to four canned sentences, or as many as it takes to reach `min_tokens`."""
    picked = rng.sample(_SENTENCES, rng.randint(2, 4))
    while _count_tokens(" ".join(picked)) < min_tokens:
        picked += rng.sample(_SENTENCES, len(_SENTENCES))
    return " ".join(picked)


def _logprob_entry(rng: random.Random, token: str, top: int) -> dict[str, Any]:
    lp = _sig(-rng.expovariate(3.0))
    alternatives: list[dict[str, Any]] = []
    if top > 0:
        alternatives.append({"token": token, "logprob": lp, "bytes": list(token.encode())})
        floor = lp
        for alt in rng.sample([t for t in _ALT_TOKENS if t != token], min(top - 1, 11)):
            floor = _sig(floor - rng.uniform(0.5, 3.0))
            alternatives.append({"token": alt, "logprob": floor, "bytes": list(alt.encode())})
    return {
        "token": token,
        "logprob": lp,
        "bytes": list(token.encode()),
        "top_logprobs": alternatives,
    }


def _gaps(rng: random.Random, count: int) -> list[float]:
    """Human-like pacing: a time to first token, then jittered gaps of 5-40 ms."""
    if count <= 0:
        return []
    mean = rng.uniform(0.012, 0.025)
    out = [rng.uniform(0.15, 0.40)]
    for _ in range(count - 1):
        out.append(min(0.040, max(0.005, mean * rng.lognormvariate(0.0, 0.45))))
    return out


def _example_value(schema: Any, rng: random.Random, name: str = "") -> Any:
    """A plausible value for a JSON-schema node, so tool-call arguments parse and validate."""
    if not isinstance(schema, dict):
        return rng.choice(_ARG_STRINGS)
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][rng.randrange(len(schema["enum"]))]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return {}
        return {str(k): _example_value(v, rng, str(k)) for k, v in props.items()}
    if kind == "array":
        return [
            _example_value(schema.get("items", {}), rng, name) for _ in range(rng.randint(1, 2))
        ]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if "city" in name or "location" in name:
        return rng.choice(("Edinburgh", "Paris", "Lisbon", "Kyoto"))
    return rng.choice(_ARG_STRINGS)


def _apply_faults(
    events: list[tuple[float, bytes]], faults: frozenset[str], rng: random.Random
) -> tuple[list[tuple[float, bytes]], Literal["complete", "drop", "stall"]]:
    """Turn a clean event list into the one a misbehaving server sends, and how it ends."""
    ending: Literal["complete", "drop", "stall"] = "complete"
    cut = max(1, (len(events) - 1) // 2)
    if "mid-stream-error" in faults:
        error = {
            "error": {
                "message": _SERVER_ERROR,
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        events = [*events[:cut], (rng.uniform(0.005, 0.040), b"data: " + _dumps(error) + b"\n\n")]
    elif "drop" in faults:
        events, ending = events[:cut], "drop"
    elif "stall" in faults:
        events, ending = events[:cut], "stall"
    elif "no-done" in faults and events and events[-1][1] == _DONE:
        events = events[:-1]
    if "comments" in faults:
        spaced: list[tuple[float, bytes]] = []
        for i, (delay, data) in enumerate(events):
            if i == 0:
                spaced += [(delay / 2, _KEEPALIVE), (delay - delay / 2, data)]
            elif i % 8 == 0:
                spaced += [(0.0, _KEEPALIVE), (delay, data)]
            else:
                spaced.append((delay, data))
        events = spaced
    if "crlf" in faults:
        events = [(d, data.replace(b"\n", b"\r\n")) for d, data in events]
    return events, ending


# ---------------------------------------------------------------------------------------------
# request / response plumbing


class _HTTPError(Exception):
    """An OpenAI-style error response, raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = list(headers)


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise _HTTPError(
                400, f"We could not parse the JSON body of your request: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise _HTTPError(400, "The request body must be a JSON object.")
        return data

    def form(self) -> dict[str, tuple[str | None, bytes]]:
        """The fields of a multipart/form-data body: name -> (filename, content)."""
        ctype = self.headers.get("content-type", "")
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/form-data") or match is None:
            raise _HTTPError(400, "Expected a multipart/form-data body with a boundary.")
        delimiter = b"--" + match.group(1).encode()
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in self.body.split(delimiter)[1:]:
            if part.startswith(b"--"):
                break
            part = part.removeprefix(b"\r\n")
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                continue
            content = content.removesuffix(b"\r\n")
            disposition = ""
            for line in head.decode("utf-8", "replace").split("\r\n"):
                key, _, value = line.partition(":")
                if key.strip().lower() == "content-disposition":
                    disposition = value
            name = re.search(r'\bname="([^"]*)"', disposition)
            filename = re.search(r'\bfilename="([^"]*)"', disposition)
            if name is not None:
                fields[name.group(1)] = (filename.group(1) if filename else None, content)
        return fields


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: list[tuple[float, bytes]] | None = None
    ending: Literal["complete", "drop", "stall"] = "complete"


def _json_response(
    obj: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> _Response:
    return _Response(status=status, body=_dumps(obj), headers=list(headers))


# ---------------------------------------------------------------------------------------------
# the completion planners, shared by the streaming, non-streaming and plan() paths


@dataclass
class _ChatChoice:
    index: int
    kind: Literal["content", "refusal", "tools"]
    tokens: list[str]
    logprobs: list[dict[str, Any]] | None
    tool_calls: list[tuple[str, str, list[str]]]  # (id, name, argument fragments)
    finish_reason: str


@dataclass
class _Chat:
    base: dict[str, Any]
    choices: list[_ChatChoice]
    usage: dict[str, Any]
    timing_seed: int


class DemoUpstream:
    """An ASGI app that answers like the OpenAI API, deterministically, with realistic pacing.

    `speed` divides every delay (`math.inf`: no delays). `max_tokens_cap` bounds how long
    a reply can get. A task created on ``POST /v1/tasks`` succeeds on poll `task_polls`.
    """

    def __init__(
        self, *, speed: float = 1.0, max_tokens_cap: int = 4096, task_polls: int = 3
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (use math.inf for no delays), got {speed!r}")
        if max_tokens_cap < 1 or task_polls < 1:
            raise ValueError("max_tokens_cap and task_polls must be >= 1")
        self.speed = float(speed)
        self.max_tokens_cap = max_tokens_cap
        self.task_polls = task_polls
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._tasks: dict[str, dict[str, Any]] = {}
        self._task_counter = 0
        self._interrupts: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self._interrupts_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------------

    def plan(
        self, request: Mapping[str, Any], *, fault: str | Iterable[str] | None = None
    ) -> list[tuple[float, bytes]]:
        """The exact events a streaming request gets, each with the delay before it.

        Delays are in seconds, already divided by `speed`; the first is measured from the
        arrival of the request (the response headers go out with the first event). The
        endpoint is chosen by the body: ``messages`` means chat, ``prompt`` text completions.
        A `stall` or `drop` plan lists the events sent before the connection hangs or closes.
        """
        body = dict(request)
        try:
            faults = self._parse_faults(fault)
            if "messages" in body:
                events, seed = self._chat_events(body)
            elif "prompt" in body:
                events, seed = self._completion_events(body)
            else:
                raise ValueError("plan() needs a chat (messages) or text completion (prompt) body")
        except _HTTPError as exc:  # the same message the server would answer with
            raise ValueError(str(exc)) from None
        events, _ = _apply_faults(events, faults, random.Random(seed ^ 0xFA))
        return [(self._scale(d), data) for d, data in events]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets are not served
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        request = _Request(scope["method"], scope["path"], headers, b"".join(chunks))
        try:
            response = self._handle(request)
        except _HTTPError as exc:
            response = _json_response(exc.body, exc.status, exc.headers)
        request_id = _ident("req_", 24, request.method, request.path, request.body)
        extra = [("x-request-id", request_id), ("openai-version", "2020-10-01")]
        if response.stream is None:
            await self._send_whole(send, request, response, extra)
        else:
            await self._send_stream(send, receive, response, extra)

    # -- sending --------------------------------------------------------------------------------

    def _scale(self, delay: float) -> float:
        return 0.0 if math.isinf(self.speed) else delay / self.speed

    async def _send_whole(
        self, send: Send, request: _Request, response: _Response, extra: list[tuple[str, str]]
    ) -> None:
        body = response.body
        headers = [("content-type", response.content_type), *extra, *response.headers]
        if (
            request.headers.get(GZIP_HEADER) == "1"
            and "gzip" in request.headers.get("accept-encoding", "")
            and body
        ):
            body = gzip.compress(body, mtime=0)
            headers.append(("content-encoding", "gzip"))
        headers.append(("content-length", str(len(body))))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _interrupt_event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        with self._interrupts_lock:
            event = self._interrupts.get(loop)
            if event is None:
                event = self._interrupts[loop] = asyncio.Event()
            return event

    def interrupt_streams(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make every stream served on `loop` stop at once (server shutdown)."""
        with self._interrupts_lock:
            event = self._interrupts.pop(loop, None)
        if event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)

    async def _send_stream(
        self, send: Send, receive: Receive, response: _Response, extra: list[tuple[str, str]]
    ) -> None:
        assert response.stream is not None
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            *extra,
        ]
        start = {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
        # Stop early when the client goes away or the server shuts down.
        disconnected = asyncio.ensure_future(self._wait_disconnect(receive))
        interrupted = asyncio.ensure_future(self._interrupt_event().wait())
        stoppers = {disconnected, interrupted}
        try:
            started = False
            # Deadlines, not sleeps: a late wake-up shortens the next gap instead of drifting.
            loop = asyncio.get_running_loop()
            deadline = loop.time()
            for delay, data in response.stream:
                deadline += self._scale(delay)
                remaining = deadline - loop.time()
                if remaining > 0:
                    await asyncio.wait(stoppers, timeout=remaining)
                if disconnected.done() or interrupted.done():
                    abort_response()
                    return
                if not started:
                    await send(start)
                    started = True
                await send({"type": "http.response.body", "body": data, "more_body": True})
            if not started:
                await send(start)
            if response.ending == "complete":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if response.ending == "stall":
                await asyncio.wait(stoppers, return_when=asyncio.FIRST_COMPLETED)
            abort_response()  # returning without finishing makes uvicorn close the connection
        finally:
            for fut in stoppers:
                fut.cancel()

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # -- routing --------------------------------------------------------------------------------

    @staticmethod
    def _parse_faults(fault: str | Iterable[str] | None) -> frozenset[str]:
        if fault is None:
            return frozenset()
        items = fault.split(",") if isinstance(fault, str) else list(fault)
        kinds = frozenset(k.strip().lower() for k in items if k.strip())
        unknown = kinds - FAULTS
        if unknown:
            raise _HTTPError(
                400,
                f"Unknown {FAULT_HEADER} value(s): {', '.join(sorted(unknown))}; "
                f"expected some of: {', '.join(sorted(FAULTS))}.",
            )
        return kinds

    def _handle(self, request: _Request) -> _Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _HTTPError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        faults = self._parse_faults(request.headers.get(FAULT_HEADER))
        if "http-500" in faults:
            raise _HTTPError(
                500,
                _SERVER_ERROR,
                "server_error",
            )
        if "http-429" in faults:
            raise _HTTPError(
                429,
                "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
                "Please try again in 1s.",
                "requests",
                "rate_limit_exceeded",
                headers=[
                    ("retry-after", "1"),
                    ("x-ratelimit-limit-requests", "3"),
                    ("x-ratelimit-remaining-requests", "0"),
                    ("x-ratelimit-reset-requests", "1s"),
                ],
            )
        method, path = request.method, request.path.rstrip("/")
        if path == "/v1/chat/completions" and method == "POST":
            return self._chat(request.json(), faults)
        if path == "/v1/completions" and method == "POST":
            return self._completions(request.json(), faults)
        extra = self._handle_other(method, path, request)
        if extra is not None:
            return extra
        raise _HTTPError(404, f"Invalid URL ({method} {request.path})", code="unknown_url")

    # -- chat completions -----------------------------------------------------------------------

    def _plan_chat(self, body: dict[str, Any]) -> _Chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "'messages' must be a non-empty array.", param="messages")
        model = str(body.get("model") or "gpt-4o-mini")
        # Everything but the transport choice decides the reply, so stream and non-stream agree.
        key = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        seed = _seed("chat", key)
        prompt_texts = [_text_of(m.get("content")) for m in messages if isinstance(m, dict)]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 8:
            raise _HTTPError(400, "'n' must be an integer between 1 and 8.", param="n")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise _HTTPError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
        want_logprobs = bool(body.get("logprobs"))
        top = body.get("top_logprobs") or 0
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise _HTTPError(400, "'top_logprobs' must be between 0 and 20.", param="top_logprobs")
        tools = [
            t["function"]
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        tool_choice = body.get("tool_choice", "auto")
        forced: str | None = None
        if isinstance(tool_choice, dict):
            forced = str((tool_choice.get("function") or {}).get("name", ""))
        use_tools = bool(tools) and tool_choice != "none" and last.get("role") != "tool"
        if forced:
            tools = [t for t in tools if t.get("name") == forced] or tools[:1]
        elif use_tools and body.get("parallel_tool_calls") is False:
            tools = tools[:1]
        refuse = "demo:refuse" in _text_of(last.get("content")).lower()

        choices: list[_ChatChoice] = []
        for index in range(n):
            rng = random.Random(_seed(seed, index))
            lp_rng = random.Random(_seed(seed, index, "logprobs"))
            if use_tools:
                calls = []
                for t_index, tool in enumerate(tools[:4]):
                    args = _dumps(_example_value(tool.get("parameters", {}), rng)).decode()
                    call_id = _ident("call_", 24, seed, index, t_index)
                    calls.append(
                        (call_id, str(tool.get("name", "tool")), _ARG_TOKEN_RE.findall(args))
                    )
                finish = "stop" if forced else "tool_calls"
                choices.append(_ChatChoice(index, "tools", [], None, calls, finish))
                continue
            if refuse:
                tokens, finish = _tokenize(_REFUSAL), "stop"
            else:
                cap = min(limit or self.max_tokens_cap, self.max_tokens_cap)
                tokens = _tokenize(_canned_text(rng, cap if limit else 0))
                finish = "length" if limit or len(tokens) > cap else "stop"
                tokens = tokens[:cap]
            if tokens:
                tokens[0] = tokens[0].lstrip()
            logprobs = [_logprob_entry(lp_rng, t, top) for t in tokens] if want_logprobs else None
            kind: Literal["content", "refusal"] = "refusal" if refuse else "content"
            choices.append(_ChatChoice(index, kind, tokens, logprobs, [], finish))

        completion_tokens = sum(
            len(c.tokens) + sum(len(f) for _, _, f in c.tool_calls) + 2 * len(c.tool_calls)
            for c in choices
        )
        prompt_tokens = sum(_count_tokens(t) + 4 for t in prompt_texts) + 3
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        base = {
            "id": _ident("chatcmpl-", 29, seed),
            "object": "chat.completion.chunk",
            "created": _EPOCH + seed % 50_000_000,
            "model": model,
            "system_fingerprint": "fp_" + _digest("fp", model).hex()[:10],
        }
        return _Chat(base, choices, usage, seed)

    def _chat_events(self, body: dict[str, Any]) -> tuple[list[tuple[float, bytes]], int]:
        chat = self._plan_chat(body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        per_choice: list[list[dict[str, Any]]] = []
        for c in chat.choices:
            steps: list[dict[str, Any]] = []
            lp_on = c.logprobs is not None
            if c.kind == "tools":
                steps.append({"role": "assistant", "content": None})
                for t_index, (call_id, name, fragments) in enumerate(c.tool_calls):
                    first = {
                        "index": t_index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                    steps.append({"tool_calls": [first]})
                    steps += [
                        {"tool_calls": [{"index": t_index, "function": {"arguments": f}}]}
                        for f in fragments
                    ]
                wrapped = [_choice(c.index, d, None) for d in steps]
            elif c.kind == "refusal":
                role_lp: dict[str, Any] | None = {"content": None, "refusal": []} if lp_on else None
                wrapped = [
                    _choice(c.index, {"role": "assistant", "content": None, "refusal": ""}, role_lp)
                ]
                for i, tok in enumerate(c.tokens):
                    lp = {"content": None, "refusal": [c.logprobs[i]]} if c.logprobs else None
                    wrapped.append(_choice(c.index, {"refusal": tok}, lp))
            else:
                role_lp = {"content": [], "refusal": None} if lp_on else None
                wrapped = [
                    _choice(c.index, {"role": "assistant", "content": "", "refusal": None}, role_lp)
                ]
                for i, tok in enumerate(c.tokens):
                    lp = {"content": [c.logprobs[i]], "refusal": None} if c.logprobs else None
                    wrapped.append(_choice(c.index, {"content": tok}, lp))
            wrapped.append(_choice(c.index, {}, None, c.finish_reason))
            per_choice.append(wrapped)
        payloads: list[dict[str, Any]] = []
        for step in range(max(len(s) for s in per_choice)):
            for steps_of_choice in per_choice:
                if step < len(steps_of_choice):
                    payloads.append({**chat.base, "choices": [steps_of_choice[step]]})
        if include_usage:
            payloads.append({**chat.base, "choices": [], "usage": chat.usage})
        datas = [b"data: " + _dumps(p) + b"\n\n" for p in payloads] + [_DONE]
        gaps = _gaps(random.Random(_seed(chat.timing_seed, "timing")), len(datas))
        return list(zip(gaps, datas, strict=True)), chat.timing_seed

    def _chat(self, body: dict[str, Any], faults: frozenset[str]) -> _Response:
        if body.get("stream"):
            events, seed = self._chat_events(body)
            events, ending = _apply_faults(events, faults, random.Random(seed ^ 0xFA))
            return _Response(stream=events, ending=ending)
        chat = self._plan_chat(body)
        choices = []
        for c in chat.choices:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(c.tokens) if c.kind == "content" else None,
                "refusal": "".join(c.tokens) if c.kind == "refusal" else None,
                "annotations": [],
            }
            if c.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": "".join(f)},
                    }
                    for cid, name, f in c.tool_calls
                ]
            logprobs = None
            if c.logprobs is not None:
                key = "refusal" if c.kind == "refusal" else "content"
                logprobs = {"content": None, "refusal": None, key: c.logprobs}
            choices.append(
                {
                    "index": c.index,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": c.finish_reason,
                }
            )
        obj = {
            **chat.base,
            "object": "chat.completion",
            "choices": choices,
            "usage": chat.usage,
            "service_tier": "default",
        }
        return _json_response(obj)

    # -- text completions -----------------------------------------------------------------------

    def _plan_completion(
        self, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[_TextChoice], dict[str, Any], int]:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
            prompts = [" ".join(map(str, prompt))]
        elif isinstance(prompt, list) and prompt:
            prompts = [p if isinstance(p, str) else " ".join(map(str, p)) for p in prompt]
        else:
            raise _HTTPError(400, "'prompt' must be a string or a non-empty array.", param="prompt")
        model = str(body.get("model") or "gpt-3.5-turbo-instruct")
        key = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        seed = _seed("completion", key)
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 8:
            raise _HTTPError(400, "'n' must be an integer between 1 and 8.", param="n")
        limit = body.get("max_tokens")
        limit = 16 if limit is None else limit  # the real API's default for this endpoint
        if not isinstance(limit, int) or limit < 1:
            raise _HTTPError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
        top = body.get("logprobs")
        if top is not None and (not isinstance(top, int) or not 0 <= top <= 5):
            raise _HTTPError(400, "'logprobs' must be between 0 and 5.", param="logprobs")
        cap = min(limit, self.max_tokens_cap)
        choices: list[_TextChoice] = []
        for p_index in range(len(prompts)):
            for j in range(n):
                index = p_index * n + j
                rng = random.Random(_seed(seed, index))
                tokens = _tokenize("\n\n" + _canned_text(rng, cap))[:cap]
                logprobs = None
                if top is not None:
                    lp_rng = random.Random(_seed(seed, index, "logprobs"))
                    logprobs = [_logprob_entry(lp_rng, t, top) for t in tokens]
                choices.append(_TextChoice(index, tokens, logprobs, "length"))
        prompt_tokens = sum(_count_tokens(p) for p in prompts)
        completion_tokens = sum(len(c.tokens) for c in choices)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": _ident("cmpl-", 29, seed),
            "object": "text_completion",
            "created": _EPOCH + seed % 50_000_000,
            "model": model,
        }
        return base, choices, usage, seed

    def _completion_events(self, body: dict[str, Any]) -> tuple[list[tuple[float, bytes]], int]:
        base, choices, usage, seed = self._plan_completion(body)
        per_choice: list[list[dict[str, Any]]] = []
        for c in choices:
            steps = []
            offset = 0
            for i, tok in enumerate(c.tokens):
                lp = None
                if c.logprobs is not None:
                    lp = _legacy_logprobs([c.logprobs[i]], offset)
                steps.append({"text": tok, "index": c.index, "logprobs": lp, "finish_reason": None})
                offset += len(tok)
            steps.append(
                {"text": "", "index": c.index, "logprobs": None, "finish_reason": c.finish_reason}
            )
            per_choice.append(steps)
        payloads: list[dict[str, Any]] = []
        for step in range(max(len(s) for s in per_choice)):
            for steps_of_choice in per_choice:
                if step < len(steps_of_choice):
                    payloads.append({**base, "choices": [steps_of_choice[step]]})
        if (body.get("stream_options") or {}).get("include_usage"):
            payloads.append({**base, "choices": [], "usage": usage})
        datas = [b"data: " + _dumps(p) + b"\n\n" for p in payloads] + [_DONE]
        gaps = _gaps(random.Random(_seed(seed, "timing")), len(datas))
        return list(zip(gaps, datas, strict=True)), seed

    def _completions(self, body: dict[str, Any], faults: frozenset[str]) -> _Response:
        if body.get("stream"):
            events, seed = self._completion_events(body)
            events, ending = _apply_faults(events, faults, random.Random(seed ^ 0xFA))
            return _Response(stream=events, ending=ending)
        base, choices, usage, _ = self._plan_completion(body)
        out = [
            {
                "text": "".join(c.tokens),
                "index": c.index,
                "logprobs": None if c.logprobs is None else _legacy_logprobs(c.logprobs, 0),
                "finish_reason": c.finish_reason,
            }
            for c in choices
        ]
        return _json_response({**base, "choices": out, "usage": usage})

    # -- everything else ------------------------------------------------------------------------

    def _handle_other(self, method: str, path: str, request: _Request) -> _Response | None:
        """Route the non-completion endpoints; None means no such route."""
        if path == "/v1/embeddings" and method == "POST":
            return self._embeddings(request.json())
        if path == "/v1/models" and method == "GET":
            return _json_response({"object": "list", "data": [_model(m, o) for m, o in _MODELS]})
        if path.startswith("/v1/models/") and method == "GET":
            return self._get_model(path.removeprefix("/v1/models/"))
        if path == "/v1/moderations" and method == "POST":
            return self._moderations(request.json())
        if path == "/v1/images/generations" and method == "POST":
            return self._images(request.json())
        if path == "/v1/audio/speech" and method == "POST":
            return self._speech(request.json())
        if path == "/v1/audio/transcriptions" and method == "POST":
            return self._transcription(request.form())
        if path == "/v1/files":
            if method == "POST":
                return self._upload(request.form())
            if method == "GET":
                files = [meta for meta, _ in self._files.values()]
                return _json_response({"object": "list", "data": files, "has_more": False})
        match = re.fullmatch(r"/v1/files/([^/]+)(/content)?", path)
        if match is not None:
            return self._file(method, match.group(1), bool(match.group(2)))
        if path == "/v1/tasks" and method == "POST":
            return self._create_task(request.json())
        match = re.fullmatch(r"/v1/tasks/([^/]+)", path)
        if match is not None and method == "GET":
            return self._poll_task(match.group(1))
        return None

    def _embeddings(self, body: dict[str, Any]) -> _Response:
        raw = body.get("input")
        items: list[Any]
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            items = [raw]
        elif isinstance(raw, list) and raw:
            items = raw
        else:
            raise _HTTPError(400, "'input' must be a string or a non-empty array.", param="input")
        model = str(body.get("model") or "text-embedding-3-small")
        dims = body.get("dimensions") or (3072 if "large" in model else 1536)
        if not isinstance(dims, int) or not 1 <= dims <= 3072:
            raise _HTTPError(400, "'dimensions' must be between 1 and 3072.", param="dimensions")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise _HTTPError(
                400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
            )
        data = []
        tokens = 0
        for i, item in enumerate(items):
            tokens += len(item) if isinstance(item, list) else _count_tokens(str(item))
            rng = random.Random(_seed("embedding", model, dims, item))
            vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            values = [float(f"{v / norm:.9g}") for v in vec]  # float32 precision, like the API
            packed = struct.pack(f"<{dims}f", *values)
            embedding: Any = base64.b64encode(packed).decode() if fmt == "base64" else values
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json_response({"object": "list", "data": data, "model": model, "usage": usage})

    @staticmethod
    def _get_model(model_id: str) -> _Response:
        for name, owner in _MODELS:
            if name == model_id:
                return _json_response(_model(name, owner))
        raise _HTTPError(
            404,
            f"The model '{model_id}' does not exist or you do not have access to it.",
            code="model_not_found",
        )

    @staticmethod
    def _moderations(body: dict[str, Any]) -> _Response:
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
            texts = list(raw)
        elif isinstance(raw, list) and raw:  # multimodal parts: one result for the whole input
            texts = [_text_of(raw)]
        else:
            raise _HTTPError(400, "'input' must be a string or a non-empty array.", param="input")
        model = str(body.get("model") or "omni-moderation-latest")
        results = []
        for text in texts:
            rng = random.Random(_seed("moderation", text))
            flagged = "demo:flag" in text.lower()
            scores = {c: _sig(rng.uniform(1e-6, 1e-3)) for c in _MODERATION_CATEGORIES}
            if flagged:
                scores["violence"] = _sig(rng.uniform(0.85, 0.99))
            results.append(
                {
                    "flagged": flagged,
                    "categories": {c: scores[c] > 0.5 for c in _MODERATION_CATEGORIES},
                    "category_scores": scores,
                    "category_applied_input_types": {c: ["text"] for c in _MODERATION_CATEGORIES},
                }
            )
        ident = _ident("modr-", 29, model, texts)
        return _json_response({"id": ident, "model": model, "results": results})

    @staticmethod
    def _images(body: dict[str, Any]) -> _Response:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _HTTPError(400, "'prompt' must be a non-empty string.", param="prompt")
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 4:
            raise _HTTPError(400, "'n' must be between 1 and 4.", param="n")
        data = []
        for i in range(n):
            png = base64.b64encode(_png(_seed("image", prompt, i))).decode()
            item: dict[str, Any] = {"revised_prompt": f"A simple gradient inspired by: {prompt}"}
            if body.get("response_format") == "url":
                item["url"] = "data:image/png;base64," + png
            else:
                item["b64_json"] = png
            data.append(item)
        return _json_response({"created": _EPOCH + _seed(prompt) % 50_000_000, "data": data})

    @staticmethod
    def _speech(body: dict[str, Any]) -> _Response:
        text = body.get("input")
        if not isinstance(text, str) or not text:
            raise _HTTPError(400, "'input' must be a non-empty string.", param="input")
        voice = str(body.get("voice") or "alloy")
        pcm = _tone(_seed("voice", voice), duration=min(2.0, 0.2 + 0.04 * _count_tokens(text)))
        if body.get("response_format") == "pcm":
            return _Response(body=pcm, content_type="audio/pcm")
        return _Response(body=_wav(pcm), content_type="audio/wav")

    @staticmethod
    def _transcription(form: dict[str, tuple[str | None, bytes]]) -> _Response:
        if "file" not in form:
            raise _HTTPError(400, "A 'file' field is required.", param="file")
        filename, content = form["file"]
        fmt = form.get("response_format", (None, b"json"))[1].decode() or "json"
        rng = random.Random(_seed("transcription", content))
        text = rng.choice(_SENTENCES)
        duration = _wav_duration(content)
        if fmt == "text":
            return _Response(body=(text + "\n").encode(), content_type="text/plain; charset=utf-8")
        if fmt in ("srt", "vtt"):
            sep = "," if fmt == "srt" else "."
            stamp = f"00:00:00{sep}000 --> 00:00:{min(duration, 59.999):06.3f}".replace(".", sep)
            head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
            return _Response(body=f"{head}{stamp}\n{text}\n\n".encode(), content_type="text/plain")
        if fmt == "verbose_json":
            segment = {"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": " " + text}
            return _json_response(
                {
                    "task": "transcribe",
                    "language": "english",
                    "duration": duration,
                    "text": text,
                    "segments": [segment],
                }
            )
        if fmt != "json":
            raise _HTTPError(400, f"Unsupported response_format '{fmt}'.", param="response_format")
        usage = {"type": "duration", "seconds": math.ceil(duration)}
        return _json_response({"text": text, "usage": usage, "filename": filename})

    def _upload(self, form: dict[str, tuple[str | None, bytes]]) -> _Response:
        if "file" not in form or form["file"][0] is None:
            raise _HTTPError(400, "A 'file' field with a filename is required.", param="file")
        filename, content = form["file"]
        purpose = form.get("purpose", (None, b"assistants"))[1].decode()
        file_id = _ident("file-", 22, filename, content, purpose)
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": _EPOCH + _seed(file_id) % 50_000_000,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self._files[file_id] = (meta, content)
        return _json_response(meta)

    def _file(self, method: str, file_id: str, content: bool) -> _Response:
        stored = self._files.get(file_id)
        if stored is None:
            raise _HTTPError(404, f"No such File object: {file_id}", param="id")
        if method == "GET" and content:
            return _Response(body=stored[1], content_type="application/octet-stream")
        if method == "GET":
            return _json_response(stored[0])
        if method == "DELETE" and not content:
            del self._files[file_id]
            return _json_response({"id": file_id, "object": "file", "deleted": True})
        raise _HTTPError(405, f"Method {method} is not allowed here.")

    def _create_task(self, body: dict[str, Any]) -> _Response:
        self._task_counter += 1
        task_id = _ident("task_", 24, self._task_counter, body)
        task = {
            "id": task_id,
            "object": "task",
            "status": "queued",
            "created_at": _EPOCH + _seed(task_id) % 50_000_000,
        }
        self._tasks[task_id] = {**task, "input": body, "polls": 0}
        return _json_response(task)

    def _poll_task(self, task_id: str) -> _Response:
        state = self._tasks.get(task_id)
        if state is None:
            raise _HTTPError(404, f"No such task: {task_id}", param="id")
        state["polls"] += 1
        polls = state["polls"]
        public = {k: state[k] for k in ("id", "object", "status", "created_at")}
        if polls < self.task_polls:
            public["status"] = "queued" if polls == 1 else "running"
            public["progress"] = round(100 * (polls - 1) / self.task_polls)
            return _json_response(public)
        body = state["input"]
        try:
            if "messages" in body:
                result = json.loads(self._chat({**body, "stream": False}, frozenset()).body)
            elif "prompt" in body:
                result = json.loads(self._completions({**body, "stream": False}, frozenset()).body)
            else:
                result = {"output": random.Random(_seed("task", body)).choice(_SENTENCES)}
        except _HTTPError as exc:
            return _json_response({**public, "status": "failed", "error": exc.body["error"]})
        return _json_response({**public, "status": "succeeded", "progress": 100, "result": result})


def _choice(
    index: int, delta: dict[str, Any], logprobs: Any, finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


@dataclass
class _TextChoice:
    index: int
    tokens: list[str]
    logprobs: list[dict[str, Any]] | None
    finish_reason: str


def _legacy_logprobs(entries: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    """The four parallel lists of the text completions API, from chat-style entries."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{a["token"]: a["logprob"] for a in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def _model(name: str, owner: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": _EPOCH - _seed(name) % 90_000_000,
        "owned_by": owner,
    }


def _png(seed: int, size: int = 16) -> bytes:
    """A small valid RGB PNG (a gradient tinted by `seed`), built by hand: no imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    r0, g0, b0 = seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(size)
            for v in ((r0 + 8 * x) & 0xFF, (g0 + 8 * y) & 0xFF, (b0 + 4 * (x + y)) & 0xFF)
        )
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


_SAMPLE_RATE = 24_000


def _tone(seed: int, duration: float) -> bytes:
    """16-bit mono little-endian PCM: a soft tone whose pitch depends on the voice."""
    freq = 180.0 + seed % 240
    count = int(_SAMPLE_RATE * duration)
    fade = max(1, count // 10)
    samples = (
        int(
            9000
            * min(1.0, i / fade, (count - i) / fade)
            * math.sin(2 * math.pi * freq * i / _SAMPLE_RATE)
        )
        for i in range(count)
    )
    return struct.pack(f"<{count}h", *samples)


def _wav(pcm: bytes) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, _SAMPLE_RATE, _SAMPLE_RATE * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _wav_duration(data: bytes) -> float:
    """Seconds of audio in a PCM WAV, or an estimate from the size for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos = 12
        byte_rate = 0
        while pos + 8 <= len(data):
            tag = data[pos : pos + 4]
            size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if tag == b"fmt " and size >= 16:
                byte_rate = int.from_bytes(data[pos + 16 : pos + 20], "little")
            elif tag == b"data" and byte_rate:
                return round(min(size, len(data) - pos - 8) / byte_rate, 3)
            pos += 8 + size + (size & 1)
    return round(len(data) / 16_000, 3)


class UpstreamServer(LoopbackServer):
    """Serve a `DemoUpstream` on a free loopback port in a background thread.

    Use as a context manager; `base_url` is what an OpenAI client takes. Exiting stops
    every open stream (even a stalled one) and the server within a fraction of a second.
    """

    def __init__(
        self,
        app: DemoUpstream | None = None,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app: DemoUpstream = app if app is not None else DemoUpstream(speed=speed)
        super().__init__(
            self.app,
            host=host,
            port=port,
            startup_timeout=startup_timeout,
            on_stop=self.app.interrupt_streams,
            name="streamtape-upstream",
        )
