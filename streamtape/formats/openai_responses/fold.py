"""One output item being folded from its events: deltas, parts, annotations, statuses.

An item is the dict ``output_item.added`` sent (or a stand-in when a gateway skipped
that event). Deltas are appended to per-field buffers and joined only when something
needs the value (a ``.done``, a structural event, a snapshot), so a long text costs
linear time. Every write creates the lists and dicts it needs, so events arriving for
parts that were never announced still land somewhere sensible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtape.formats.base import copy_json
from streamtape.formats.openai_responses.wire import JSONDict

# Buffer fields: which key of which container a delta of that kind extends.
TOP_FIELDS = frozenset({"arguments", "input", "code"})
PART_FIELDS = frozenset({"text", "refusal"})


def _list(owner: JSONDict, key: str) -> list[Any]:
    value = owner.get(key)
    if not isinstance(value, list):
        value = owner[key] = []
    return value


def _dict(owner: JSONDict, key: str) -> JSONDict:
    value = owner.get(key)
    if not isinstance(value, dict):
        value = owner[key] = {}
    return value


def _slot_in(items: list[Any], index: int | None, make: Callable[[], Any]) -> int:
    """The position ``index`` names in ``items`` (padding with ``make()``); None: the last."""
    if index is None or index < 0:
        if not items:
            items.append(make())
        return len(items) - 1
    while len(items) <= index:
        items.append(make())
    return index


def _entry(items: list[Any], index: int | None, make: Callable[[], JSONDict]) -> JSONDict:
    """The dict at ``index`` in ``items``, created (or replaced, if not a dict) as needed."""
    i = _slot_in(items, index, make)
    if not isinstance(items[i], dict):
        items[i] = make()
    entry: JSONDict = items[i]
    return entry


class Slot:
    """One output item: its dict and the deltas not yet joined into it."""

    __slots__ = ("bufs", "item", "own")

    def __init__(self, item: JSONDict, own: Callable[[Any], Any] = copy_json) -> None:
        self.item: JSONDict = own(item)
        self.own = own
        """How values taken from an event become ours: a copy, or as they are (fast path)."""
        self.bufs: dict[tuple[str, int | None], list[str]] = {}

    # -- where a field lives

    def _part_maker(self, field: str) -> Callable[[], JSONDict]:
        if field == "refusal":
            return lambda: {"type": "refusal", "refusal": ""}
        if self.item.get("type") == "reasoning":
            return lambda: {"type": "reasoning_text", "text": ""}
        return lambda: {"type": "output_text", "annotations": [], "text": ""}

    def _target(self, field: str, sub: int | None) -> tuple[Any, Any]:
        """The container and key a value of ``field`` (at ``sub``) is stored under."""
        item = self.item
        if field in TOP_FIELDS:
            return item, field
        if field in PART_FIELDS:
            return _entry(_list(item, "content"), sub, self._part_maker(field)), field
        if field == "summary":
            return _entry(_list(item, "summary"), sub, _summary_part), "text"
        if field == "command":
            commands = _list(_dict(item, "action"), "commands")
            return commands, _slot_in(commands, sub, str)
        # stdout / stderr of one shell command's output
        return _entry(_list(item, "output"), sub, _shell_output), field

    # -- deltas and values

    def add(self, field: str, sub: int | None, delta: str) -> list[str]:
        """Append a delta; returns the buffer, which the caller may extend directly."""
        key = (field, sub)
        buf = self.bufs.get(key)
        if buf is None:
            owner, k = self._target(field, sub)
            current = owner[k] if isinstance(owner, list) else owner.get(k)
            buf = self.bufs[key] = [current if isinstance(current, str) else ""]
        buf.append(delta)
        return buf

    def flush(self) -> None:
        """Join the pending deltas into the item (before anything reads or restructures it)."""
        if not self.bufs:
            return
        for (field, sub), buf in self.bufs.items():
            owner, k = self._target(field, sub)
            owner[k] = "".join(buf)
        self.bufs.clear()

    def set(self, field: str, sub: int | None, value: Any) -> None:
        """A ``.done`` value: the full text replaces what the deltas built."""
        self.flush()
        owner, k = self._target(field, sub)
        owner[k] = value

    def put_part(self, key: str, index: int | None, part: JSONDict) -> None:
        """``content_part.*`` (``key="content"``) or ``reasoning_summary_part.*`` (``summary``)."""
        self.flush()
        parts = _list(self.item, key)
        parts[_slot_in(parts, index, dict)] = self.own(part)

    def annotate(self, content: int | None, index: int | None, annotation: Any) -> None:
        self.flush()
        part = _entry(_list(self.item, "content"), content, self._part_maker("text"))
        notes = _list(part, "annotations")
        if index is None:
            notes.append(self.own(annotation))
        else:
            notes[_slot_in(notes, index, dict)] = self.own(annotation)

    def shell_output(self, index: int | None, output: list[Any]) -> None:
        """``shell_call_output_content.done``: the command's output as the server sent it."""
        self.flush()
        self.item["output"] = self.own(output)

    def built(self, clone: bool) -> JSONDict:
        """The item with every delta joined in (a deep copy when ``clone``)."""
        self.flush()
        return copy_json(self.item) if clone else self.item


def _summary_part() -> JSONDict:
    return {"type": "summary_text", "text": ""}


def _shell_output() -> JSONDict:
    return {"stdout": "", "stderr": ""}


# Stand-in items for events whose item was never announced (gateways that skip
# ``output_item.added``, or whose ``item`` was null).
_STAND_IN: dict[str, JSONDict] = {
    "output_text": {"type": "message", "role": "assistant", "content": []},
    "refusal": {"type": "message", "role": "assistant", "content": []},
    "content_part": {"type": "message", "role": "assistant", "content": []},
    "function_call_arguments": {"type": "function_call", "arguments": ""},
    "custom_tool_call_input": {"type": "custom_tool_call", "input": ""},
    "mcp_call_arguments": {"type": "mcp_call", "arguments": ""},
    "reasoning_text": {"type": "reasoning", "summary": []},
    "reasoning_summary_text": {"type": "reasoning", "summary": []},
    "reasoning_summary_part": {"type": "reasoning", "summary": []},
    "code_interpreter_call_code": {"type": "code_interpreter_call", "code": ""},
    "shell_call_command": {"type": "shell_call", "action": {"commands": []}},
    "shell_call_output_content": {"type": "shell_call_output", "output": []},
}


def stand_in(event_type: str, item_id: str | None) -> JSONDict:
    """A minimal in-progress item of the kind ``event_type`` belongs to."""
    kind = event_type.removeprefix("response.").split(".", 1)[0]
    base = _STAND_IN.get(kind)
    if base is None:
        base = {"type": kind if kind.endswith("_call") else "unknown"}
    item: JSONDict = {"id": item_id} if item_id is not None else {}
    item.update(copy_json(base))
    item["status"] = "in_progress"
    return item
