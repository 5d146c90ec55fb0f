"""Per-choice accumulation for chat and text completion streams.

A slot holds one choice while it streams: strings are kept as parts and joined once
at the end, tool calls are routed by index (or id, where gateways repeat an index),
keys streamtape does not model merge like the SDK's ``accumulate_delta`` without its
crashes. The assembler owns the slots; nothing else touches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtape.formats.base import copy_json, fix_surrogates, same
from streamtape.formats.openai_chat.results import (
    ChatChoice,
    ChatMessage,
    FunctionCall,
    TextChoice,
    ToolCall,
)
from streamtape.formats.openai_chat.wire import (
    ChunkChoice,
    Delta,
    FunctionDelta,
    JSONDict,
    TextChunkChoice,
    ToolCallDelta,
)

TEXT_LOGPROB_LISTS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


def _parts(parts: list[str] | None, value: str) -> list[str]:
    """Append ``value`` to a lazily created list of string parts."""
    if parts is None:
        return [value]
    parts.append(value)
    return parts


def merge(
    acc: JSONDict, delta: JSONDict, first: tuple[str, ...] = (), last: tuple[str, ...] = ()
) -> None:
    """``accumulate_delta`` for keys streamtape does not model, without its crashes.

    Strings concatenate, numbers add, dicts recurse, lists extend (entries carrying an
    ``index`` merge into the entry with that index), ``index``/``type`` replace.
    Keys in ``first`` keep their first non-empty value, keys in ``last`` their last.
    """
    for k, v in delta.items():
        cur = acc.get(k)
        if k not in acc or cur is None:
            acc[k] = copy_json(v)
        elif v is None or k in first:
            continue
        elif k in last or k == "index" or k == "type":
            acc[k] = copy_json(v)
        elif isinstance(cur, str) and isinstance(v, str):
            acc[k] = "".join((cur, v))
        elif isinstance(cur, (int, float)) and isinstance(v, (int, float)):
            acc[k] = cur + v
        elif isinstance(cur, dict) and isinstance(v, dict):
            merge(cur, v)
        elif isinstance(cur, list) and isinstance(v, list):
            for entry in v:
                idx = entry.get("index") if isinstance(entry, dict) else None
                target = None
                if isinstance(idx, int):
                    target = next(
                        (e for e in cur if isinstance(e, dict) and e.get("index") == idx), None
                    )
                if target is None:
                    cur.append(copy_json(entry))
                else:
                    merge(target, entry)


class Tool:
    """One tool call being accumulated."""

    __slots__ = ("args", "extra", "fn_extra", "has_fn", "id", "name", "type", "wire_index")

    def __init__(self, wire_index: int | None) -> None:
        self.wire_index = wire_index
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.args: list[str] = []
        self.has_fn = False
        self.extra: JSONDict | None = None
        self.fn_extra: JSONDict | None = None

    def add_function(self, fn: FunctionDelta) -> None:
        """A ``function`` fragment: the first name stays, arguments concatenate."""
        self.has_fn = True
        if fn.name and self.name is None:
            self.name = fn.name
        if fn.arguments:
            self.args.append(fn.arguments)
        if fn.extra:
            self.fn_extra = self.fn_extra if self.fn_extra is not None else {}
            merge(self.fn_extra, fn.extra)

    def function(self, fix: Callable[[str], str]) -> FunctionCall:
        return FunctionCall(
            name=self.name,
            arguments=fix("".join(self.args)),
            extra=copy_json(self.fn_extra) if self.fn_extra else None,
        )


class ChatSlot:
    """One chat choice being accumulated; strings are kept as parts, joined at the end."""

    __slots__ = (
        "annotations",
        "audio",
        "by_index",
        "content",
        "content_list",
        "dextra",
        "extra",
        "fc",
        "finish_reason",
        "index",
        "logprobs",
        "reasoning",
        "reasoning_content",
        "refusal",
        "role",
        "tools",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: list[str] = []
        self.content_list: list[Any] | None = None
        self.refusal: list[str] | None = None
        self.reasoning_content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.tools: list[Tool] = []
        self.by_index: dict[int, Tool] = {}
        self.fc: Tool | None = None  # the legacy function_call, accumulated like a tool's
        self.audio: JSONDict | None = None
        self.annotations: list[Any] | None = None
        self.dextra: JSONDict | None = None
        self.finish_reason: str | None = None
        self.logprobs: JSONDict | None = None
        # Choice-level extras (Azure content_filter_results...): filled by the apply loop.
        self.extra: JSONDict | None = None

    def rare(self, d: Delta) -> None:
        """Everything in a delta except string content: the uncommon fields."""
        if d.role and self.role is None:
            self.role = d.role
        if d.refusal is not None:
            self.refusal = _parts(self.refusal, d.refusal)
        if d.reasoning_content is not None:
            self.reasoning_content = _parts(self.reasoning_content, d.reasoning_content)
        if d.reasoning is not None:
            self.reasoning = _parts(self.reasoning, d.reasoning)
        if d.tool_calls is not None:
            self._tool_fragments(d.tool_calls)
        if d.function_call is not None:
            self._function_call(d.function_call)
        if d.audio is not None:
            self.audio = self.audio if self.audio is not None else {}
            merge(self.audio, d.audio, first=("id",), last=("expires_at",))
        if d.annotations is not None:
            self.annotations = self.annotations if self.annotations is not None else []
            self.annotations.extend(copy_json(d.annotations))
        if d.extra:
            self.dextra = self.dextra if self.dextra is not None else {}
            merge(self.dextra, d.extra)

    def _tool_fragments(self, fragments: list[ToolCallDelta]) -> None:
        for frag in fragments:
            fn = frag.function
            # Common case: an arguments-only continuation of a known call.
            if (
                fn is not None
                and fn.arguments
                and frag.id is None
                and frag.type is None
                and frag.extra is None
                and fn.name is None
                and fn.extra is None
            ):
                tool = self.by_index.get(frag.index) if frag.index is not None else None
                if tool is not None:
                    tool.has_fn = True
                    tool.args.append(fn.arguments)
                    continue
            self._tool(frag.index, frag.id, frag.type, fn, frag.extra)

    def _function_call(self, fc: FunctionDelta) -> None:
        """The legacy ``function_call``: first name, arguments concatenated."""
        if self.fc is None:
            self.fc = Tool(None)
        self.fc.add_function(fc)

    def _tool(
        self,
        wire: int | None,
        tid: str | None,
        ttype: str | None,
        fn: FunctionDelta | None,
        extra: JSONDict | None,
    ) -> None:
        """Route one fragment to its call: by index, or by id when the index is missing
        or a different id shows up at an index already in use (parallel calls that a
        gateway put all at index 0)."""
        if wire is None:
            tool = self.tools[-1] if self.tools else None
            if tool is None or (tid and tid != tool.id):
                tool = Tool(None)
                self.tools.append(tool)
        else:
            tool = self.by_index.get(wire)
            if tool is None or (tid and tool.id and tid != tool.id):
                tool = Tool(wire)
                self.tools.append(tool)
                self.by_index[wire] = tool
        if tid and tool.id is None:
            tool.id = tid
        if ttype and tool.type is None:
            tool.type = ttype
        if fn is not None:
            tool.add_function(fn)
        if extra:
            tool.extra = tool.extra if tool.extra is not None else {}
            merge(tool.extra, extra)

    def add_logprobs(self, lp: JSONDict) -> None:
        """``content``/``refusal`` lists: the first non-null value as given, then extended."""
        mine = self.logprobs
        if mine is None:
            mine = self.logprobs = copy_json(lp)
            mine.setdefault("content", None)
            mine.setdefault("refusal", None)
            return
        new = lp.get("content")
        if new:
            have = mine.get("content")
            if have is None:
                mine["content"] = have = []
            have.extend(new)
        new = lp.get("refusal")
        if new:
            have = mine.get("refusal")
            if have is None:
                mine["refusal"] = have = []
            have.extend(new)

    def build(self, fix: bool, copy: bool) -> ChatChoice:
        f = fix_surrogates if fix else str
        cp = copy_json if copy else same
        content: str | list[Any] | None = None
        if self.content_list is not None:
            content = list(self.content_list)
            if self.content:
                content.append({"type": "text", "text": f("".join(self.content))})
        elif self.content:
            content = f("".join(self.content))
        msg = ChatMessage(
            role=self.role,
            content=content,
            refusal=f("".join(self.refusal)) if self.refusal is not None else None,
            extra=copy_json(self.dextra) if self.dextra else None,
        )
        if self.tools:
            tools = self.tools
            if all(t.wire_index is not None for t in tools):
                tools = sorted(tools, key=lambda t: t.wire_index or 0)
            msg.tool_calls = [
                ToolCall(
                    index=i,
                    id=t.id,
                    type=t.type or "function",
                    function=t.function(f) if t.has_fn else None,
                    extra=copy_json(t.extra) if t.extra else None,
                )
                for i, t in enumerate(tools)
            ]
        if self.fc is not None:
            msg.function_call = self.fc.function(f)
        if self.audio is not None:
            msg.audio = copy_json(self.audio)
        if self.annotations is not None:
            msg.annotations = cp(self.annotations)
        if self.reasoning_content is not None:
            msg.reasoning_content = f("".join(self.reasoning_content))
        if self.reasoning is not None:
            msg.reasoning = f("".join(self.reasoning))
        return ChatChoice(
            index=self.index,
            message=msg,
            finish_reason=self.finish_reason,
            logprobs=cp(self.logprobs),
            extra=copy_json(self.extra) if self.extra else None,
        )


class TextSlot:
    """One text-completion choice being accumulated."""

    __slots__ = ("extra", "finish_reason", "index", "logprobs", "text")

    def __init__(self, index: int) -> None:
        self.index = index
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.logprobs: JSONDict | None = None
        self.extra: JSONDict | None = None

    def add(self, ch: ChunkChoice | TextChunkChoice) -> None:
        """One choice of a text chunk: the one rule every path follows."""
        if ch.text is not None:
            self.text.append(ch.text)
        self.add_rest(ch)

    def add_rest(self, ch: ChunkChoice | TextChunkChoice) -> None:
        """Everything of a text choice but its text (the fast loop appends that itself)."""
        if ch.finish_reason:
            self.finish_reason = ch.finish_reason
        if ch.logprobs is not None:
            self.add_logprobs(ch.logprobs)
        extra = ch.extra if isinstance(ch, ChunkChoice) else None
        if extra:
            # vLLM stop_reason / token_ids: the last non-null value wins.
            ex = self.extra if self.extra is not None else {}
            ex.update({k: copy_json(v) for k, v in extra.items() if v is not None})
            self.extra = ex

    def add_logprobs(self, lp: JSONDict) -> None:
        """The four lists are extended; null lists add nothing, null entries are kept."""
        mine = self.logprobs
        if mine is None:
            mine = self.logprobs = {k: None for k in TEXT_LOGPROB_LISTS}
            for k, v in lp.items():
                if k not in mine:
                    mine[k] = copy_json(v)
        for key in TEXT_LOGPROB_LISTS:
            new = lp.get(key)
            if new:
                have = mine.get(key)
                if have is None:
                    mine[key] = have = []
                have.extend(new)

    def build(self, fix: bool, copy: bool) -> TextChoice:
        cp = copy_json if copy else same
        text = "".join(self.text)
        return TextChoice(
            index=self.index,
            text=fix_surrogates(text) if fix else text,
            finish_reason=self.finish_reason,
            logprobs=cp(self.logprobs),
            extra=copy_json(self.extra) if self.extra else None,
        )
