"""What changed between two sets of recordings: pairs exchanges by request, compares answers.

Only meaning is compared: the summaries' text (word by word), tool calls (their
arguments as JSON), refusals, reasoning, stop reasons, usage and model; for answers
that are not completions, their JSON bodies. Volatile fields (ids, ``created``,
``system_fingerprint``, ``obfuscation``, sequence numbers) never count. Timing is
compared with a tolerance, so two runs of the same model do not differ by jitter.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from streamtape.analysis.records import Metrics, Record, read_records
from streamtape.core.jsondiff import MISSING, json_changes, render_path
from streamtape.errors import TimingToleranceError
from streamtape.formats.summary import Output, Summary

__all__ = [
    "VOLATILE_FIELDS",
    "Change",
    "DiffResult",
    "Pair",
    "Side",
    "Tolerance",
    "diff_sides",
    "load_sides",
    "side_of",
    "word_ops",
]

VOLATILE_FIELDS = frozenset(
    {
        "id",
        "created",
        "created_at",
        "system_fingerprint",
        "obfuscation",
        "sequence_number",
        "request_id",
        "expires_at",
    }
)
"""Keys that differ between any two runs; never reported as changes."""
_MAX_JSON_CHANGES = 20
_WORD = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


class Tolerance(msgspec.Struct, frozen=True):
    """A timing change counts when it exceeds both bounds: ``percent`` and ``ms``."""

    percent: float = 50.0
    ms: float = 50.0

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """``"50%"``, ``"100ms"`` or both, comma-separated (``"25%,20ms"``)."""
        percent, ms = 0.0, 0.0
        for part in (p.strip().lower() for p in text.split(",") if p.strip()):
            try:
                if part.endswith("%"):
                    percent = float(part[:-1])
                elif part.endswith("ms"):
                    ms = float(part[:-2])
                else:
                    raise ValueError(part)
            except ValueError:
                raise TimingToleranceError(
                    f"timing tolerance {text!r}: expected a percentage, milliseconds or "
                    "both, e.g. '50%', '100ms' or '25%,20ms'"
                ) from None
        return cls(percent=percent, ms=ms)


class Side(msgspec.Struct, kw_only=True):
    """One exchange as ``diff`` needs it: where, the request it answered, what it said."""

    label: str
    request: str
    """``METHOD /path`` for display."""
    key: str
    """Digest of the request with the model left out: the pairing key."""
    order_key: str
    """``METHOD /path?query``: the key of ``--pair order``."""
    metrics: Metrics
    summary: Summary | None
    body: Any = None
    """The JSON body of an answer that is not a completion (volatile fields removed)."""


class Change(msgspec.Struct, kw_only=True):
    """One difference: which field, both values, and for text the word-level operations."""

    field: str
    kind: str
    """``text``, ``value``, ``json`` or ``timing``."""
    a: Any = None
    b: Any = None
    words: list[tuple[str, str]] | None = None
    """For text: ``("=", same)``, ``("-", only in A)``, ``("+", only in B)``."""
    delta: float | None = None
    """For timing: B minus A."""
    beyond_tolerance: bool = True


class Pair(msgspec.Struct, kw_only=True):
    a: str
    b: str
    request: str
    changes: list[Change] = msgspec.field(default_factory=list)
    timing: list[Change] = msgspec.field(default_factory=list)
    """Every timing delta, within tolerance or not (those beyond are also in ``changes``)."""

    @property
    def differs(self) -> bool:
        return bool(self.changes)


class DiffResult(msgspec.Struct, kw_only=True):
    pairs: list[Pair]
    only_a: list[str]
    """``file#N METHOD /path`` of each exchange of A that has no partner in B."""
    only_b: list[str]

    @property
    def differs(self) -> bool:
        return bool(self.only_a or self.only_b or any(p.differs for p in self.pairs))


