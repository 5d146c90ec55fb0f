"""Which handler answers a request, and which faults it is served with.

Every request passes the same gate in the same order: an API key, then the
``x-demo-fault`` header (an unknown fault is a 400), then the HTTP faults (500, 429),
then the route table. A route is one line, ``Route(method, pattern, handler)``;
``{name}`` in a pattern matches one path segment, ``{name:path}`` the rest of the path,
and the first route that matches wins. Streamed handlers pass their clean schedule to
`streamed`, which applies the stream faults of `streamtape.core.faults`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streamtape.core.faults import STREAM_FAULTS, Ending, Event, apply_faults
from streamtape.simulator.asgi import HTTPError, Request, Response
from streamtape.simulator.synth import DONE, dumps

FAULT_HEADER = "x-demo-fault"
"""Request header naming the faults to inject (comma-separated)."""
FAULTS = STREAM_FAULTS | {"http-500", "http-429"}
"""Every fault kind `x-demo-fault` accepts."""

SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_STREAM_ERROR = {
    "error": {"message": SERVER_ERROR, "type": "server_error", "param": None, "code": None}
}
_STREAM_ERROR_EVENT = b"data: " + dumps(_STREAM_ERROR) + b"\n\n"
_FAULT_SEED_MASK = 0xFA  # the fault's random choices differ from the reply's own


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, the faults it asked for, the path's parameters."""

    request: Request
    faults: frozenset[str]
    params: dict[str, str]

    def json(self) -> dict[str, Any]:
        """The request body as a JSON object (a 400 otherwise)."""
        return self.request.json()


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """``method`` (``*`` for any) and ``pattern`` (with ``{name}`` parameters) -> handler."""

    method: str
    pattern: str
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path's parameters if this route serves `method` on `path`, else None."""
        if self.method not in ("*", method):
            return None
        found = _compile(self.pattern).fullmatch(path)
        return None if found is None else found.groupdict()


_PARAM_RE = re.compile(r"\{(\w+)(:path)?\}")


@functools.cache
def _compile(pattern: str) -> re.Pattern[str]:
    """``/v1/files/{id}`` -> ``/v1/files/(?P<id>[^/]+)``; ``{id:path}`` takes slashes too."""
    parts = _PARAM_RE.split(pattern)
    regex = ""
    for i in range(0, len(parts), 3):  # literal, name, ":path" or None, literal, ...
        regex += re.escape(parts[i])
        if i + 1 < len(parts):
            regex += f"(?P<{parts[i + 1]}>{'.+' if parts[i + 2] else '[^/]+'})"
    return re.compile(regex)


def parse_faults(fault: str | Iterable[str] | None) -> frozenset[str]:
    """Fault kinds from a header value or a list; a 400 names any unknown one."""
    if fault is None:
        return frozenset()
    items = fault.split(",") if isinstance(fault, str) else list(fault)
    kinds = frozenset(k.strip().lower() for k in items if k.strip())
    unknown = kinds - FAULTS
    if unknown:
        raise HTTPError(
            400,
            f"Unknown {FAULT_HEADER} value(s): {', '.join(sorted(unknown))}; "
            f"expected some of: {', '.join(sorted(FAULTS))}.",
        )
    return kinds


def with_faults(
    events: Sequence[Event], seed: int, faults: frozenset[str]
) -> tuple[list[Event], Ending]:
    """`events` as a misbehaving OpenAI-compatible server sends them (`seed`: the reply's)."""
    return apply_faults(
        events,
        faults & STREAM_FAULTS,
        seed=seed ^ _FAULT_SEED_MASK,
        error_event=_STREAM_ERROR_EVENT,
        final=DONE,
    )


def streamed(events: Sequence[Event], seed: int, faults: frozenset[str]) -> Response:
    """A streamed response of `events`, with the stream faults applied."""
    stream, ending = with_faults(events, seed, faults)
    return Response(stream=stream, ending=ending)


def _check_key(request: Request) -> None:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        raise HTTPError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


def _raise_http_faults(faults: frozenset[str]) -> None:
    if "http-500" in faults:
        raise HTTPError(500, SERVER_ERROR, "server_error")
    if "http-429" in faults:
        raise HTTPError(
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


def route(routes: Iterable[Route], request: Request) -> Response:
    """Answer `request` with the first route that matches it (errors raise `HTTPError`)."""
    _check_key(request)
    faults = parse_faults(request.headers.get(FAULT_HEADER))
    _raise_http_faults(faults)
    method, path = request.method, request.path.rstrip("/")
    for candidate in routes:
        params = candidate.match(method, path)
        if params is not None:
            return candidate.handler(Call(request, faults, params))
    raise HTTPError(404, f"Invalid URL ({method} {request.path})", code="unknown_url")
