"""Commands that look inside cassettes: ls, show, cat, decode.

Exchanges are numbered from 1, as `NoMatchError` numbers them; ``show``, ``cat`` and
``decode`` read exchange N through the index without decoding the ones before it.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

import click
import msgspec

from streamtape.analysis.records import (
    Metrics,
    Record,
    cassette_files,
    completion_summary,
    metrics_of,
    pick,
    read_records,
    record_of,
)
from streamtape.analysis.timeline import events_of, timeline_of
from streamtape.cli._common import echo_json, existing, friendly, json_option, report_tail
from streamtape.cli._render import ms, rate, sparkline, table
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.formats import assemble
from streamtape.formats.summary import Summary

LS_HEADER = (
    "#",
    "method",
    "path",
    "model",
    "status",
    "ended",
    "reads",
    "bytes",
    "ttft",
    "duration",
    "tok/s",
)
_READS_SHOWN = 20


def ls_row(m: Metrics) -> list[str]:
    return [
        str(m.number),
        m.method,
        m.path,
        m.model or "-",
        str(m.status),
        m.outcome,
        str(m.reads),
        f"{m.bytes:,}",
        ms(m.ttft_ms),
        ms(m.duration_ms),
        rate(m.tokens_per_s) + ("~" if m.tokens_estimated and m.tokens_per_s is not None else ""),
    ]


@click.command("ls")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
@friendly
def list_exchanges(paths: tuple[str, ...], as_json: bool) -> None:
    """List the exchanges of cassettes and folders of cassettes, one row each.

    TTFT is the arrival of the first content event; tok/s counts output tokens from
    the reported usage (marked ~ when estimated from the text, 4 characters a token).
    """
    files = cassette_files(paths)
    groups = []
    for file in files:
        tape = Cassette.open(file)
        groups.append((file, [r.metrics for r in read_records(tape)]))
        report_tail(tape)
    every = [m for _, rows in groups for m in rows]
    if as_json:
        echo_json(every)
        return
    if not every:
        click.echo("(no exchanges)")
        return
    header, *lines = table(LS_HEADER, [ls_row(m) for m in every], right={0, 4, 6, 7, 8, 9, 10})
    click.echo(header)
    for file, rows in groups:
        if len(files) > 1:
            click.echo(click.style(f"{file}: {len(rows)} exchange(s)", fg="cyan"))
        for _ in rows:
            click.echo(lines.pop(0))


def _pretty_body(body: bytes) -> str:
    """A JSON body indented, anything else described by its size."""
    if not body:
        return "(no body)"
    try:
        return msgspec.json.format(
            msgspec.json.encode(msgspec.json.decode(body)), indent=2
        ).decode()
    except (msgspec.DecodeError, UnicodeDecodeError):
        return f"({len(body):,} bytes, not JSON)"


def _answer_lines(summary: Summary) -> list[str]:
    usage = summary.usage
    lines = [
        click.style("answer", bold=True)
        + f"  model {summary.model or '-'} · stop {summary.stop_reason or '-'} · usage in "
        f"{usage.input_tokens if usage.input_tokens is not None else '-'} / out "
        f"{usage.output_tokens if usage.output_tokens is not None else '-'}"
        + (f" (reasoning {usage.reasoning_tokens})" if usage.reasoning_tokens else "")
        + ("" if summary.ok else click.style("  [not ok]", fg="red"))
    ]
    for out in summary.outputs:
        if len(summary.outputs) > 1:
            lines.append(click.style(f"-- output {out.index} (stop {out.stop_reason})", fg="cyan"))
        if out.reasoning:
            lines += [click.style("reasoning:", dim=True), click.style(out.reasoning, dim=True)]
        if out.refusal:
            lines.append(click.style(f"refusal: {out.refusal}", fg="yellow"))
        if out.text:
            lines.append(out.text)
        for call in out.tool_calls:
            lines.append(click.style(f"tool call {call.name} ({call.kind})", fg="magenta"))
            shown = (
                msgspec.json.format(msgspec.json.encode(call.arguments), indent=2).decode()
                if call.arguments_valid
                else call.arguments_text + click.style("  (not valid JSON)", fg="red")
            )
            lines += ["  " + ln for ln in shown.splitlines()]
    for problem in summary.problems:
        lines.append(click.style(f"problem: {problem.kind}: {problem.message}", fg="yellow"))
    return lines


def _timing_lines(exchange: Exchange, metrics: Metrics, all_reads: bool) -> list[str]:
    tl = timeline_of(exchange)
    lines = [
        click.style("timing", bold=True)
        + f"  headers {ms(tl.headers_ms)} · first token {ms(metrics.ttft_ms)} · end "
        f"{ms(tl.end_ms)} · {rate(metrics.tokens_per_s)} tok/s"
    ]
    gaps = tl.gaps_ms
    if gaps:
        ordered = sorted(gaps)
        lines.append(
            f"  token gaps {sparkline(gaps)}  min {ordered[0]:.1f} · median "
            f"{ordered[len(ordered) // 2]:.1f} · max {ordered[-1]:.1f} ms"
        )
    lines.append(click.style(f"reads ({len(tl.reads_ms)})", bold=True) + "  t ms, gap ms, bytes")
    rows = list(
        zip(
            tl.reads_ms,
            [0.0, *[b - a for a, b in zip(tl.reads_ms, tl.reads_ms[1:], strict=False)]],
            tl.read_bytes,
            strict=False,
        )
    )
    shown = rows if all_reads or len(rows) <= _READS_SHOWN else rows[:_READS_SHOWN]
    for i, (t, gap, size) in enumerate(shown, start=1):
        lines.append(f"  {i:>5}  {t:>10.1f}  {gap:>+9.1f}  {size:>7,}")
    if len(shown) < len(rows):
        lines.append(f"  ... {len(rows) - len(shown)} more (use --all-reads)")
    return lines


def _raw_lines(exchange: Exchange) -> list[str]:
    events = events_of(exchange)
    if not events:
        return ["(not an event stream)"]
    lines = []
    for i, e in enumerate(events):
        t = "-" if e.t_end_ns is None else f"{e.t_end_ns / 1e6:.1f}"
        kind = "" if e.event == "message" else f"event: {e.event}  "
        lines.append(f"{i:>5}  {t:>10} ms  {click.style(kind, fg='cyan')}{e.text}")
    return lines


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("number", type=int, default=1)
@click.option("--raw", is_flag=True, help="Print the SSE events with their arrival times.")
@click.option("--all-reads", is_flag=True, help="List every read, not only the first 20.")
@json_option
@friendly
def show(cassette: str, number: int, raw: bool, all_reads: bool, as_json: bool) -> None:
    """Show exchange NUMBER (from 1) of CASSETTE: request, answer, timing of every read."""
    tape = existing(cassette)
    _, exchange = pick(tape, number)
    summary = completion_summary(exchange)
    metrics = metrics_of(cassette, number, exchange, summary)
    if as_json:
        echo_json(_show_json(exchange, summary, metrics, raw))
        return
    req = exchange.request
    click.echo(click.style(f"#{number}  {req.method} {req.url}", bold=True))
    for name, value in req.headers:
        click.echo(f"  {name}: {value}")
    click.echo(click.style("request body", bold=True))
    click.echo(_pretty_body(exchange.request.body))
    click.echo(
        click.style(
            f"{exchange.http_version} {exchange.status}",
            bold=True,
            fg="green" if exchange.status < 400 else "red",
        )
        + f"  headers after {ms(exchange.headers_ns / 1e6)}"
    )
    for name, value in exchange.response_headers:
        click.echo(f"  {name}: {value}")
    click.echo(
        f"body: {len(exchange.body):,} bytes in {len(exchange.reads)} reads, ended "
        f"{metrics.outcome} at {ms(exchange.end_ns / 1e6)}"
    )
    if exchange.error:
        click.echo(click.style(f"error: {exchange.error}", fg="red"))
    if exchange.redacted:
        click.echo(f"redacted: {', '.join(exchange.redacted)}")
    if summary is not None:
        lines = _answer_lines(summary)
    else:
        lines = [click.style("answer", bold=True) + f"  not a completion: {_what_it_is(exchange)}"]
    lines += _timing_lines(exchange, metrics, all_reads)
    if raw:
        lines += [
            click.style("events", bold=True) + "  index, arrival, data",
            *_raw_lines(exchange),
        ]
    for line in lines:
        click.echo(line)
    report_tail(tape)


def _show_json(
    exchange: Exchange, summary: Summary | None, metrics: Metrics, raw: bool
) -> dict[str, Any]:
    req = exchange.request
    out: dict[str, Any] = {
        "metrics": metrics,
        "request": {
            "method": req.method,
            "url": req.url,
            "headers": req.headers,
            "body": req.body.decode("utf-8", "replace"),
        },
        "response": {
            "status": exchange.status,
            "headers": exchange.response_headers,
            "error": exchange.error,
        },
        "summary": summary,
        "reads": [{"t_ms": r.t_ns / 1e6, "bytes": len(r.data)} for r in exchange.reads],
    }
    if raw:
        out["events"] = [
            {
                "t_ms": None if e.t_end_ns is None else e.t_end_ns / 1e6,
                "event": e.event,
                "data": e.text,
            }
            for e in events_of(exchange)
        ]
    return out


def _what_it_is(exchange: Exchange) -> str:
    ctype = exchange.response_header("content-type") or "no content-type"
    path = urlsplit(exchange.url).path or "/"
    size = len(exchange.body)
    return f"{exchange.method} {path} answered {exchange.status} with {ctype}, {size:,} bytes"


def textconv(record: Record) -> list[str]:
    """What ``git diff`` sees of an exchange: request and answer, without timing or ids."""
    ex, m = record.exchange, record.metrics
    lines = [
        f"=== #{m.number} {ex.method} {m.path} -> {ex.status} {m.outcome}",
        "--- request body",
        _pretty_body(ex.request.body),
    ]
    if record.summary is None:
        lines += ["--- response body", _pretty_body(ex.body)]
        return lines
    s = record.summary
    usage = msgspec.json.encode(s.usage).decode()
    lines.append(f"--- answer: model {s.model} stop {s.stop_reason} usage {usage}")
    for out in s.outputs:
        lines.append(f"[output {out.index} stop {out.stop_reason}]")
        if out.reasoning:
            lines += ["[reasoning]", out.reasoning]
        if out.refusal:
            lines += ["[refusal]", out.refusal]
        if out.text:
            lines.append(out.text)
        for call in out.tool_calls:
            args = (
                msgspec.json.format(msgspec.json.encode(call.arguments), indent=2).decode()
                if call.arguments_valid
                else call.arguments_text
            )
            lines += [f"[tool call {call.name}]", args]
    return lines


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("number", type=int, required=False)
@click.option(
    "--text",
    "as_text",
    is_flag=True,
    help="Readable text of every exchange (a git textconv driver).",
)
@friendly
def cat(cassette: str, number: int | None, as_text: bool) -> None:
    """Write the exact response body of exchange NUMBER (default 1) to stdout.

    With --text: requests and reassembled answers as plain text, for `git diff`.
    """
    if as_text:
        tape = existing(cassette)
        if number is None:
            records = list(read_records(tape))
            report_tail(tape)
        else:
            records = [record_of(cassette, number, pick(tape, number)[1])]
        for record in records:
            for line in textconv(record):
                click.echo(line)
        return
    _, exchange = pick(existing(cassette), number or 1)
    sys.stdout.buffer.write(exchange.body)
    sys.stdout.buffer.flush()


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("number", type=int, default=1)
@friendly
def decode(cassette: str, number: int) -> None:
    """Reassemble exchange NUMBER (from 1) into its full response object, as JSON.

    An answer that is not a completion (embeddings, models) prints as its own JSON.
    """
    tape: Cassette = existing(cassette)
    _, exchange = pick(tape, number)
    if completion_summary(exchange) is None:
        what = _what_it_is(exchange)
        try:
            body = msgspec.json.decode(exchange.body)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise click.ClickException(
                f"{cassette}: exchange #{number} is not a completion ({what}); "
                "`streamtape cat` writes its bytes"
            ) from None
        click.secho(
            f"note: exchange #{number} is not a completion ({what}); printing its JSON body",
            fg="yellow",
            err=True,
        )
        echo_json(body)
        return
    result = assemble(exchange)
    to_dict = getattr(result, "to_dict", None)
    echo_json(to_dict() if callable(to_dict) else msgspec.to_builtins(result))
