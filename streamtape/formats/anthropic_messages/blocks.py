"""One content block being accumulated, and the SDK's partial-JSON rule for tool input.

Strings are kept as parts and joined when a result is built. Tool input follows
anthropic's ``accumulate_event``: ``input`` is ``jiter.from_json(buffer,
partial_mode=True)`` of everything streamed so far, and stays as the block started
(``{}``) while the buffer is empty. The SDK re-parses on every delta; here the parse
is lazy (at `snapshot` / `finish`), which gives the same value because it depends only
on the buffer. Where the SDK raises on a buffer that does not parse, the last parsable
prefix at a delta boundary is kept.
"""

from __future__ import annotations

from typing import Any, cast

from jiter import from_json
from msgspec import UNSET

from streamtape.formats.anthropic_messages.results import (
    TOOL_BLOCK_TYPES,
    ContentBlock,
    OtherBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from streamtape.formats.anthropic_messages.wire import JSONDict
from streamtape.formats.base import copy_json, same

TEXT, THINKING, TOOL, OTHER = 0, 1, 2, 3
"""Block kinds, by which deltas they take."""

_KNOWN: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "citations"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
    **{t: frozenset({"type", "id", "name", "input"}) for t in TOOL_BLOCK_TYPES},
}
_ONLY_TYPE = frozenset({"type"})


def _parses(buf: bytes) -> tuple[bool, Any]:
    try:
        return True, from_json(buf, partial_mode=True)
    except (ValueError, RecursionError):
        return False, None


class BlockState:
    """A block as started by ``content_block_start`` plus the deltas folded into it."""

    __slots__ = (
        "citations",
        "complete",
        "event_index",
        "good",
        "input",
        "input_bad",
        "kind",
        "offset",
        "parsed",
        "parts",
        "raw",
        "signature",
        "t_ns",
    )

    def __init__(
        self,
        raw: JSONDict,
        event_index: int | None = None,
        offset: int | None = None,
        t_ns: int | None = None,
    ) -> None:
        self.raw = raw
        kind = raw.get("type")
        self.kind = (
            TEXT
            if kind == "text"
            else THINKING
            if kind == "thinking"
            else TOOL
            if kind in TOOL_BLOCK_TYPES
            else OTHER
        )
        self.parts: list[str] = []
        self.citations: Any = raw.get("citations", UNSET)
        self.signature: Any = raw.get("signature", UNSET)
        self.input: Any = raw.get("input", UNSET)
        self.parsed = 0  # how many parts ``input`` is up to date with
        self.good = 0  # how many parts the last successful parse read
        self.input_bad = False  # the whole buffer did not parse
        self.complete = True  # the whole buffer is strict JSON (or empty)
        self.event_index = event_index
        self.offset = offset
        self.t_ns = t_ns

    def cite(self, citation: Any) -> None:
        """``citations_delta``: the first one makes the list, the others append (as the SDK)."""
        if not self.citations:
            self.citations = [citation]
        else:
            if self.citations is self.raw.get("citations"):
                self.citations = list(cast(list[Any], self.citations))
            self.citations.append(citation)

    # ------------------------------------------------------------------ tool input

    def json_text(self) -> str:
        return "".join(self.parts)

    def tool_input(self) -> Any:
        """``input`` by the SDK's rule, brought up to date with the parts streamed since."""
        n = len(self.parts)
        if self.parsed == n:
            return self.input
        buf = self.json_text().encode("utf-8", "surrogatepass")
        self.complete = True
        if buf:
            try:  # whole JSON: the partial parse would give the same value
                self.input, self.good, self.input_bad = from_json(buf), n, False
            except (ValueError, RecursionError):
                self.complete = False  # cut, invalid, or trailing bytes after the value
                ok, value = _parses(buf)
                if ok:
                    self.input, self.good = value, n
                else:
                    self._last_good_prefix(n)
                self.input_bad = not ok
        self.parsed = n
        return self.input

    def _last_good_prefix(self, n: int) -> None:
        """The longest prefix, at a delta boundary, that parses (a binary search: a JSON
        syntax error stays one as the text grows, nearly always)."""
        lo, hi = self.good, n - 1  # ``good`` parts parsed (or none were)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            buf = "".join(self.parts[:mid]).encode("utf-8", "surrogatepass")
            ok, value = _parses(buf) if buf else (False, None)
            if ok:
                self.input, self.good, lo = value, mid, mid
            else:
                hi = mid - 1

    def input_complete(self) -> bool:
        """Whether the streamed text is one whole JSON value (not cut, not invalid)."""
        self.tool_input()
        return self.complete

    # ---------------------------------------------------------------------- build

    def build(self, copy: bool) -> ContentBlock:
        """The result block; ``copy`` when the state may still change (snapshots)."""
        cp = copy_json if copy else same
        raw = self.raw
        kind = raw.get("type")
        known = _KNOWN.get(kind, _ONLY_TYPE) if isinstance(kind, str) else _ONLY_TYPE
        extra = {k: cp(v) for k, v in raw.items() if k not in known} or None
        if self.kind == TEXT:
            base = raw.get("text")
            text = base if isinstance(base, str) else ""
            return TextBlock(
                type=kind,
                text=text + "".join(self.parts) if self.parts else text,
                citations=cp(self.citations),
                extra=extra,
            )
        if self.kind == THINKING:
            base = raw.get("thinking")
            think = base if isinstance(base, str) else ""
            return ThinkingBlock(
                type=kind,
                thinking=think + "".join(self.parts) if self.parts else think,
                signature=self.signature,
                extra=extra,
            )
        if self.kind == TOOL:
            value = self.tool_input()
            return ToolUseBlock(
                type=kind,
                id=raw.get("id"),
                name=raw.get("name"),
                input=cp(value),
                input_json=self.json_text() if self.parts else None,
                input_complete=self.complete,
                extra=extra,
            )
        if kind == "redacted_thinking":
            return RedactedThinkingBlock(type=kind, data=raw.get("data"), extra=extra)
        return OtherBlock(type=kind if isinstance(kind, str) else None, extra=extra)
