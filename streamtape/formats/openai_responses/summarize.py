"""A Responses API result as the format-neutral `Summary`.

The whole response is one `Output` (the shape chat's single choice has): the text of
every message item, their refusals, the reasoning summaries and texts, and every
kind of tool call (function, custom, MCP, hosted tools) with its arguments parsed.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from streamtape.formats.openai_responses.results import Response
from streamtape.formats.summary import (
    Output,
    Summary,
    ToolUse,
    timing_fields,
    tool_use,
    usage_from,
)

_KINDS = {"function_call": "function", "custom_tool_call": "custom", "mcp_call": "mcp"}
# Hosted and built-in calls carry their input in one of these keys instead of arguments.
_INPUT_KEYS = ("action", "code", "queries", "operation", "container_id")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _texts(parts: list[dict[str, Any]], kind: str, key: str = "text") -> list[str]:
    return [p[key] for p in parts if p.get("type") == kind and isinstance(p.get(key), str)]


def _call(item: dict[str, Any]) -> ToolUse:
    kind_name = str(item.get("type"))
    kind = _KINDS.get(kind_name, kind_name.removesuffix("_call"))
    name = item.get("name") if isinstance(item.get("name"), str) else kind
    args: Any = item.get("arguments")
    if not isinstance(args, str):
        args = item.get("input")
    if not isinstance(args, str):
        args = {k: item[k] for k in _INPUT_KEYS if k in item} or None
    call_id = item.get("call_id") or item.get("id")
    return tool_use(name, args, id=call_id if isinstance(call_id, str) else None, kind=kind)


def _is_call(kind: Any) -> bool:
    return isinstance(kind, str) and (kind.endswith("_call") or kind == "mcp_approval_request")


def summarize_responses(result: Response) -> Summary:
    text: list[str] = []
    refusal: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolUse] = []
    for item in result.output:
        kind = item.get("type")
        if kind == "message":
            parts = _dicts(item.get("content"))
            text += _texts(parts, "output_text")
            refusal += _texts(parts, "refusal", "refusal")
        elif kind == "reasoning":
            reasoning += _texts(_dicts(item.get("summary")), "summary_text")
            reasoning += _texts(_dicts(item.get("content")), "reasoning_text")
        elif _is_call(kind):
            calls.append(_call(item))
    output = Output(
        index=0,
        text="".join(text),
        refusal="".join(refusal) if refusal else None,
        reasoning="\n\n".join(reasoning) if reasoning else None,
        tool_calls=calls,
        stop_reason=result.stop_reason,
    )
    return Summary(
        format="openai_responses",
        model=result.model if isinstance(result.model, str) else None,
        id=result.id if isinstance(result.id, str) else None,
        outputs=[output],
        usage=usage_from(result.usage if result.usage is not UNSET else None),
        **timing_fields(result.outcome),
    )
