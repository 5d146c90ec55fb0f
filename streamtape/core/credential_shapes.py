"""What a credential looks like: provider key shapes, found in raw and JSON-decoded text.

The shapes are tight (a fixed prefix and a long random body) so that model text, ids
such as ``chatcmpl-…`` or ``call_…`` and base64 images are not taken for keys.

Speed: request bodies (and, on request, response bodies) can be large, so a large text
is not searched with the shape patterns directly (Python's ``re`` tries each of them at
almost every byte, about 0.2 us per byte).
Every real key holds a run of at least 16 letters and digits; one ``translate`` pass
marks such runs, and only a window around each run is checked, first for a shape
prefix with plain substring tests, then with the patterns. Windows repeat in a stream
(the same id in every event), so each distinct one is checked once. Inside a window,
JSON escapes (``sk\\u002dproj-…``, ``\\/``) are resolved and the decoded text is
checked too. Texts below ``_SMALL`` bytes are checked whole, without the run rule.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

Span = tuple[int, int, str]
"""``(start, end, kind)`` of one credential-shaped match, in bytes of the scanned text."""

SHAPES: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("Anthropic API key (sk-ant-...)", re.compile(rb"sk-ant-[A-Za-z0-9_-]+")),
    ("secret key (sk-...)", re.compile(rb"sk-[A-Za-z0-9_-]{20,}")),
    ("Google API key (AIza...)", re.compile(rb"AIza[0-9A-Za-z_-]{35}")),
    ("Hugging Face token (hf_...)", re.compile(rb"hf_[A-Za-z0-9]{30,}")),
    ("GitHub token (ghp_...)", re.compile(rb"gh[pousr]_[A-Za-z0-9]{30,}")),
    ("GitHub token (github_pat_...)", re.compile(rb"github_pat_[A-Za-z0-9_]{40,}")),
    (
        "AWS access key id (AKIA...)",
        re.compile(rb"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ),
    ("Slack token (xox...)", re.compile(rb"xox[abeoprs]-[A-Za-z0-9-]{10,}")),
    (
        "JSON web token (eyJ...)",
        re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
    ("private key (-----BEGIN ...)", re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    # A token of 16+ token characters with a digit, so prose ("Bearer tokens",
    # "Bearer authentication-headers") is not a hit.
    (
        "bearer token",
        re.compile(rb"(?i:bearer)\s+(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*"),
    ),
)

_PREFIX = re.compile(
    rb"sk-|aiza|hf_|gh[pousr]_|github_pat_|a[kbs]ia|acca|xox|eyj|private key|bearer", re.I
)
"""Literals one of which every shape contains: the cheap test before the patterns."""

_SMALL = 2048
_RUN = 16
_MARGIN = 48
"""How far before a run a shape may start (``xoxb-<12 digits>-<13 digits>-`` is the longest)."""
_RUN_TABLE = bytes(
    0x61 if chr(c).isascii() and (chr(c).isalnum() or c == 0x5C) else 0x20 for c in range(256)
)
_RUN_NEEDLE = b"a" * _RUN
_CONTINUATION = re.compile(rb"[A-Za-z0-9_.~+/=\\-]*")
_Escapes = tuple[list[int], list[int]]
"""Per escape: the decoded offset just after it, and the bytes saved up to there."""
_ESCAPE = re.compile(rb"\\(?:u00([0-7][0-9A-Fa-f])|/)")


def may_hold_shapes(data: bytes) -> bool:
    """False only when ``data`` surely holds no shape: a cheap gate for many small fields."""
    return _PREFIX.search(data) is not None or b"\\" in data


def find_shapes(data: bytes) -> list[Span]:
    """Every credential-shaped match in ``data``, by offset; overlapping matches count once."""
    if len(data) <= _SMALL:
        hits = _check(data, 0)
    else:
        hits = []
        seen: set[bytes] = set()
        for start, end in _windows(data):
            window = data[start:end]
            if window in seen:
                continue
            found = _check(window, start)
            if found:
                hits += found
            else:
                seen.add(window)
    return _first_of_overlaps(hits)


def _windows(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` around every run of ``_RUN`` letters or digits, each byte once."""
    marks = data.translate(_RUN_TABLE)
    pos = 0
    while True:
        hit = marks.find(_RUN_NEEDLE, pos)
        if hit < 0:
            return
        begin = marks.rfind(b" ", 0, hit) + 1
        continuation = _CONTINUATION.match(data, hit)
        end = continuation.end() if continuation is not None else hit + _RUN
        yield max(pos, begin - _MARGIN), end
        pos = max(end, hit + _RUN)


def _check(window: bytes, base: int) -> list[Span]:
    """The shapes in one window (offsets shifted by ``base``), raw and JSON-decoded."""
    hits: list[Span] = []
    if _PREFIX.search(window) is not None:
        hits += _match(window, base)
    if b"\\" in window:
        decoded, escapes = _unescape(window)
        if decoded != window and _PREFIX.search(decoded) is not None:
            for start, end, kind in _match(decoded, 0):
                hits.append((base + _raw(escapes, start), base + _raw(escapes, end), kind))
    return hits


def _match(data: bytes, base: int) -> list[Span]:
    return [
        (base + m.start(), base + m.end(), kind)
        for kind, pattern in SHAPES
        for m in pattern.finditer(data)
    ]


def _unescape(data: bytes) -> tuple[bytes, _Escapes]:
    """``data`` with ASCII JSON escapes resolved, and where they were (see ``_raw``)."""
    afters: list[int] = []
    shifts: list[int] = []
    out: list[bytes] = []
    last = 0
    shift = 0
    for m in _ESCAPE.finditer(data):
        out.append(data[last : m.start()])
        out.append(bytes([int(m.group(1), 16)]) if m.group(1) else b"/")
        afters.append(m.start() - shift + 1)
        shift += len(m.group(0)) - 1
        shifts.append(shift)
        last = m.end()
    out.append(data[last:])
    return b"".join(out), (afters, shifts)


def _raw(escapes: _Escapes, decoded: int) -> int:
    """The raw offset of a decoded offset: add the bytes saved by every escape before it."""
    afters, shifts = escapes
    i = bisect.bisect_right(afters, decoded) - 1
    return decoded + (shifts[i] if i >= 0 else 0)


def _first_of_overlaps(hits: list[Span]) -> list[Span]:
    hits.sort()
    out: list[Span] = []
    end = -1
    for start, stop, kind in hits:
        if start < end:
            continue
        out.append((start, stop, kind))
        end = max(end, stop)
    return out
