"""Fold Anthropic Messages events into the message, as anthropic's ``accumulate_event`` does.

On well-formed streams the snapshot after every event equals the SDK's (``to_dict()``,
absent == null): ``message_start`` sets the message as sent, a second one is ignored,
``content_block_start`` appends the block as sent, deltas fold only into a block of the
matching type, tool input follows the SDK's partial-JSON rule (see `blocks`), and
``message_delta`` overwrites ``stop_reason``, ``stop_sequence``, ``stop_details``,
``container`` (when non-null) and ``usage.output_tokens``, and replaces the optional
usage counts only when they are non-null.

Where the SDK raises or yields nothing, this keeps going and says what happened in
``outcome.problems`` (kind, event index, byte offset, time). Kinds besides those of
`Problem`: ``before_start`` (events before ``message_start``: folded into a message
without id), ``repeated_start`` (a second ``message_start``, ignored), ``missing_type``
(data without ``type``: taken from the ``event:`` name), ``unknown_event`` (an event
type this module does not know: skipped), ``unknown_block`` (a delta or stop for an
index no block started with), ``truncated_tool_input`` / ``invalid_tool_input`` (tool
JSON that is cut / does not parse), ``missing_stop`` (no ``message_stop``). ``done``
means ``message_stop`` arrived.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from streamtape.formats.anthropic_messages.blocks import TEXT, THINKING, TOOL, BlockState
from streamtape.formats.anthropic_messages.results import Message
from streamtape.formats.anthropic_messages.wire import (
    EVENT_DECODER,
    CitationsDelta,
    ContentBlockDelta,
    ContentBlockStart,
    ContentBlockStop,
    ErrorEvent,
    InputJsonDelta,
    JSONDict,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    decode_event_lenient,
)
from streamtape.formats.base import TRUNCATED_EVENT, ProblemLog, StreamOutcome, copy_json, same

__all__ = ["MessagesAssembler"]

_NEVER = object()
_TOP_FIELDS = (
    "id",
    "type",
    "role",
    "model",
    "stop_reason",
    "stop_sequence",
    "stop_details",
    "container",
    "usage",
)
_TOP_KNOWN = frozenset({*_TOP_FIELDS, "content"})
_REPLACED_WHEN_SET = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
)


_GROWS: dict[int, type] = {TEXT: TextDelta, THINKING: ThinkingDelta, TOOL: InputJsonDelta}
"""Which delta type appends to a block of each kind."""


class MessagesAssembler(ProblemLog):
    """Incremental assembler for one Anthropic Messages stream.

    Feed each SSE event's data with :meth:`feed` (with its ``event:`` name, if any),
    look at the message so far with :meth:`snapshot`, end with :meth:`finish`.
    """

    def __init__(self) -> None:
        self._top: JSONDict | None = None
        self._started = False  # a real message_start arrived
        self._blocks: list[BlockState] = []
        self._by_index: dict[int | None, BlockState] = {}
        self._where: tuple[int | None, int | None] = (None, None)  # offset, t_ns of the event
        self.outcome = StreamOutcome()

    # ------------------------------------------------------------------- feeding

    def _note_here(self, kind: str, message: str, index: int | None) -> None:
        self.note(kind, message, index, *self._where)

    def feed(
        self,
        data: bytes,
        *,
        event: str | None = None,
        event_index: int | None = None,
        offset: int | None = None,
        t_ns: int | None = None,
        complete: bool = True,
    ) -> None:
        """Add one SSE event: its data payload and its ``event:`` name (None if it had none).

        ``event_index`` (default: events fed so far), ``offset`` and ``t_ns`` only label
        problems and timing; ``complete=False`` says the stream ended inside this event.
        """
        out = self.outcome
        index = out.events if event_index is None else event_index
        out.events += 1
        self._where = (offset, t_ns)
        if not complete:
            self._note_here("truncated_tail", TRUNCATED_EVENT, index)
        if not data or data.isspace() or data.startswith(b"[DONE]"):
            return  # empty data (the SDK skips it) and a gateway's [DONE] mean nothing here
        name = event if event and event != "message" else None
        try:
            ev: Any = EVENT_DECODER.decode(data)
            if name == "error" and not isinstance(ev, ErrorEvent):
                raise msgspec.ValidationError("event: error")
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            ev = self._lenient(data, name, index)
            if ev is None:
                return
        self._fold([ev], index)
        if t_ns is not None:
            if out.t_first_ns is None:
                out.t_first_ns = t_ns
            out.t_last_ns = t_ns

    def _lenient(self, data: bytes, name: str | None, index: int) -> Any:
        try:
            got = decode_event_lenient(data, name)
        except (ValueError, msgspec.MsgspecError, RecursionError) as exc:
            kind = "invalid_json" if isinstance(exc, msgspec.DecodeError) else "invalid_chunk"
            self._note_here(kind, f"{kind.replace('_', ' ')}: {exc}; data {data[:80]!r}", index)
            return None
        if got.missing_type and got.type is not None:
            self._note_here(
                "missing_type", f"data without a type; took {got.type!r} from the event", index
            )
        if got.event is None:
            self._note_here("unknown_event", f"skipped an event of type {got.type!r}", index)
        return got.event

    # ------------------------------------------------------------------- folding

    def _fold(self, events: list[Any], first_index: int) -> None:
        """Fold decoded events; the hot loop (text, thinking, tool JSON deltas) is flat."""
        by_index = self._by_index
        delta_event = ContentBlockDelta
        last: object = _NEVER
        blk: BlockState | None = None
        grows: Any = None  # the delta type that extends ``blk``'s text
        add: Any = None  # blk.parts.append
        for i, ev in enumerate(events, first_index):
            if ev.__class__ is not delta_event:
                self._rare(ev, i)
                last = _NEVER  # a block start may rebind an index
                continue
            idx = ev.index
            if idx is not last:
                blk = by_index.get(idx)
                if blk is None:
                    self._note_here("unknown_block", f"a delta for block {idx!r}, never started", i)
                    last = _NEVER
                    continue
                last, grows, add = idx, _GROWS.get(blk.kind), blk.parts.append
            d: Any = ev.delta  # Any: the identity tests are not type tests
            if d.__class__ is grows:
                add(d.value)
            elif d.__class__ is SignatureDelta:
                assert blk is not None
                if blk.kind == THINKING:
                    blk.signature = d.signature
            elif d.__class__ is CitationsDelta:
                assert blk is not None
                if blk.kind == TEXT:
                    blk.cite(d.citation)
            # any other delta does not fit the block (or is unknown): ignored, as the SDK does
        self.outcome.chunks += len(events)

    def _rare(self, ev: Any, i: int) -> None:
        """Every event but a content delta."""
        cls = ev.__class__
        if cls is ContentBlockStart:
            self._need_top(i)
            raw = ev.content_block if isinstance(ev.content_block, dict) else {}
            blk = BlockState(copy_json(raw), i, *self._where)
            index = ev.index if isinstance(ev.index, int) else len(self._blocks)
            self._blocks.append(blk)
            self._by_index[index] = blk
        elif cls is ContentBlockStop:
            if ev.index not in self._by_index:
                self._note_here("unknown_block", f"a stop for block {ev.index!r}, never started", i)
        elif cls is MessageDelta:
            self._message_delta(ev, i)
        elif cls is MessageStart:
            self._message_start(ev.message, i)
        elif cls is MessageStop:
            self.outcome.done = True
        elif cls is ErrorEvent:
            self._error(ev.error, i)
        # Ping: nothing

    def _need_top(self, i: int) -> JSONDict:
        if self._top is None:
            self._note_here(
                "before_start", "events before message_start; folded into a message without id", i
            )
            self._top = {}
        return self._top

    def _message_start(self, message: JSONDict, i: int) -> None:
        if self._started:
            self._note_here("repeated_start", "a second message_start was ignored", i)
            return
        self._started = True
        top = copy_json(message) if isinstance(message, dict) else {}
        content = top.pop("content", None)
        if self._top is not None:  # events came first: keep what they folded
            top.update({k: v for k, v in self._top.items() if k not in top})
        self._top = top
        for raw in content if isinstance(content, list) else ():
            blk = BlockState(raw if isinstance(raw, dict) else {}, i, *self._where)
            self._by_index.setdefault(len(self._blocks), blk)
            self._blocks.append(blk)

    def _message_delta(self, ev: MessageDelta, i: int) -> None:
        top = self._need_top(i)
        d = ev.delta if isinstance(ev.delta, dict) else {}
        top["stop_reason"] = d.get("stop_reason")
        top["stop_sequence"] = d.get("stop_sequence")
        top["stop_details"] = d.get("stop_details")
        if d.get("container") is not None:
            top["container"] = d["container"]
        u = ev.usage
        if not isinstance(u, dict):
            return
        usage = top.get("usage")
        if not isinstance(usage, dict):
            usage = top["usage"] = {}
        if "output_tokens" in u:
            usage["output_tokens"] = u["output_tokens"]
        for key in _REPLACED_WHEN_SET:
            value = u.get(key)
            if value is not None:
                usage[key] = value

    def _error(self, err: Any, i: int) -> None:
        msg = err.get("message") if isinstance(err, dict) else None
        if not isinstance(msg, str) or not msg:
            msg = str(err)[:200]
        if self.outcome.error is None:
            self.outcome.error = err
        self._note_here("error_event", f"the server sent an error mid-stream: {msg}", i)

    # ------------------------------------------------------------------- results

    def snapshot(self) -> Message:
        """The message as assembled so far (a copy: feeding on does not change it)."""
        return self._build(copy=True)

    def _build(self, copy: bool) -> Message:
        top = self._top or {}
        cp = copy_json if copy else same
        fields = {k: cp(top[k]) for k in _TOP_FIELDS if k in top}
        extra = {k: cp(v) for k, v in top.items() if k not in _TOP_KNOWN} or None
        out = self.outcome
        return Message(
            content=[b.build(copy) for b in self._blocks],
            extra=extra,
            outcome=msgspec.structs.replace(out, problems=list(out.problems)),
            **cast(Any, fields),
        )

    def finish(self) -> Message:
        """End the stream: note cut or invalid tool input, a missing ``message_stop``, an
        empty stream; return the message (feed no more after this)."""
        out = self.outcome
        for blk in self._blocks:
            if blk.kind == TOOL and not blk.input_complete():
                kind = "invalid_tool_input" if blk.input_bad else "truncated_tool_input"
                what = "does not parse" if blk.input_bad else "is cut short"
                self.note(
                    kind,
                    f"the input JSON of tool block {blk.raw.get('name')!r} {what}",
                    blk.event_index,
                    blk.offset,
                    blk.t_ns,
                )
        kinds = {p.kind for p in out.problems}
        if out.streamed and not out.done and "missing_stop" not in kinds:
            self.note("missing_stop", "the stream ended without message_stop")
        if self._top is None and out.error is None and "empty" not in kinds:
            self.note("empty", "no message event in the stream")
        return self._build(copy=False)

    # ------------------------------------------------------------ whole messages

    def start_whole(self, message: JSONDict) -> None:
        """Take a whole non-stream ``message`` (its content complete)."""
        self.outcome.streamed = False
        self.outcome.done = True
        self._message_start(message, 0)
