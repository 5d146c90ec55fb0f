"""The reassembled Responses API object, shaped like the SDK's ``Response`` by `to_dict()`.

Output items stay plain dicts, exactly as the API sent them (or as folded from
deltas), so every item type (messages, reasoning, function, custom, MCP, shell, hosted
tool calls) and every key a newer API adds round-trips. Top-level keys the struct does
not name are kept in ``extra``; a key the stream never sent is UNSET and left out of
`to_dict()`, so the dict equals the payload the SDK returns.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from streamtape.formats.base import StreamOutcome
from streamtape.formats.openai_responses.wire import JSONDict

_NAMED = ("id", "object", "created_at", "status", "error", "incomplete_details", "model")
_KNOWN = frozenset((*_NAMED, "output", "usage"))


class Response(msgspec.Struct, kw_only=True):
    """A reassembled (or non-stream) Responses API ``response``.

    ``outcome`` says how the stream ended; it is not part of the OpenAI-shaped output.
    """

    id: str | UnsetType | None = UNSET
    object: str | UnsetType | None = UNSET
    created_at: int | float | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET
    """``completed``, ``incomplete``, ``failed``; ``in_progress`` for a cut stream."""
    error: Any = UNSET
    incomplete_details: Any = UNSET
    model: str | UnsetType | None = UNSET
    output: list[JSONDict] = msgspec.field(default_factory=list)
    usage: JSONDict | UnsetType | None = UNSET
    extra: JSONDict | None = None
    """Every other top-level key (instructions, tools, reasoning, text, metadata...)."""
    outcome: StreamOutcome = msgspec.field(default_factory=StreamOutcome)

    @property
    def output_text(self) -> str:
        """All ``output_text`` parts of the message items, joined (the SDK's property)."""
        return "".join(
            part.get("text") or ""
            for item in self.output
            if item.get("type") == "message"
            for part in _dicts(item.get("content"))
            if part.get("type") == "output_text"
        )

    @property
    def stop_reason(self) -> str | None:
        """Why the response ended: ``incomplete_details.reason`` or else ``status``."""
        details = self.incomplete_details
        if isinstance(details, dict) and isinstance(details.get("reason"), str):
            return str(details["reason"])
        return self.status if isinstance(self.status, str) else None

    def to_dict(self) -> JSONDict:
        """The OpenAI-shaped plain dict (extras merged back, ``outcome`` left out)."""
        out: JSONDict = {}
        for key in _NAMED:
            value = getattr(self, key)
            if value is not UNSET:
                out[key] = value
        out["output"] = self.output
        if self.usage is not UNSET:
            out["usage"] = self.usage
        if self.extra:
            out.update(self.extra)
        return out

    def to_json(self) -> bytes:
        """The OpenAI-shaped JSON of :meth:`to_dict`."""
        return msgspec.json.encode(self.to_dict())

    def to_openai(self) -> Any:
        """An ``openai.types.responses.Response`` (needs the openai package).

        Built with ``construct`` so partial and gateway-shaped results survive.
        """
        from openai.types.responses import Response as OpenAIResponse

        return OpenAIResponse.construct(**self.to_dict())


def _dicts(value: Any) -> list[JSONDict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def response_from(top: JSONDict, output: list[JSONDict], outcome: StreamOutcome) -> Response:
    """A `Response` from a top-level payload (its ``output`` ignored) and the output to use."""
    fields: dict[str, Any] = {k: top[k] for k in _NAMED if k in top}
    usage = top.get("usage", UNSET)
    if usage is UNSET or usage is None or isinstance(usage, dict):
        fields["usage"] = usage
    extra = {k: v for k, v in top.items() if k not in _KNOWN}
    if "usage" in top and "usage" not in fields:
        extra["usage"] = usage  # not an object: keep it as sent
    for key in ("id", "object", "status", "model"):
        if key in fields and not (fields[key] is None or isinstance(fields[key], str)):
            extra[key] = fields.pop(key)
    created = fields.get("created_at")
    if "created_at" in fields and (
        isinstance(created, bool) or not (created is None or isinstance(created, (int, float)))
    ):
        extra["created_at"] = fields.pop("created_at")
    return Response(output=output, extra=extra or None, outcome=outcome, **fields)
