"""A simulated OpenAI-compatible upstream, so demos and tests need no API key and no network.

`DemoUpstream` is a plain ASGI app: deterministic (the same request body streams the
same bytes with the same gaps), paced like a real model (time to first token, jittered
gaps between tokens), and able to misbehave on request (header ``x-demo-fault``) the
way real servers and gateways do, so the recorder and the assembler can be tested
against real sockets instead of mocks. `UpstreamServer` runs it on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import math
import random
import re
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import uvicorn

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

# Tasks whose incomplete response is deliberate (faults `drop`/`stall`, shutdown); uvicorn
# would otherwise log an error for each of them.
_ABORTED_TASKS: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
_UVICORN_ABORT_MESSAGES = frozenset(
    {
        "ASGI callable returned without completing response.",
        "ASGI callable returned without starting response.",
    }
)


class _DeliberateAbortFilter(logging.Filter):
    """Silence uvicorn's complaint only for responses a `DemoUpstream` cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _UVICORN_ABORT_MESSAGES:
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return True
        return task is None or task not in _ABORTED_TASKS


_ABORT_FILTER = _DeliberateAbortFilter()


def _install_abort_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _ABORT_FILTER not in logger.filters:
        logger.addFilter(_ABORT_FILTER)


def _mark_aborted() -> None:
    task = asyncio.current_task()
    if task is not None:
        _ABORTED_TASKS.add(task)


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
        faults = self._parse_faults(fault)
        body = dict(request)
        if "messages" in body:
            events, seed = self._chat_events(body)
        elif "prompt" in body:
            events, seed = self._completion_events(body)
        else:
            raise ValueError("plan() needs a chat (messages) or text completion (prompt) body")
        events, _ = _apply_faults(events, faults, random.Random(seed ^ 0xFA))
        return [(self._scale(d), data) for d, data in events]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets are not served
        _install_abort_filter()
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

    def _interrupt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
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
                    _mark_aborted()
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
            _mark_aborted()  # returning without finishing makes uvicorn close the connection
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

    def _handle_other(self, method: str, path: str, request: _Request) -> _Response | None:
        """Endpoints other than the two completion APIs (filled in below)."""
        return None

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

    def _completion_events(self, body: dict[str, Any]) -> tuple[list[tuple[float, bytes]], int]:
        raise _HTTPError(404, "Text completions are not simulated yet.")

    def _completions(self, body: dict[str, Any], faults: frozenset[str]) -> _Response:
        raise _HTTPError(404, "Text completions are not simulated yet.")


def _choice(
    index: int, delta: dict[str, Any], logprobs: Any, finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


# ---------------------------------------------------------------------------------------------
# running it on loopback


class _ReadyServer(uvicorn.Server):
    """A uvicorn server that reports when it listens, so callers never sleep blindly."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class UpstreamServer:
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
        self.app = app if app is not None else DemoUpstream(speed=speed)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: _ReadyServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def start(self) -> UpstreamServer:
        """Bind, start serving, and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("UpstreamServer is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ws="none",
            http="h11",
            loop="asyncio",
            interface="asgi3",
        )
        server = _ReadyServer(config)
        self._server = server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to the thread that waits for startup
                self._error = exc
            finally:
                sock.close()
                server.ready.set()

        self._thread = threading.Thread(
            target=run, name=f"streamtape-upstream-{self.port}", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(self.startup_timeout) or not server.started:
            self.stop()
            raise RuntimeError(
                f"demo upstream did not start on {self.url}: {self._error or 'timed out'}"
            )
        return self

    def stop(self) -> None:
        """End open streams, stop the server and join its thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        if server.loop is not None:
            self.app._interrupt_loop(server.loop)
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
