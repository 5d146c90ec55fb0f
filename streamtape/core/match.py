"""Which recorded exchange answers a request during replay.

A request is reduced to a key (method, path, query, canonical body; host only on
request), recorded exchanges are grouped by key, and identical requests are answered
in recorded order, so a client polling a job replays each poll's answer in turn.

When nothing matches, the error shows the nearest recorded request and exactly how
it differs, because "no match" alone sends users to diff cassettes by hand.

Pure: it takes method, URL, headers and body as primitives, so httpx, httpx2 and the
ASGI replay server all use it the same way.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from streamtape.core.codings import decoded_body
from streamtape.core.exchange import Exchange, Headers, RecordedRequest, first_header
from streamtape.core.jsonpath import Path, remove_path, split_path
from streamtape.errors import MatchConfigError, NoMatchError, ReplayExhaustedError

MATCH_PARTS = ("method", "host", "path", "query", "body")
"""Everything a key can be made of."""

DEFAULT_MATCH_ON = ("method", "path", "query", "body")
"""Host and scheme are left out so a cassette replays against any base URL."""

KeyFunction = Callable[[RecordedRequest], Hashable]
"""A custom key part computed from a request (sent or recorded); both must agree."""

_MAX_SHOWN = 10
_MAX_VALUE = 60
_MAX_CANDIDATES = 200
_MULTIPART_TOKEN = b"streamtape-boundary"


@dataclass(frozen=True)
class Difference:
    """One way a sent request differs from a recorded one."""

    where: str
    """``method``, ``path``, ``host``, ``query.NAME``, ``body``, ``body.a[0].b``, ``key``."""
    detail: str
    """Human-readable, values truncated."""
    ignore_hint: str | None = None
    """The option that would ignore it, e.g. ``ignore_fields=["user"]``."""

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass(frozen=True)
class Explanation:
    """The nearest recorded exchange to a request, and how they differ."""

    nearest: Exchange | None
    index: int | None
    """Position of ``nearest`` among the recorded exchanges."""
    differences: list[Difference]


# --- canonical forms ---------------------------------------------------------------


def _split_path(dotted: str) -> Path:
    try:
        return split_path(dotted)
    except ValueError as exc:
        raise MatchConfigError(f"{exc} in ignore_fields") from None


def _media_type(headers: Headers) -> tuple[str, dict[str, str]]:
    ctype = first_header(headers, "content-type") or ""
    main, *params = ctype.split(";")
    out: dict[str, str] = {}
    for param in params:
        name, sep, value = param.partition("=")
        if sep:
            out[name.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), out


@dataclass(frozen=True)
class _Body:
    kind: str  # "empty" | "json" | "form" | "bytes"
    value: Any
    """The parsed JSON, the form pairs, or the normalised bytes."""

    def digest(self) -> bytes:
        if self.kind == "empty":
            return b""
        if self.kind == "json":
            data = msgspec.json.encode(self.value, order="sorted")
        elif self.kind == "form":
            data = msgspec.json.encode(self.value)
        else:
            data = self.value
        return hashlib.sha256(data).digest()


def _canonical_query(query: str, ignore: frozenset[str]) -> tuple[tuple[str, str], ...]:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ignore]
    # A stable sort by name only: distinct names lose their order, repeats keep theirs.
    pairs.sort(key=lambda kv: kv[0])
    return tuple(pairs)


def _is_jsonish(media: str, body: bytes) -> bool:
    if "json" in media:
        return True
    head = body.lstrip()[:1]
    return head in (b"{", b"[")


@dataclass(frozen=True)
class _Request:
    """A request reduced to the parts a key is made of."""

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: _Body
    custom: Hashable
    raw: RecordedRequest


# --- the matcher ---------------------------------------------------------------------


class Matcher:
    """Answers requests with recorded exchanges, identical requests in recorded order.

    Options:
    - ``match_on``: the key parts, a subset of ``MATCH_PARTS`` (default without host).
    - ``ignore_fields``: JSON body paths left out of the comparison (``"user"``,
      ``"metadata.user"``, ``"messages.content"`` for every message,
      ``"messages.0.content"`` for one); for form bodies, top-level names.
    - ``ignore_query``: query parameter names left out.
    - ``key``: a function of the request whose result must also be equal.
    - ``allow_playback_repeats``: once every answer to a request was used, repeat the
      last one instead of raising ``ReplayExhaustedError``.

    Thread-safe: concurrent requests take answers under a lock.
    """

    def __init__(
        self,
        exchanges: Iterable[Exchange],
        *,
        match_on: Iterable[str] = DEFAULT_MATCH_ON,
        ignore_fields: Iterable[str] = (),
        ignore_query: Iterable[str] = (),
        key: KeyFunction | None = None,
        allow_playback_repeats: bool = False,
    ) -> None:
        if isinstance(match_on, str):
            match_on = (match_on,)
        self.match_on = frozenset(match_on)
        unknown = self.match_on - set(MATCH_PARTS)
        if unknown:
            raise MatchConfigError(
                f"unknown match_on part(s) {sorted(unknown)}; choose from {list(MATCH_PARTS)}"
            )
        if isinstance(ignore_fields, str):
            ignore_fields = (ignore_fields,)
        if isinstance(ignore_query, str):
            ignore_query = (ignore_query,)
        self.ignore_fields = tuple(ignore_fields)
        self._ignore_paths = [_split_path(p) for p in self.ignore_fields]
        self.ignore_query = frozenset(ignore_query)
        self.key_function = key
        self.allow_playback_repeats = allow_playback_repeats

        self._exchanges = list(exchanges)
        self._prepared = [
            self._prepare(ex.request.method, ex.request.url, ex.request.headers, ex.request.body)
            for ex in self._exchanges
        ]
        self._groups: dict[Hashable, list[int]] = {}
        for i, prepared in enumerate(self._prepared):
            self._groups.setdefault(self._key_of(prepared), []).append(i)
        self._used: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    # -- keys --

    def _parse_body(self, headers: Headers, body: bytes) -> _Body:
        body = decoded_body(headers, body)
        if not body:
            return _Body("empty", None)
        media, params = _media_type(headers)
        if _is_jsonish(media, body):
            try:
                value = msgspec.json.decode(body)
            except msgspec.DecodeError:
                pass
            else:
                for parts in self._ignore_paths:
                    remove_path(value, parts)
                return _Body("json", value)
        if media == "application/x-www-form-urlencoded":
            top = {p[0] for p in self._ignore_paths if len(p) == 1}
            text = body.decode("utf-8", "replace")
            pairs = [(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if k not in top]
            pairs.sort(key=lambda kv: kv[0])
            return _Body("form", pairs)
        if media.startswith("multipart/") and params.get("boundary"):
            body = body.replace(params["boundary"].encode("latin-1"), _MULTIPART_TOKEN)
        return _Body("bytes", body)

    def _prepare(self, method: str, url: str, headers: Headers, body: bytes) -> _Request:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        default_port = {"http": 80, "https": 443}.get(scheme)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is not None and port != default_port:
            host = f"{host}:{port}"
        raw = RecordedRequest(method=method, url=url, headers=list(headers), body=body)
        return _Request(
            method=method.upper(),
            host=f"{scheme}://{host}",
            path=parts.path or "/",
            query=_canonical_query(parts.query, self.ignore_query),
            body=self._parse_body(headers, body),
            custom=None if self.key_function is None else self.key_function(raw),
            raw=raw,
        )

    def _key_of(self, r: _Request) -> Hashable:
        on = self.match_on
        return (
            r.method if "method" in on else None,
            r.host if "host" in on else None,
            r.path if "path" in on else None,
            r.query if "query" in on else None,
            r.body.digest() if "body" in on else None,
            r.custom,
        )

    def key(self, method: str, url: str, headers: Headers, body: bytes) -> Hashable:
        """The key a request is matched by (equal keys answer each other)."""
        return self._key_of(self._prepare(method, url, headers, body))

    # -- matching --

    def match(self, method: str, url: str, headers: Headers, body: bytes) -> Exchange:
        """The recorded exchange that answers this request, in recorded order for repeats.

        Raises ``ReplayExhaustedError`` when every recorded answer to it was used, and
        ``NoMatchError`` (showing the nearest recorded request) when none fits.
        """
        sent = self._prepare(method, url, headers, body)
        key = self._key_of(sent)
        with self._lock:
            indices = self._groups.get(key)
            if indices:
                used = self._used.get(key, 0)
                if used < len(indices):
                    self._used[key] = used + 1
                    return self._exchanges[indices[used]]
                if self.allow_playback_repeats:
                    self._used[key] = used + 1
                    return self._exchanges[indices[-1]]
                self._used[key] = used + 1
                raise ReplayExhaustedError(
                    f"{_request_line(sent)} was recorded {len(indices)} time(s) and all "
                    f"{len(indices)} answer(s) were already replayed (this is call "
                    f"#{used + 1}); re-record the cassette to capture the extra call, or "
                    "pass allow_playback_repeats=True to replay the last answer again"
                )
        raise NoMatchError(self._no_match_message(sent))

    def add(self, exchange: Exchange, *, used: bool = False) -> None:
        """Learn one more recorded exchange, after the ones already known.

        ``used=True`` counts it as already replayed (a server that just forwarded the
        request and recorded the answer), so the next identical request is a new call.
        """
        r = exchange.request
        prepared = self._prepare(r.method, r.url, r.headers, r.body)
        key = self._key_of(prepared)
        with self._lock:
            self._exchanges.append(exchange)
            self._prepared.append(prepared)
            indices = self._groups.setdefault(key, [])
            indices.append(len(self._exchanges) - 1)
            if used:
                self._used[key] = max(self._used.get(key, 0), len(indices))

    def recorded(self) -> list[Exchange]:
        """Every exchange it answers from, in recorded order."""
        with self._lock:
            return list(self._exchanges)

    def unused(self) -> list[Exchange]:
        """Recorded exchanges not replayed yet, in recorded order."""
        with self._lock:
            left: list[int] = []
            for key, indices in self._groups.items():
                left.extend(indices[self._used.get(key, 0) :])
        return [self._exchanges[i] for i in sorted(left)]

    def reset(self) -> None:
        """Forget which answers were used, so replay starts over."""
        with self._lock:
            self._used.clear()

    def __len__(self) -> int:
        return len(self._exchanges)

    # -- diagnostics --

    def explain(self, method: str, url: str, headers: Headers, body: bytes) -> Explanation:
        """The nearest recorded exchange to a request and how they differ."""
        return self._explain(self._prepare(method, url, headers, body))

    def _explain(self, sent: _Request) -> Explanation:
        if not self._prepared:
            return Explanation(None, None, [])
        firsts = [indices[0] for indices in self._groups.values()]

        def tier(i: int) -> int:
            rec = self._prepared[i]
            return 2 * (rec.path == sent.path) + (rec.method == sent.method)

        best_tier = max(tier(i) for i in firsts)
        candidates = sorted(i for i in firsts if tier(i) == best_tier)[:_MAX_CANDIDATES]
        best: tuple[int, int, list[Difference]] | None = None
        for i in candidates:
            diffs = self._differences(self._prepared[i], sent)
            if best is None or len(diffs) < best[1]:
                best = (i, len(diffs), diffs)
        assert best is not None
        return Explanation(self._exchanges[best[0]], best[0], best[2])

    def _differences(self, rec: _Request, sent: _Request) -> list[Difference]:
        on = self.match_on
        out: list[Difference] = []
        if "method" in on and rec.method != sent.method:
            out.append(Difference("method", f"recorded {rec.method} != sent {sent.method}"))
        if "host" in on and rec.host != sent.host:
            out.append(
                Difference(
                    "host",
                    f"recorded {rec.host} != sent {sent.host}",
                    "match_on without 'host'",
                )
            )
        if "path" in on and rec.path != sent.path:
            out.append(Difference("path", f"recorded {_show(rec.path)} != sent {_show(sent.path)}"))
        if "query" in on and rec.query != sent.query:
            _diff_pairs(rec.query, sent.query, "query", "ignore_query", out)
        if "body" in on and rec.body.digest() != sent.body.digest():
            _diff_body(rec.body, sent.body, out)
        if rec.custom != sent.custom:
            out.append(
                Difference("key", f"recorded {_show(rec.custom)} != sent {_show(sent.custom)}")
            )
        return out

    def _no_match_message(self, sent: _Request) -> str:
        lines = [f"no recorded exchange matches {_request_line(sent)}{_body_note(sent)}"]
        if not self._exchanges:
            lines.append("the cassette holds no exchanges; record it first")
            return "\n".join(lines)
        exp = self._explain(sent)
        assert exp.nearest is not None and exp.index is not None
        lines.append(
            f"nearest recorded request (#{exp.index + 1} of {len(self._exchanges)}): "
            f"{exp.nearest.request.method} {_truncate(exp.nearest.request.url, 120)}"
        )
        for d in exp.differences[:_MAX_SHOWN]:
            lines.append(f"  {d}")
        if not exp.differences:
            lines.append("  (no difference in the compared parts; check the custom key function)")
        if len(exp.differences) > _MAX_SHOWN:
            lines.append(f"  ... and {len(exp.differences) - _MAX_SHOWN} more difference(s)")
        hints: dict[str, list[str]] = {}
        for d in exp.differences:
            if d.ignore_hint and "=" in d.ignore_hint:
                option, _, value = d.ignore_hint.partition("=")
                value = value.removeprefix("[").removesuffix("]")
                if value not in hints.setdefault(option, []):
                    hints[option].append(value)
            elif d.ignore_hint:
                hints.setdefault(d.ignore_hint, [])
        fix = "to fix: re-record the cassette if the request changed on purpose"
        if hints:
            shown = ", ".join(
                f"{opt}=[{', '.join(vals[:_MAX_SHOWN])}]" if vals else opt
                for opt, vals in hints.items()
            )
            fix += f", or ignore what may vary with {shown}"
        lines.append(fix)
        return "\n".join(lines)


# --- rendering and diffs ----------------------------------------------------------------


def _truncate(text: str, limit: int = _MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        text = repr(value)
    return _truncate(text)


def _request_line(r: _Request) -> str:
    return f"{r.method} {_truncate(r.raw.url, 120)}"


def _body_note(r: _Request) -> str:
    n = len(r.raw.body)
    if r.body.kind == "empty":
        return " (no body)"
    kind = {"json": "JSON", "form": "form"}.get(r.body.kind, "binary")
    return f" ({kind} body, {n} bytes)"


def _diff_pairs(
    rec: Sequence[tuple[str, str]],
    sent: Sequence[tuple[str, str]],
    prefix: str,
    option: str,
    out: list[Difference],
) -> None:
    def grouped(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
        g: dict[str, list[str]] = {}
        for k, v in pairs:
            g.setdefault(k, []).append(v)
        return g

    r, s = grouped(rec), grouped(sent)
    for name in sorted(set(r) | set(s)):
        rv, sv = r.get(name), s.get(name)
        if rv == sv:
            continue
        hint = f'{option}=["{name}"]'
        where = f"{prefix}.{name}"
        if sv is None:
            out.append(Difference(where, f"recorded {_show(_one(rv))}, missing in sent", hint))
        elif rv is None:
            out.append(Difference(where, f"sent {_show(_one(sv))}, not in the recording", hint))
        else:
            out.append(
                Difference(where, f"recorded {_show(_one(rv))} != sent {_show(_one(sv))}", hint)
            )


def _one(values: list[str] | None) -> str | list[str] | None:
    if values is not None and len(values) == 1:
        return values[0]
    return values


def _diff_body(rec: _Body, sent: _Body, out: list[Difference]) -> None:
    if rec.kind == "json" and sent.kind == "json":
        _diff_json(rec.value, sent.value, [], out)
        return
    if rec.kind == "form" and sent.kind == "form":
        _diff_pairs(rec.value, sent.value, "body", "ignore_fields", out)
        return
    if rec.kind != sent.kind:
        out.append(
            Difference("body", f"recorded {_describe_body(rec)} != sent {_describe_body(sent)}")
        )
        return
    a, b = rec.value, sent.value
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    out.append(
        Difference(
            "body",
            f"recorded {len(a)} bytes != sent {len(b)} bytes, first difference at byte {at}: "
            f"recorded {_show_bytes(a[at : at + 24])} != sent {_show_bytes(b[at : at + 24])}",
        )
    )


def _describe_body(body: _Body) -> str:
    if body.kind == "empty":
        return "no body"
    if body.kind == "json":
        return f"JSON {_show(body.value)}"
    if body.kind == "form":
        return "a form body"
    return f"{len(body.value)} bytes {_show_bytes(body.value[:24])}"


def _show_bytes(data: bytes) -> str:
    return _truncate(repr(data))


def _render_path(parts: Sequence[str | int]) -> str:
    text = "body"
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    return text


def _hint(parts: Sequence[str | int]) -> str:
    return f'ignore_fields=["{".".join(str(p) for p in parts)}"]'


def _diff_json(rec: Any, sent: Any, path: list[str | int], out: list[Difference]) -> None:
    if len(out) > 4 * _MAX_SHOWN:
        return
    if isinstance(rec, dict) and isinstance(sent, dict):
        for name in list(rec) + [k for k in sent if k not in rec]:
            sub = [*path, name]
            if name not in sent:
                out.append(
                    Difference(
                        _render_path(sub),
                        f"recorded {_show(rec[name])}, missing in sent",
                        _hint(sub),
                    )
                )
            elif name not in rec:
                out.append(
                    Difference(
                        _render_path(sub),
                        f"sent {_show(sent[name])}, not in the recording",
                        _hint(sub),
                    )
                )
            elif rec[name] != sent[name] or type(rec[name]) is not type(sent[name]):
                _diff_json(rec[name], sent[name], sub, out)
        return
    if isinstance(rec, list) and isinstance(sent, list):
        if len(rec) != len(sent):
            out.append(
                Difference(
                    _render_path(path),
                    f"recorded {len(rec)} item(s) != sent {len(sent)} item(s)",
                    _hint(path) if path else None,
                )
            )
        for i, (a, b) in enumerate(zip(rec, sent, strict=False)):
            if a != b or type(a) is not type(b):
                _diff_json(a, b, [*path, i], out)
        return
    out.append(
        Difference(
            _render_path(path),
            f"recorded {_show(rec)} != sent {_show(sent)}",
            _hint(path) if path else None,
        )
    )