# -- loading -----------------------------------------------------------------------------


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def _request_keys(method: str, url: str, body: bytes) -> tuple[str, str, str]:
    parts = urlsplit(url)
    where = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        value = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        canonical = body
    else:
        if isinstance(value, dict):
            value.pop("model", None)
        canonical = msgspec.json.encode(value, order="sorted")
    digest = hashlib.blake2b(canonical, digest_size=16).hexdigest()
    return f"{method} {parts.path}", f"{method} {where} {digest}", f"{method} {where}"


def side_of(record: Record) -> Side:
    """What ``diff`` compares of one exchange."""
    ex = record.exchange
    request, key, order_key = _request_keys(ex.method, ex.url, ex.request.body)
    body = None
    if record.summary is None:
        try:
            body = _strip_volatile(msgspec.json.decode(ex.body))
        except msgspec.DecodeError:
            body = {"bytes_digest": hashlib.blake2b(ex.body, digest_size=16).hexdigest()}
    return Side(
        label=record.label,
        request=request,
        key=key,
        order_key=order_key,
        metrics=record.metrics,
        summary=record.summary,
        body=body,
    )


def load_sides(path: Path) -> list[Side]:
    """Every exchange of one cassette as a `Side` (a module-level function for the pool)."""
    return [side_of(record) for record in read_records(path)]


# -- pairing -------------------------------------------------------------------------------


def _pair(
    a: Sequence[Side], b: Sequence[Side], by: str
) -> tuple[list[tuple[Side, Side]], list[Side], list[Side]]:
    def key_of(side: Side) -> str:
        return side.key if by == "request" else side.order_key

    waiting: dict[str, list[Side]] = {}
    for side in a:
        waiting.setdefault(key_of(side), []).append(side)
    pairs: list[tuple[Side, Side]] = []
    only_b: list[Side] = []
    for side in b:
        bucket = waiting.get(key_of(side))
        if bucket:
            pairs.append((bucket.pop(0), side))
        else:
            only_b.append(side)
    paired = {id(x) for x, _ in pairs}
    return pairs, [s for s in a if id(s) not in paired], only_b


# -- comparing -----------------------------------------------------------------------------


def word_ops(a: str, b: str) -> list[tuple[str, str]]:
    """A word-level diff of two texts (whitespace and punctuation are words too)."""
    left, right = _WORD.findall(a), _WORD.findall(b)
    ops: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(("=", "".join(left[i1:i2])))
            continue
        if i2 > i1:
            ops.append(("-", "".join(left[i1:i2])))
        if j2 > j1:
            ops.append(("+", "".join(right[j1:j2])))
    return ops


def _text_change(field: str, a: str | None, b: str | None) -> list[Change]:
    if (a or "") == (b or ""):
        return []
    return [Change(field=field, kind="text", a=a, b=b, words=word_ops(a or "", b or ""))]


def _value(field: str, a: Any, b: Any) -> list[Change]:
    return [] if a == b else [Change(field=field, kind="value", a=a, b=b)]


def _json(field: str, a: Any, b: Any) -> list[Change]:
    out = []
    for path, left, right in json_changes(a, b):
        out.append(
            Change(
                field=render_path(path, field),
                kind="json",
                a=None if left is MISSING else left,
                b=None if right is MISSING else right,
            )
        )
        if len(out) >= _MAX_JSON_CHANGES:
            break
    return out


def _tool_changes(prefix: str, a: Output, b: Output) -> list[Change]:
    out: list[Change] = []
    for i in range(max(len(a.tool_calls), len(b.tool_calls))):
        field = f"{prefix}.tool_calls[{i}]"
        left = a.tool_calls[i] if i < len(a.tool_calls) else None
        right = b.tool_calls[i] if i < len(b.tool_calls) else None
        if left is None or right is None:
            shown = [
                None if c is None else {"name": c.name, "arguments": c.arguments}
                for c in (left, right)
            ]
            out.append(Change(field=field, kind="value", a=shown[0], b=shown[1]))
            continue
        out += _value(f"{field}.name", left.name, right.name)
        if left.arguments_valid and right.arguments_valid:
            out += _json(f"{field}.arguments", left.arguments, right.arguments)
        else:
            out += _text_change(f"{field}.arguments", left.arguments_text, right.arguments_text)
    return out


