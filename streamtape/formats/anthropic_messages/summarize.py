"""An Anthropic message as the format-neutral `Summary`.

Text is the text blocks joined, reasoning the thinking blocks joined, and every
``tool_use``, ``server_tool_use`` and ``mcp_tool_use`` block a tool call (the streamed
JSON text when there was one, else the block's ``input``). Usage in is what the model
read, cached or not (``input_tokens`` plus both ``cache_*`` counts), as OpenAI counts
``prompt_tokens``; ``cached_input_tokens`` is the cache reads.
"""

from __future__ import annotations

from msgspec import UNSET

from streamtape.formats.anthropic_messages.results import (
    Message,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from streamtape.formats.summary import Output, Summary, timing_fields, tool_use, usage_from

FORMAT = "anthropic_messages"

_TOOL_KINDS = {"tool_use": "function", "server_tool_use": "server_tool", "mcp_tool_use": "mcp"}


def _count(raw: object, key: str) -> int:
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def summarize_messages(result: Message) -> Summary:
    """The neutral view of an assembled (or non-stream) Anthropic message."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls = []
    for block in result.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            thoughts.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            args = block.input_json if block.input_json is not None else block.input
            calls.append(
                tool_use(
                    block.name,
                    None if args is UNSET else args,
                    id=block.id,
                    kind=_TOOL_KINDS.get(block.type or "", block.type or "tool"),
                )
            )
    refusal = None
    if result.stop_reason == "refusal":
        details = result.stop_details if isinstance(result.stop_details, dict) else {}
        refusal = details.get("explanation") or "".join(texts)
    usage = usage_from(result.usage)
    if usage.input_tokens is not None:
        raw = result.usage
        usage.input_tokens += _count(raw, "cache_creation_input_tokens") + _count(
            raw, "cache_read_input_tokens"
        )
        if usage.output_tokens is not None:
            usage.total_tokens = usage.input_tokens + usage.output_tokens
    return Summary(
        format=FORMAT,
        model=result.model,
        id=result.id,
        outputs=[
            Output(
                index=0,
                text="".join(texts),
                refusal=refusal,
                reasoning="".join(thoughts) if thoughts else None,
                tool_calls=calls,
                stop_reason=result.stop_reason,
            )
        ],
        usage=usage,
        **timing_fields(result.outcome),
    )
