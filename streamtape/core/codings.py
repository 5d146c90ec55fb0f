"""HTTP content codings (gzip, deflate) of bodies: what redaction and matching look inside.

A body sent or received with ``content-encoding: gzip`` hides its fields from anything
that reads bytes, so both the matcher and the redactor decode it first. Encoding again
is deterministic (no timestamp, fixed level), so the same content gives the same bytes
on the recording and on the replaying side.
"""

from __future__ import annotations

import gzip
import zlib

from streamtape.core.exchange import Headers, first_header

CODINGS = frozenset({"gzip", "x-gzip", "deflate"})


def coding_of(headers: Headers) -> str | None:
    """The body's content coding (lower-case), or None when it is sent as is."""
    value = (first_header(headers, "content-encoding") or "").strip().lower()
    return value if value and value != "identity" else None


def decode(coding: str | None, body: bytes) -> bytes | None:
    """The decoded body; None when the coding is unknown or the bytes do not decode."""
    if coding is None:
        return body
    try:
        if coding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # raw deflate, as some servers send it
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, zlib.error, EOFError):
        return None
    return None


def encode(coding: str, data: bytes) -> bytes:
    """``data`` in ``coding`` (one of ``CODINGS``), the same bytes for the same data."""
    if coding == "deflate":
        return zlib.compress(data, 6)
    return gzip.compress(data, compresslevel=6, mtime=0)


def decoded_body(headers: Headers, body: bytes) -> bytes:
    """The body decoded by its content coding, or as it is if that fails."""
    decoded = decode(coding_of(headers), body)
    return body if decoded is None else decoded
