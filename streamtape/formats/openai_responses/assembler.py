"""Fold Responses API stream events into the full ``response`` object, incrementally.

On well-formed streams the result equals what openai-python's ``ResponseStreamState``
returns: the terminal event's ``response``, with ``output`` rebuilt from the
``output_item.done`` items when the payload has none. Where that SDK raises (a cut
stream, ``response.incomplete`` / ``response.failed``, error events, items keyed by
rotating ids or completed out of order, unknown events, deltas for items never
announced) this assembler keeps going: it folds every event kind the API defines
(text, refusals, function / custom / MCP arguments, reasoning text and summaries,
annotations, code, shell commands and output, hosted-tool statuses) keyed by
``output_index``, so a cut stream yields the best partial response, and it records
what went wrong, and where, in ``outcome``.

Problem kinds beyond the shared ones (see `streamtape.formats.base.Problem`):
``missing_done`` (no terminal event), ``unknown_event`` (an event type this module
does not fold, or data without a type), ``missing_item`` (an event for an output
index never announced), ``null_item``, ``duplicate_item`` (an index announced twice),
``identity_changed`` (the lifecycle response id changed), ``output_rebuilt`` (the
terminal payload's ``output`` was empty although items streamed: rebuilt from them).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain, compress, count, islice
from operator import ne
from typing import Any

import msgspec

from streamtape.formats.base import ProblemLog, StreamOutcome, copy_json, fix_surrogates, same
from streamtape.formats.openai_responses.fold import Slot, stand_in
from streamtape.formats.openai_responses.results import Response, response_from
from streamtape.formats.openai_responses.wire import (
    EVENT_DECODER,
    Event,
    EventCore,
    JSONDict,
    NotAnEvent,
    decode_event_lenient,
)

__all__ = ["ResponsesAssembler"]

_P = "response."
LIFECYCLE = frozenset({_P + "created", _P + "queued", _P + "in_progress"})
TERMINAL = frozenset({_P + "completed", _P + "incomplete", _P + "failed"})

# delta event -> (buffer field, the event attribute that says which sub-entry)
DELTAS: dict[str, tuple[str, str | None]] = {
    _P + "output_text.delta": ("text", "content_index"),
    _P + "refusal.delta": ("refusal", "content_index"),
    _P + "function_call_arguments.delta": ("arguments", None),
    _P + "mcp_call_arguments.delta": ("arguments", None),
    _P + "custom_tool_call_input.delta": ("input", None),
    _P + "reasoning_text.delta": ("text", "content_index"),
    _P + "reasoning_summary_text.delta": ("summary", "summary_index"),
    _P + "code_interpreter_call_code.delta": ("code", None),
    _P + "shell_call_command.delta": ("command", "command_index"),
}
# done event -> (field, sub-entry attribute, the attribute holding the full value)
DONES: dict[str, tuple[str, str | None, str]] = {
    _P + "output_text.done": ("text", "content_index", "text"),
    _P + "refusal.done": ("refusal", "content_index", "refusal"),
    _P + "function_call_arguments.done": ("arguments", None, "arguments"),
    _P + "mcp_call_arguments.done": ("arguments", None, "arguments"),
    _P + "custom_tool_call_input.done": ("input", None, "input"),
    _P + "reasoning_text.done": ("text", "content_index", "text"),
    _P + "reasoning_summary_text.done": ("summary", "summary_index", "text"),
    _P + "code_interpreter_call_code.done": ("code", None, "code"),
    _P + "shell_call_command.added": ("command", "command_index", "command"),
    _P + "shell_call_command.done": ("command", "command_index", "command"),
}
PARTS = {
    _P + "content_part.added": ("content", "content_index"),
    _P + "content_part.done": ("content", "content_index"),
    _P + "reasoning_summary_part.added": ("summary", "summary_index"),
    _P + "reasoning_summary_part.done": ("summary", "summary_index"),
}
# Hosted-tool progress: the last segment is the item's new status.
_STATUS_KINDS: tuple[str, ...] = ("web_search_call", "file_search_call")
_STATUS_KINDS += ("code_interpreter_call", "image_generation_call", "mcp_call")
STATUSES = frozenset(
    f"{_P}{kind}.{status}"
    for kind in _STATUS_KINDS
    for status in ("in_progress", "searching", "interpreting", "generating", "completed", "failed")
)
# Events that carry nothing for the final object.
NO_OPS = frozenset(
    {
        _P + "audio.delta",
        _P + "audio.done",
        _P + "audio.transcript.delta",
        _P + "audio.transcript.done",
        _P + "image_generation_call.partial_image",
        _P + "mcp_list_tools.in_progress",
        _P + "mcp_list_tools.completed",
        _P + "mcp_list_tools.failed",
        _P + "compaction.compacting",
        "keepalive",
    }
)
# Delta kinds whose runs the fast path joins at once (the sub-entry is a content or
# summary index, both part of the run key).
CACHEABLE = frozenset(DELTAS) - {_P + "shell_call_command.delta"}


class ResponsesAssembler(ProblemLog):
    """Incremental assembler for one Responses API stream.

    Feed each event's data payload with :meth:`feed` (or whole SSE events with
    :meth:`feed_event`), look at the response so far with :meth:`snapshot`, end with
    :meth:`finish`. Nothing raises: faults go to ``outcome.problems``.
    """

    def __init__(self) -> None:
        self._top: JSONDict = {}
        self._terminal: JSONDict | None = None
        self._slots: dict[int, Slot] = {}
        self._done: dict[int, JSONDict] = {}
        self._by_id: dict[str, int] = {}
        self._last: int | None = None
        self._unknown: set[str] = set()
        self._after_done_noted = False
        self._fix = False
        self._own: Callable[[Any], Any] = copy_json  # `same` while feed_many runs
        self.outcome = StreamOutcome()

    # ----------------------------------------------------------------- feeding

    def feed(
        self,
        data: bytes | EventCore,
        *,
        event_index: int | None = None,
        offset: int | None = None,
        t_ns: int | None = None,
        event_name: str | None = None,
    ) -> None:
        """Add one event: the JSON bytes of its data, or an already decoded `Event`.

        ``event_name`` is the SSE ``event:`` field, used only when the data has no
        ``type``. ``event_index``, ``offset`` and ``t_ns`` label problems and timing.
        """
        if isinstance(data, EventCore):
            self.apply(data, event_index, offset, t_ns)
            return
        ev = self._decode(data, event_name, event_index, offset, t_ns)
        if ev is not None:
            self.apply(ev, event_index, offset, t_ns)

    def _decode(
        self, data: bytes, name: str | None, index: int | None, offset: int | None, t: int | None
    ) -> Event | None:
        try:
            return EVENT_DECODER.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        try:
            ev, used_json = decode_event_lenient(data, name)
        except (ValueError, msgspec.MsgspecError, RecursionError) as exc:
            kind = "invalid_chunk" if isinstance(exc, NotAnEvent) else "invalid_json"
            what = "not an event" if kind == "invalid_chunk" else "invalid JSON"
            self.note(kind, f"{what}: {exc}; data {data[:80]!r}", index, offset, t)
            return None
        if used_json:
            self._fix = True
            self.note(
                "json_fallback",
                "msgspec rejected this JSON (NaN, Infinity or a lone surrogate); "
                "read it with json.loads",
                index,
                offset,
                t,
            )
        return ev

    def feed_event(
        self,
        data: bytes,
        index: int,
        *,
        event: str = "message",
        offset: int | None = None,
        t_ns: int | None = None,
        complete: bool = True,
    ) -> None:
        """Add one SSE event's data: handles ``[DONE]``, ``event: error`` and cut-off events."""
        self.outcome.events += 1
        if data.startswith(b"[DONE]"):
            return  # some gateways append it after the terminal event; it adds nothing
        if not complete:
            self.note_truncated(index, offset, t_ns)
        self.feed(data, event_index=index, offset=offset, t_ns=t_ns, event_name=event)

    # ----------------------------------------------------------------- applying

    def apply(
        self, ev: EventCore, index: int | None, offset: int | None = None, t_ns: int | None = None
    ) -> None:
        """Fold one decoded event into the response."""
        out = self.outcome
        t = ev.type
        if out.done:
            if not self._after_done_noted:
                self._after_done_noted = True
                msg = f"events after the terminal event were ignored (first: {t or '?'})"
                self.note("after_done", msg, index, offset, t_ns)
            return
        if t == "error" or ev.error:
            self._error(ev, index, offset, t_ns)
            return
        out.chunks += 1
        if t_ns is not None:
            if out.t_first_ns is None:
                out.t_first_ns = t_ns
            out.t_last_ns = t_ns
        spec = DELTAS.get(t)
        if spec is not None:
            delta = ev.delta
            if delta.__class__ is str:
                field, sub = spec
                slot = self._slot(ev, index, offset, t_ns)
                slot.add(field, getattr(ev, sub) if sub else None, delta)
            return
        done = DONES.get(t)
        if done is not None:
            field, sub, attr = done
            value = getattr(ev, attr)
            if isinstance(value, str):
                slot = self._slot(ev, index, offset, t_ns)
                slot.set(field, getattr(ev, sub) if sub else None, value)
            return
        self._structural(ev, index, offset, t_ns)

    def _structural(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        """Every event that is not a delta or a ``.done`` value: dispatch on its type."""
        kind = ev.type
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, ev, index, offset, t)
        elif kind not in NO_OPS and kind not in self._unknown:
            self._unknown.add(kind)
            what = f"event type {kind!r}" if kind else "an event without a type"
            self.note("unknown_event", f"ignored {what}", index, offset, t)

    def _part(self, ev: EventCore, index: int | None, offset: int | None, t: int | None) -> None:
        key, sub = PARTS[ev.type]
        if ev.part is not None:
            self._slot(ev, index, offset, t).put_part(key, getattr(ev, sub), ev.part)

    def _annotation(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        slot = self._slot(ev, index, offset, t)
        slot.annotate(ev.content_index, ev.annotation_index, ev.annotation)

    def _status(self, ev: EventCore, index: int | None, offset: int | None, t: int | None) -> None:
        slot = self._slot(ev, index, offset, t)
        slot.flush()
        slot.item["status"] = ev.type.rsplit(".", 1)[1]

    def _shell_done(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        if ev.output is not None:
            self._slot(ev, index, offset, t).shell_output(ev.command_index, ev.output)

    def _shell_delta(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        delta = ev.delta
        if not isinstance(delta, dict):
            return
        slot = self._slot(ev, index, offset, t)
        for stream in ("stdout", "stderr"):
            piece = delta.get(stream)
            if isinstance(piece, str) and piece:
                slot.add(stream, ev.command_index, piece)

    def _lifecycle(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        response = ev.response
        if response is None:
            self.note("invalid_chunk", f"{ev.type} without a response object", index, offset, t)
            return
        old = self._top.get("id")
        new = response.get("id")
        if self._top and new != old:
            msg = f"the response id changed from {old!r} to {new!r}"
            self.note("identity_changed", msg, index, offset, t)
        self._top = response
        if not self._slots and not self._done:
            # A resumed or gateway stream may announce items in the lifecycle payload.
            for i, item in enumerate(response.get("output") or ()):
                if isinstance(item, dict) and ev.type in LIFECYCLE:
                    self._slots[i] = Slot(item, self._own)
        if ev.type in TERMINAL:
            self._terminal = response
            self.outcome.done = True
            if ev.type == _P + "failed" and self.outcome.error is None:
                err = response.get("error")
                self.outcome.error = err if err else {"message": "response.failed"}

    def _added(self, ev: EventCore, index: int | None, offset: int | None, t: int | None) -> None:
        item = ev.item
        if item is None:
            self.note("null_item", "output_item.added with a null item: skipped", index, offset, t)
            return
        i = ev.output_index
        if i is None:
            i = max(self._slots.keys() | self._done.keys(), default=-1) + 1
        if i in self._slots:
            msg = f"output index {i} was announced twice; the later item replaces it"
            self.note("duplicate_item", msg, index, offset, t)
        self._slots[i] = Slot(item, self._own)
        self._remember(i, item)

    def _item_done(
        self, ev: EventCore, index: int | None, offset: int | None, t: int | None
    ) -> None:
        item = ev.item
        if item is None:
            return
        i = ev.output_index
        if i is None:
            i = self._route(ev)
            if i is None:
                i = max(self._slots.keys() | self._done.keys(), default=-1) + 1
        slot = self._slots.get(i)
        if slot is not None:
            slot.flush()
        self._done[i] = item
        self._remember(i, item)

    def _remember(self, i: int, item: JSONDict) -> None:
        self._last = i
        item_id = item.get("id")
        if isinstance(item_id, str):
            self._by_id[item_id] = i

    def _route(self, ev: EventCore) -> int | None:
        """The output index of an event without one (R6): by item id, else the last item."""
        if ev.item_id is not None:
            i = self._by_id.get(ev.item_id)
            if i is not None:
                return i
        return self._last

    def _slot(self, ev: EventCore, index: int | None, offset: int | None, t: int | None) -> Slot:
        """The item an event applies to, keyed by ``output_index`` (ids may rotate)."""
        i = ev.output_index
        if i is None:
            i = self._route(ev)
            if i is None:
                i = 0
        slot = self._slots.get(i)
        if slot is None:
            base = self._done.get(i)
            item = copy_json(base) if base is not None else stand_in(ev.type, ev.item_id)
            slot = self._slots[i] = Slot(item, same)
            if base is None:
                msg = f"{ev.type} for output index {i}, which was never announced"
                self.note("missing_item", msg, index, offset, t)
                self._remember(i, item)
        return slot

    def _error(self, ev: EventCore, index: int | None, offset: int | None, t: int | None) -> None:
        err: Any = ev.error
        if not err:  # the flat shape: {"type": "error", "code", "message", "param"}
            err = {"code": ev.code, "message": ev.message, "param": ev.param}
            if ev.extra:
                err.update(ev.extra)
        msg = err.get("message") if isinstance(err, dict) else None
        if not isinstance(msg, str) or not msg:
            msg = str(err)[:200]
        if self.outcome.error is None:
            self.outcome.error = err
        self.note("error_event", f"the server sent an error mid-stream: {msg}", index, offset, t)

    def feed_many(self, events: list[EventCore]) -> None:
        """Apply a decoded stream; event index = position (the fast path).

        Consecutive events of one type form runs (found by C-level passes); a run of
        deltas for one field is joined in one C call onto that field's buffer after
        its first event went through :meth:`apply`, so a long text costs a few C
        passes, not a Python step per delta. The events are taken over, not copied.
        """
        self._own = same
        try:
            self._feed_runs(events)
        finally:
            self._own = copy_json

    def _feed_runs(self, events: list[EventCore]) -> None:
        types = [ev.type for ev in events]  # comprehensions beat attrgetter on Structs
        # Where the type changes, found by C-level passes; runs are between them.
        changes = compress(count(1), map(ne, types, islice(types, 1, None)))
        start = 0
        for end in chain(changes, (len(events),)):
            if end - start > 2 and types[start] in CACHEABLE:
                run = events[start:end]
                self.apply(run[0], start)
                if self._extend(run):
                    start = end
                    continue
                start += 1
            for k in range(start, end):
                self.apply(events[k], k)
            start = end

    def _extend(self, run: list[EventCore]) -> bool:
        """Add the deltas of ``run[1:]`` to the buffer ``run[0]`` fed; False if not possible.

        Only when every event of the run routes where the first one did and none
        carries an error, so the result is what feeding them one by one gives.
        """
        first = run[0]
        index = first.output_index
        slot = self._slots.get(index) if index is not None else None
        if slot is None or self.outcome.done:
            return False
        field, sub = DELTAS[first.type]
        at = getattr(first, sub) if sub else None
        buf = slot.bufs.get((field, at))
        n = len(run)
        if buf is None or [ev.output_index for ev in run].count(index) != n:
            return False
        if [ev.error for ev in run].count(None) != n:
            return False
        if sub == "content_index" and [ev.content_index for ev in run].count(at) != n:
            return False
        if sub == "summary_index" and [ev.summary_index for ev in run].count(at) != n:
            return False
        try:
            joined = "".join([ev.delta for ev in islice(run, 1, None)])  # type: ignore[misc]
        except TypeError:  # a delta that is not a string: one by one
            return False
        buf.append(joined)
        self.outcome.chunks += n - 1
        return True

    # ----------------------------------------------------------------- results

    def _output(self, clone: bool) -> list[JSONDict]:
        """Items by output index: the ``.done`` item where one came, else the folded one."""
        out = []
        for i in sorted(self._slots.keys() | self._done.keys()):
            done = self._done.get(i)
            if done is not None:
                out.append(copy_json(done) if clone else done)
            else:
                out.append(self._slots[i].built(clone))
        return out

    def _build(self, clone: bool) -> Response:
        top = self._terminal if self._terminal is not None else self._top
        given = top.get("output")
        if isinstance(given, list) and given:
            output = copy_json(given) if clone else given
        else:
            output = self._output(clone)
        top = copy_json(top) if clone else top
        if self._fix:  # lone surrogates from the json.loads fallback cannot be encoded
            output, top = fix_surrogates(output), fix_surrogates(top)
        outcome = msgspec.structs.replace(self.outcome, problems=list(self.outcome.problems))
        return response_from(top, output, outcome)

    def snapshot(self) -> Response:
        """The response as assembled so far (a copy; feeding on does not change it)."""
        return self._build(clone=True)

    def finish(self) -> Response:
        """End the stream: note a missing terminal event or an empty stream; the result."""
        out = self.outcome
        kinds = {p.kind for p in out.problems}
        if not out.done and out.streamed and "missing_done" not in kinds:
            self.note(
                "missing_done",
                "the stream ended without response.completed, response.incomplete "
                "or response.failed",
            )
        nothing = not self._top and not self._slots and not self._done
        if nothing and out.error is None and "empty" not in kinds:
            self.note("empty", "no Responses API event in the stream")
        terminal = self._terminal
        if (
            terminal is not None
            and terminal.get("output") == []
            and (self._slots or self._done)
            and "output_rebuilt" not in kinds
        ):
            self.note(
                "output_rebuilt",
                "the terminal response had an empty output although items streamed; "
                "rebuilt it from them",
            )
        return self._build(clone=False)


_Handler = Callable[[ResponsesAssembler, EventCore, int | None, int | None, int | None], None]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(LIFECYCLE | TERMINAL, ResponsesAssembler._lifecycle),
    _P + "output_item.added": ResponsesAssembler._added,
    _P + "output_item.done": ResponsesAssembler._item_done,
    **dict.fromkeys(PARTS, ResponsesAssembler._part),
    _P + "output_text.annotation.added": ResponsesAssembler._annotation,
    **dict.fromkeys(STATUSES, ResponsesAssembler._status),
    _P + "shell_call_output_content.delta": ResponsesAssembler._shell_delta,
    _P + "shell_call_output_content.done": ResponsesAssembler._shell_done,
}
"""What each structural event type does (the rest are deltas, values, no-ops or unknown)."""
