"""The fail-closed check: credential-shaped text left anywhere in an exchange.

Redaction replaces what it knows by name; this finds what it does not (a new
provider's header, a key pasted into a prompt, a key written with JSON escapes) by
its shape (see ``credential_shapes``). Findings name the field and the kind of key,
never the value, so they can be shown and logged.
"""

from __future__ import annotations

import msgspec

from streamtape.core.codings import CODINGS, coding_of, decode
from streamtape.core.credential_shapes import find_shapes, may_hold_shapes
from streamtape.core.exchange import Exchange, Headers


class Finding(msgspec.Struct, frozen=True):
    """Something that looks like a credential: where and what kind, never the value."""

    field: str
    """E.g. ``request.header:x-custom``, ``request.url``, ``request.body``."""
    kind: str
    offset: int
    """Byte offset of the match within that field (decoded, for a content-encoded body)."""


def scan_text(data: bytes | str, field: str = "") -> list[Finding]:
    """Every credential-shaped match in ``data``, by offset; overlapping matches count once."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return [Finding(field, kind, start) for start, _, kind in find_shapes(raw)]


def _scan_body(headers: Headers, body: bytes, field: str) -> list[Finding]:
    coding = coding_of(headers)
    decoded = decode(coding, body)
    if decoded is None:
        return [Finding(field, f"unreadable {coding}-encoded body", 0)]
    return scan_text(decoded, field)


def _scan_fields(fields: list[tuple[str, str]]) -> list[Finding]:
    texts = [value.encode("utf-8", "surrogateescape") for _, value in fields]
    if not may_hold_shapes(b"\n".join(texts)):  # one cheap look at all the small fields
        return []
    found: list[Finding] = []
    for (field, _), text in zip(fields, texts, strict=True):
        found += scan_text(text, field)
    return found


def scan_exchange(
    exchange: Exchange, *, response_body: bool = True, response: bool = True
) -> list[Finding]:
    """Scan the request (headers, URL, body) and the response (headers, body).

    Content-encoded bodies are decoded first; a request body that cannot be decoded is
    a finding, since nothing can vouch for it. ``response=False`` skips the response.
    """
    req = exchange.request
    fields = [(f"request.header:{name.lower()}", value) for name, value in req.headers]
    found = _scan_fields([*fields, ("request.url", req.url)])
    if req.body:
        found += _scan_body(req.headers, req.body, "request.body")
    if not response:
        return found
    headers = exchange.response_headers
    found += _scan_fields([(f"response.header:{n.lower()}", v) for n, v in headers])
    if response_body and exchange.reads:
        coding = coding_of(headers)
        if coding is None or coding in CODINGS:
            found += _scan_body(headers, exchange.body, "response.body")
    return found
