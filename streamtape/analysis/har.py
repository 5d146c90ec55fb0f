"""HAR 1.2 (the HTTP Archive that browser devtools open) from recorded exchanges.

HAR has no place for per-read timing, so each entry carries it in ``_streamtape``
(custom fields start with an underscore, as the spec allows): the arrival time and
size of every network read, how the body ended, and what redaction removed.
"""

from __future__ import annotations

import base64
import http
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Headers, first_header

__all__ = ["har_entry", "har_log"]

_TEXTUAL = ("text/", "application/json", "application/x-ndjson", "application/xml", "+json")


def _headers(headers: Headers) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def _is_text(mime: str, encoded: bool) -> bool:
    return not encoded and any(t in mime for t in _TEXTUAL)


def _content(exchange: Exchange) -> dict[str, Any]:
    body = exchange.body
    mime = exchange.response_header("content-type") or "application/octet-stream"
    encoded = first_header(exchange.response_headers, "content-encoding") not in (None, "identity")
    content: dict[str, Any] = {"size": len(body), "mimeType": mime}
    if _is_text(mime.lower(), encoded):
        try:
            content["text"] = body.decode("utf-8")
            return content
        except UnicodeDecodeError:
            pass
    content["text"] = base64.b64encode(body).decode("ascii")
    content["encoding"] = "base64"
    return content


def _request(exchange: Exchange) -> dict[str, Any]:
    req = exchange.request
    out: dict[str, Any] = {
        "method": req.method,
        "url": req.url,
        "httpVersion": exchange.http_version,
        "cookies": [],
        "headers": _headers(req.headers),
        "queryString": [
            {"name": k, "value": v}
            for k, v in parse_qsl(urlsplit(req.url).query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": len(req.body),
    }
    if req.body:
        mime = req.header("content-type") or "application/octet-stream"
        try:
            out["postData"] = {"mimeType": mime, "text": req.body.decode("utf-8")}
        except UnicodeDecodeError:
            out["postData"] = {
                "mimeType": mime,
                "text": base64.b64encode(req.body).decode("ascii"),
                "_encoding": "base64",
            }
    return out


def _status_text(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def har_entry(exchange: Exchange, *, file: str = "", number: int = 0) -> dict[str, Any]:
    """One HAR entry; ``time`` and ``timings`` in ms (wait: until headers; receive: the body)."""
    wait = exchange.headers_ns / 1e6
    receive = max(0.0, (exchange.end_ns - exchange.headers_ns) / 1e6)
    started = datetime.fromtimestamp(exchange.started_at_ns / 1e9, tz=timezone.utc)
    return {
        "startedDateTime": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": wait + receive,
        "request": _request(exchange),
        "response": {
            "status": exchange.status,
            "statusText": _status_text(exchange.status),
            "httpVersion": exchange.http_version,
            "cookies": [],
            "headers": _headers(exchange.response_headers),
            "content": _content(exchange),
            "redirectURL": exchange.response_header("location") or "",
            "headersSize": -1,
            "bodySize": len(exchange.body),
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
            "send": 0,
            "wait": wait,
            "receive": receive,
        },
        "_streamtape": {
            "cassette": file,
            "exchange": number,
            "outcome": exchange.outcome.value,
            "error": exchange.error,
            "redacted": list(exchange.redacted),
            "reads": [{"t_ms": r.t_ns / 1e6, "bytes": len(r.data)} for r in exchange.reads],
        },
    }


def har_log(files: Iterable[str | os.PathLike[str]], *, creator_version: str) -> dict[str, Any]:
    """The whole HAR document for every exchange of ``files``, in file order."""
    entries = []
    for file in files:
        for number, exchange in enumerate(Cassette.open(file), start=1):
            entries.append(har_entry(exchange, file=str(file), number=number))
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "streamtape", "version": creator_version},
            "entries": entries,
        }
    }
