"""Masking a secret wherever else it shows up: in place, with a mask of the same length.

A value redacted from one field (an API key in a header) can come back in another (an
echoing gateway puts it into the response body), and the scan can find a key in the
response. Those bytes are overwritten by a mask of exactly their length, so every other
offset stays where it was: the reads keep their sizes and times, SSE offsets and
content lengths stay true. A content-encoded body is decoded, masked and encoded again;
its compressed size may change, so its reads are cut again at the old sizes (the last
read takes what is left) and ``content-length`` is corrected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

import msgspec

from streamtape.core import codings
from streamtape.core.credential_shapes import find_shapes
from streamtape.core.exchange import Headers, Read

MIN_SCRUB = 6
"""Shorter values are replaced in their own field but not hunted elsewhere (too many false hits)."""

Labeled = tuple[int, int, str]
"""``(start, end, label)``: bytes to mask and what they are (a source field or a key shape)."""


def mask(length: int) -> bytes:
    """``<redacted>`` stretched or cut to exactly ``length`` bytes (``*`` below 3)."""
    if length < 3:
        return b"*" * length
    return b"<" + (b"redacted" + b"*" * length)[: length - 2] + b">"


def scrub_shapes(data: bytes) -> tuple[bytes, list[Labeled]]:
    """``data`` with every credential-shaped string masked (same length), and the spans.

    For cassettes recorded before a shape was known (``streamtape redact``); a recorder
    refuses such an exchange instead.
    """
    spans = find_shapes(data)
    return (apply_mask(data, spans), spans) if spans else (data, [])


def apply_mask(data: bytes, spans: Iterable[tuple[int, int, str]]) -> bytes:
    """``data`` with every span masked; the length does not change."""
    out = bytearray(data)
    for start, end, _ in spans:
        out[start:end] = mask(end - start)
    return bytes(out)


_DISTINCT = 12
"""Needles this long are masked even inside a word; shorter ones only as whole words."""
_PLAIN = re.compile(r"[A-Za-z0-9._~-]*")


def _alnum(byte: int) -> bool:
    return 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122


def _hits(data: bytes, needle: bytes) -> list[tuple[int, int]]:
    """Where ``needle`` is in ``data``; a short one must not continue a word on either side."""
    out: list[tuple[int, int]] = []
    start = data.find(needle)
    bounded = len(needle) < _DISTINCT
    while start >= 0:
        end = start + len(needle)
        if not bounded:
            out.append((start, end))
            start = data.find(needle, start + 1)
            continue
        before = data[start - 1] if start else 0
        after = data[end] if end < len(data) else 0
        if not (_alnum(needle[0]) and _alnum(before)) and not (
            _alnum(needle[-1]) and _alnum(after)
        ):
            out.append((start, end))
        start = data.find(needle, start + 1)
    return out


class Echoes:
    """The forms (raw, JSON-escaped, URL-encoded) of redacted values, found anywhere.

    A hit must not continue a word (``123456`` is not masked inside ``1234567``).
    """

    def __init__(self) -> None:
        self._needles: dict[bytes, str] = {}
        self._minimal: list[tuple[bytes, str]] | None = None

    def add(self, value: str, source: str) -> None:
        """Look for ``value`` (redacted from ``source``) in the other fields too."""
        if len(value) < MIN_SCRUB:
            return
        if _PLAIN.fullmatch(value):  # every encoding of it is the same bytes
            forms = {value}
        else:
            forms = {
                value,
                json.dumps(value)[1:-1],
                msgspec.json.encode(value)[1:-1].decode("utf-8", "surrogateescape"),
                quote(value, safe=""),
                quote_plus(value, safe=""),
            }
        for form in forms:
            needle = form.encode("utf-8", "surrogateescape")
            if len(needle) >= MIN_SCRUB:
                self._needles.setdefault(needle, source)
        self._minimal = None

    def __bool__(self) -> bool:
        return bool(self._needles)

    def _search(self) -> list[tuple[bytes, str]]:
        """The needles without those holding another one (masking the inner one suffices)."""
        if self._minimal is None:
            needles = sorted(self._needles.items(), key=lambda item: len(item[0]))
            kept: list[tuple[bytes, str]] = []
            for needle, source in needles:
                if not any(_hits(needle, inner) for inner, _ in kept):
                    kept.append((needle, source))
            self._minimal = kept
        return self._minimal

    def find(self, data: bytes) -> list[Labeled]:
        return [
            (start, end, f"copy of {source}")
            for needle, source in self._search()
            for start, end in _hits(data, needle)
        ]

    def text(self, value: str) -> tuple[str, list[str]]:
        """A text field with every echo masked, and the labels of what was."""
        return mask_text(value, self.find)


def mask_text(value: str, find: Callable[[bytes], list[Labeled]]) -> tuple[str, list[str]]:
    """``value`` with what ``find`` reports in its UTF-8 bytes masked, and those labels."""
    raw = value.encode("utf-8", "surrogateescape")
    spans = find(raw)
    if not spans:
        return value, []
    masked = apply_mask(raw, spans).decode("utf-8", "surrogateescape")
    return masked, [label for _, _, label in spans]


def mask_headers(
    headers: Headers, prefix: str, find: Callable[[bytes], list[Labeled]]
) -> tuple[Headers, list[str]]:
    """Header values with what ``find`` reports masked, and ``prefix.header:NAME (label)``."""
    if not find(b"\n".join(v.encode("utf-8", "surrogateescape") for _, v in headers)):
        return headers, []  # one look at them all, the usual answer
    out: Headers = []
    names: list[str] = []
    for name, value in headers:
        value, labels = mask_text(value, find)
        names += [f"{prefix}.header:{name.lower()} ({label})" for label in labels]
        out.append((name, value))
    return out, names


def mask_reads(
    reads: list[Read], headers: Headers, find: Callable[[bytes], list[Labeled]]
) -> tuple[list[Read], Headers, list[str]] | None:
    """The body's reads with what ``find`` reports masked (None when nothing is).

    ``find`` sees the decoded body when the response is gzip or deflate encoded.
    """
    body = b"".join(r.data for r in reads)
    coding = codings.coding_of(headers)
    decoded = codings.decode(coding, body) if coding in codings.CODINGS else body
    if decoded is None:
        return None
    spans = find(decoded)
    if not spans:
        return None
    labels = [label for _, _, label in spans]
    masked = apply_mask(decoded, spans)
    if coding is None or decoded is body:
        return _cut_like(reads, masked), headers, labels
    encoded = codings.encode(coding, masked)
    fixed = [(k, str(len(encoded)) if k.lower() == "content-length" else v) for k, v in headers]
    return _cut_like(reads, encoded), fixed, labels


def _cut_like(reads: list[Read], body: bytes) -> list[Read]:
    """``body`` cut at the sizes of ``reads`` (the last one takes the rest), same times."""
    out: list[Read] = []
    pos = 0
    for i, read in enumerate(reads):
        end = len(body) if i == len(reads) - 1 else min(len(body), pos + len(read.data))
        out.append(Read(read.t_ns, body[pos:end]))
        pos = end
    return out
