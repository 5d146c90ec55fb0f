"""One format-neutral view of a reassembled response, so diff, stats and reports never branch.

Chat, text completions, the Responses API and Anthropic Messages each reassemble into
their own SDK-shaped object; `Summary` is what they have in common: the text of each
output, its tool calls with parsed arguments, reasoning, stop reason, usage in and
out, the model, and the stream's timing. Each format module provides a
``summarize_*`` function; `summarize` dispatches on the result's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from streamtape.formats.base import Problem, StreamOutcome

__all__ = ["Output", "Summary", "ToolUse", "Usage", "register_summarizer", "summarize"]


class ToolUse(msgspec.Struct, kw_only=True):
    """A tool call of any format: name, the raw argument text, and the arguments parsed."""

    name: str | None = None
    arguments_text: str = ""
    """The arguments exactly as streamed (JSON text, possibly cut or invalid)."""
    arguments: Any = None
    """The arguments parsed as JSON; None when the text is empty or not valid JSON."""
    arguments_valid: bool = False
    id: str | None = None
    """Volatile: never compared by diff."""
    kind: str = "function"
    """``function``, ``custom``, ``mcp``, ``server_tool`` ... as the format names it."""


class Output(msgspec.Struct, kw_only=True):
    """One answer: a chat/text choice, or the whole message of a Responses/Anthropic stream."""

    index: int = 0
    text: str = ""
    refusal: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolUse] = msgspec.field(default_factory=list)
    stop_reason: str | None = None


class Usage(msgspec.Struct, kw_only=True):
    """Token counts under one spelling (``prompt_tokens`` and ``input_tokens`` alike)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None


class Summary(msgspec.Struct, kw_only=True):
    """What a response said and how it arrived, the same shape for every format."""

    format: str
    """``openai_chat``, ``openai_text``, ``openai_responses`` or ``anthropic_messages``."""
    model: str | None = None
    id: str | None = None
    """Volatile: never compared by diff."""
    outputs: list[Output] = msgspec.field(default_factory=list)
    usage: Usage = msgspec.field(default_factory=Usage)
    ok: bool = False
    streamed: bool = True
    problems: list[Problem] = msgspec.field(default_factory=list)
    events: int = 0
    t_first_ns: int | None = None
    """Arrival of the first content event, ns from the request (when the reads were timed)."""
    t_last_ns: int | None = None

    @property
    def text(self) -> str:
        """The first output's text (the usual single-answer case)."""
        return self.outputs[0].text if self.outputs else ""

    @property
    def stop_reason(self) -> str | None:
        return self.outputs[0].stop_reason if self.outputs else None

    @property
    def tool_calls(self) -> list[ToolUse]:
        return [call for out in self.outputs for call in out.tool_calls]


def tool_use(
    name: str | None, arguments: Any, *, id: str | None = None, kind: str = "function"
) -> ToolUse:
    """A `ToolUse` from streamed argument text (parsed when it is JSON) or an object."""
    if isinstance(arguments, str):
        text = arguments
        try:
            parsed, valid = msgspec.json.decode(text), True
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            parsed, valid = None, False
    else:
        parsed, valid = arguments, arguments is not None
        text = msgspec.json.encode(arguments).decode() if valid else ""
    return ToolUse(
        name=name, arguments_text=text, arguments=parsed, arguments_valid=valid, id=id, kind=kind
    )


def usage_from(raw: Any) -> Usage:
    """Read a usage dict of any format (chat's ``prompt_tokens``, the others' ``input_tokens``)."""
    if not isinstance(raw, dict):
        return Usage()

    def num(*keys: str, within: Any = raw) -> int | None:
        for key in keys:
            value = within.get(key) if isinstance(within, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    out_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details")
    in_details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details")
    inp = num("prompt_tokens", "input_tokens")
    out = num("completion_tokens", "output_tokens")
    total = num("total_tokens")
    if total is None and inp is not None and out is not None:
        total = inp + out
    cached = num("cached_tokens", within=in_details)
    if cached is None:
        cached = num("cache_read_input_tokens")
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        total_tokens=total,
        reasoning_tokens=num("reasoning_tokens", within=out_details),
        cached_input_tokens=cached,
    )


def timing_fields(outcome: StreamOutcome) -> dict[str, Any]:
    """The `Summary` fields every format copies from its `StreamOutcome`."""
    return {
        "ok": outcome.ok,
        "streamed": outcome.streamed,
        "problems": list(outcome.problems),
        "events": outcome.events,
        "t_first_ns": outcome.t_first_ns,
        "t_last_ns": outcome.t_last_ns,
    }


_SUMMARIZERS: dict[type[Any], Callable[[Any], Summary]] = {}


def register_summarizer(cls: type[Any], func: Callable[[Any], Summary]) -> None:
    """Say how results of type ``cls`` become a `Summary` (each format module calls this)."""
    _SUMMARIZERS[cls] = func


def summarize(result: Any) -> Summary:
    """The neutral view of any assembled result (chat, text, Responses, Anthropic)."""
    for cls in type(result).__mro__:
        func = _SUMMARIZERS.get(cls)
        if func is not None:
            return func(result)
    raise TypeError(f"no summary for {type(result).__name__}: not an assembled response")
