"""One self-contained HTML page: every stream's timing as SVG, and A against B side by side.

Nothing is loaded at view time (inline CSS, inline SVG, no script; the page's
Content-Security-Policy forbids any fetch), so a report attached to a CI run or
mailed around opens the same anywhere.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.resources import files

import msgspec

from streamtape.analysis.diff import Change, DiffResult, Side, Tolerance, diff_sides, side_of
from streamtape.analysis.records import Metrics, cassette_files, read_records
from streamtape.analysis.timeline import Timeline, timeline_of
from streamtape.formats.summary import Summary

__all__ = ["Loaded", "build_report", "load_for_report"]

_W, _H, _LEFT, _BOTTOM, _TOP = 560, 96, 56, 18, 8


class Loaded(msgspec.Struct):
    """What the report needs of one side: what ``diff`` compares and each stream's timeline."""

    sides: list[Side]
    timelines: dict[str, Timeline]


def load_for_report(path: str | os.PathLike[str]) -> Loaded:
    sides, timelines = [], {}
    for file in cassette_files([path]):
        for record in read_records(file):
            sides.append(side_of(record))
            timelines[record.label] = timeline_of(record.exchange)
    return Loaded(sides, timelines)


def _css() -> str:
    return files("streamtape.analysis").joinpath("report.css").read_text(encoding="utf-8")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _vline(cls: str, x: float, y1: float, y2: float) -> str:
    return f'<line class="{cls}" x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'


def timeline_svg(tl: Timeline, scale_ms: float, label: str) -> str:
    """Cumulative bytes over time (blue), events as ticks (orange), headers and first token."""
    span = max(scale_ms, tl.end_ms, 1e-3)
    width, height = _W - _LEFT - 8, _H - _BOTTOM - _TOP

    def x(t: float) -> float:
        return _LEFT + t / span * width

    total = max(1, sum(tl.read_bytes))
    points, seen = [f"{x(0):.1f},{_TOP + height:.1f}"], 0
    for t, size in zip(tl.reads_ms, tl.read_bytes, strict=True):
        y_before = _TOP + height - seen / total * height
        seen += size
        y_after = _TOP + height - seen / total * height
        points += [f"{x(t):.1f},{y_before:.1f}", f"{x(t):.1f},{y_after:.1f}"]
    points.append(f"{x(tl.end_ms):.1f},{_TOP + height - seen / total * height:.1f}")
    base = _TOP + height
    events = "".join(_vline("event", x(t), base - 8, base) for t in tl.events_ms)
    first_line = _vline("first", x(tl.events_ms[0]), _TOP, base) if tl.events_ms else ""
    return (
        f'<svg role="img" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" class="timeline">'
        f"<title>{_e(label)}: {len(tl.reads_ms)} reads, {len(tl.events_ms)} events, "
        f"{tl.end_ms:.1f} ms</title>"
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT + width}" y1="{base}" y2="{base}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{base}"/>'
        f"{_vline('mark', x(tl.headers_ms), _TOP, base)}{first_line}{events}"
        f'<polyline class="bytes" points="{" ".join(points)}"/>'
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{total:,} B</text>'
        f'<text x="{_LEFT}" y="{_H - 4}">0</text>'
        f'<text x="{_LEFT + width}" y="{_H - 4}" text-anchor="end">{span:,.0f} ms</text></svg>'
    )


def _facts(m: Metrics, s: Summary | None) -> str:
    rows = [
        ("model", m.model or "-"),
        ("status", f"{m.status} · {m.outcome}"),
        ("stop", m.stop_reason or "-"),
        ("TTFT", "-" if m.ttft_ms is None else f"{m.ttft_ms:,.1f} ms"),
        ("duration", f"{m.duration_ms:,.1f} ms"),
        ("tokens/s", "-" if m.tokens_per_s is None else f"{m.tokens_per_s:,.1f}"),
        ("reads", f"{m.reads} · {m.bytes:,} B"),
    ]
    if s is not None and s.usage.output_tokens is not None:
        rows.append(("usage", f"in {s.usage.input_tokens} · out {s.usage.output_tokens}"))
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows) + "</dl>"


def _text_html(words: list[tuple[str, str]] | None, text: str, side: str) -> str:
    if words is None:
        return _e(text)
    out = []
    for op, part in words:
        if op == "=":
            out.append(_e(part))
        elif op == "-" and side == "a":
            out.append(f"<del>{_e(part)}</del>")
        elif op == "+" and side == "b":
            out.append(f"<ins>{_e(part)}</ins>")
    return "".join(out)


def _answer(s: Summary | None, text_change: Change | None, side: str, body: object) -> str:
    if s is None:
        shown = msgspec.json.format(msgspec.json.encode(body), indent=1).decode()
        return f"<pre>{_e(shown[:4000])}</pre>"
    parts = []
    for out in s.outputs:
        words = text_change.words if text_change is not None and out.index == 0 else None
        if out.reasoning:
            parts.append(f'<h3>reasoning</h3><div class="text">{_e(out.reasoning)}</div>')
        if out.refusal:
            parts.append(f'<h3>refusal</h3><div class="text">{_e(out.refusal)}</div>')
        if out.text:
            parts.append(f'<div class="text">{_text_html(words, out.text, side)}</div>')
        for call in out.tool_calls:
            args = msgspec.json.format(msgspec.json.encode(call.arguments), indent=2).decode()
            shown = args if call.arguments_valid else call.arguments_text
            parts.append(f"<h3>tool call {_e(call.name)}</h3><pre>{_e(shown)}</pre>")
    return "".join(parts) or "<p><em>(empty answer)</em></p>"