def _output_changes(a: Summary, b: Summary) -> list[Change]:
    out: list[Change] = []
    for i in range(max(len(a.outputs), len(b.outputs))):
        prefix = f"output[{i}]"
        left = a.outputs[i] if i < len(a.outputs) else Output(index=i)
        right = b.outputs[i] if i < len(b.outputs) else Output(index=i)
        out += _text_change(f"{prefix}.text", left.text, right.text)
        out += _text_change(f"{prefix}.refusal", left.refusal, right.refusal)
        out += _text_change(f"{prefix}.reasoning", left.reasoning, right.reasoning)
        out += _tool_changes(prefix, left, right)
        out += _value(f"{prefix}.stop_reason", left.stop_reason, right.stop_reason)
    return out


def _timing(a: Metrics, b: Metrics, tol: Tolerance) -> list[Change]:
    out = []
    gen_a = _generation_ms(a)
    gen_b = _generation_ms(b)
    for field, left, right, absolute in (
        ("timing.ttft_ms", a.ttft_ms, b.ttft_ms, None),
        ("timing.duration_ms", a.duration_ms, b.duration_ms, None),
        ("timing.tokens_per_s", a.tokens_per_s, b.tokens_per_s, (gen_a, gen_b)),
    ):
        if left is None or right is None:
            continue
        delta = right - left
        relative = abs(delta) / abs(left) * 100 if left else (0.0 if not delta else float("inf"))
        if absolute is not None:
            ga, gb = absolute
            spread = abs(gb - ga) if ga is not None and gb is not None else 0.0
        else:
            spread = abs(delta)
        beyond = relative > tol.percent and spread > tol.ms
        out.append(
            Change(
                field=field, kind="timing", a=left, b=right, delta=delta, beyond_tolerance=beyond
            )
        )
    return out


def _generation_ms(m: Metrics) -> float | None:
    if m.ttft_ms is None:
        return None
    return m.duration_ms - m.ttft_ms


def compare(a: Side, b: Side, tol: Tolerance) -> Pair:
    """The changes between two paired exchanges."""
    changes = _value("status", a.metrics.status, b.metrics.status)
    changes += _value("outcome", a.metrics.outcome, b.metrics.outcome)
    changes += _value("model", a.metrics.model, b.metrics.model)
    sa, sb = a.summary, b.summary
    if sa is not None and sb is not None:
        changes += _output_changes(sa, sb)
        changes += _json("usage", msgspec.to_builtins(sa.usage), msgspec.to_builtins(sb.usage))
    elif sa is None and sb is None:
        changes += _json("response.body", a.body, b.body)
    else:
        changes.append(
            Change(
                field="kind",
                kind="value",
                a="completion" if sa else "other",
                b="completion" if sb else "other",
            )
        )
    timing = _timing(a.metrics, b.metrics, tol)
    changes += [t for t in timing if t.beyond_tolerance]
    return Pair(a=a.label, b=b.label, request=a.request, changes=changes, timing=timing)


def diff_sides(
    a: Iterable[Side],
    b: Iterable[Side],
    *,
    tolerance: Tolerance | None = None,
    pair_by: str = "request",
) -> DiffResult:
    """Pair the exchanges of A and B (by request, or by position per endpoint) and compare."""
    if pair_by not in ("request", "order"):
        raise ValueError(f"pair_by must be 'request' or 'order', not {pair_by!r}")
    tol = tolerance or Tolerance()
    pairs, only_a, only_b = _pair(list(a), list(b), pair_by)
    return DiffResult(
        pairs=[compare(x, y, tol) for x, y in pairs],
        only_a=[f"{s.label} {s.request}" for s in only_a],
        only_b=[f"{s.label} {s.request}" for s in only_b],
    )
