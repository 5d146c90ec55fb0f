"""Chat and text completions as the format-neutral `Summary`."""

from __future__ import annotations

from msgspec import UNSET

from streamtape.formats.openai_chat.results import ChatChoice, ChatCompletion, TextCompletion
from streamtape.formats.summary import Output, Summary, timing_fields, tool_use, usage_from


def _chat_output(choice: ChatChoice) -> Output:
    msg = choice.message
    content = msg.content
    if isinstance(content, list):  # content parts (audio/multimodal gateways)
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    calls = [
        tool_use(tc.function.name, tc.function.arguments, id=tc.id, kind=tc.type)
        for tc in (msg.tool_calls if msg.tool_calls is not UNSET else [])
        if tc.function is not None
    ]
    if msg.function_call is not UNSET:
        calls.append(tool_use(msg.function_call.name, msg.function_call.arguments))
    reasoning = msg.reasoning_content if msg.reasoning_content is not UNSET else None
    if reasoning is None and msg.reasoning is not UNSET:
        reasoning = msg.reasoning
    return Output(
        index=choice.index,
        text=content or "",
        refusal=msg.refusal,
        reasoning=reasoning,
        tool_calls=calls,
        stop_reason=choice.finish_reason,
    )


def summarize_chat(result: ChatCompletion) -> Summary:
    return Summary(
        format="openai_chat",
        model=result.model,
        id=result.id,
        outputs=[_chat_output(c) for c in result.choices],
        usage=usage_from(result.usage),
        **timing_fields(result.outcome),
    )


def summarize_text(result: TextCompletion) -> Summary:
    return Summary(
        format="openai_text",
        model=result.model,
        id=result.id,
        outputs=[
            Output(index=c.index, text=c.text, stop_reason=c.finish_reason) for c in result.choices
        ],
        usage=usage_from(result.usage),
        **timing_fields(result.outcome),
    )