def _column(side: Side, tl: Timeline, scale: float, text_change: Change | None, which: str) -> str:
    return (
        f'<div class="col"><h3>{_e(side.label)}</h3>{timeline_svg(tl, scale, side.label)}'
        f"{_facts(side.metrics, side.summary)}"
        f"{_answer(side.summary, text_change, which, side.body)}</div>"
    )


def _change_item(c: Change) -> str:
    if c.kind == "text":
        return f"<li><code>{_e(c.field)}</code> changed (highlighted above)</li>"
    if c.kind == "timing":
        return f"<li><code>{_e(c.field)}</code>: {c.a:,.1f} → {c.b:,.1f} ({c.delta:+,.1f})</li>"
    a, b = (msgspec.json.encode(v).decode() for v in (c.a, c.b))
    return f"<li><code>{_e(c.field)}</code>: <del>{_e(a)}</del> → <ins>{_e(b)}</ins></li>"


def _single(a: Loaded) -> list[str]:
    out = [_overview(a.sides)]
    for side in a.sides:
        tl = a.timelines[side.label]
        out.append(
            f"<article><h2>{_e(side.request)}</h2>"
            f'<div class="cols">{_column(side, tl, tl.end_ms, None, "a")}</div></article>'
        )
    return out


def _overview(sides: Sequence[Side]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "exchange",
            "request",
            "model",
            "status",
            "ended",
            "TTFT ms",
            "duration ms",
            "tok/s",
        )
    )
    rows = []
    for s in sides:
        m = s.metrics
        cells = [
            _e(s.label), _e(s.request), _e(m.model or "-"), str(m.status), _e(m.outcome),
            "-" if m.ttft_ms is None else f"{m.ttft_ms:,.1f}", f"{m.duration_ms:,.1f}",
            "-" if m.tokens_per_s is None else f"{m.tokens_per_s:,.1f}",
        ]  # fmt: skip
        rows.append(
            "<tr>"
            + "".join(f"<td{' class=n' if i >= 5 else ''}>{c}</td>" for i, c in enumerate(cells))
            + "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _compared(a: Loaded, b: Loaded, result: DiffResult) -> list[str]:
    by_label = {s.label: s for s in [*a.sides, *b.sides]}
    differing = sum(p.differs for p in result.pairs)
    out = [
        f"<p>{len(result.pairs)} paired, <strong>{differing} differ</strong>, "
        f"{len(result.only_a)} only in A, {len(result.only_b)} only in B.</p>"
    ]
    for pair in result.pairs:
        sa, sb = by_label[pair.a], by_label[pair.b]
        ta, tb = a.timelines[pair.a], b.timelines[pair.b]
        scale = max(ta.end_ms, tb.end_ms)
        text = next((c for c in pair.changes if c.field == "output[0].text"), None)
        badge = (
            '<span class="badge differs">differs</span>'
            if pair.differs
            else '<span class="badge">equal</span>'
        )
        changes = "".join(_change_item(c) for c in pair.changes)
        kind = "differs" if pair.differs else "equal"
        cols = _column(sa, ta, scale, text, "a") + _column(sb, tb, scale, text, "b")
        listed = f'<ul class="changes">{changes}</ul>' if changes else ""
        out.append(
            f'<article class="{kind}"><h2>{_e(pair.request)}{badge}</h2>'
            f'<div class="cols">{cols}</div>{listed}</article>'
        )
    for label in result.only_a:
        out.append(
            f'<article><h2>{_e(label)}<span class="badge only">only in A</span></h2></article>'
        )
    for label in result.only_b:
        out.append(
            f'<article><h2>{_e(label)}<span class="badge only">only in B</span></h2></article>'
        )
    return out


def build_report(
    a_name: str,
    a: Loaded,
    b_name: str | None = None,
    b: Loaded | None = None,
    *,
    tolerance: Tolerance | None = None,
    pair_by: str = "request",
) -> tuple[str, DiffResult | None]:
    """The HTML page, and the diff when there is a B."""
    result = None
    if b is not None:
        result = diff_sides(a.sides, b.sides, tolerance=tolerance, pair_by=pair_by)
        body = _compared(a, b, result)
        title = f"A {a_name} · B {b_name}"
    else:
        body = _single(a)
        title = a_name
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>streamtape report: {_e(title)}</title><style>{_css()}</style></head><body>"
        f'<h1>streamtape report</h1><p class="meta">{_e(title)} · generated {generated} · '
        "blue: bytes received over time, orange ticks: events, green: first event, "
        "dashed: response headers</p>" + "".join(body) + "</body></html>\n"
    )
    return page, result
