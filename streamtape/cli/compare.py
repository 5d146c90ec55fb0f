"""Commands that compare and summarise many exchanges: diff, stats, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import msgspec

from streamtape.analysis.diff import (
    Change,
    DiffResult,
    Pair,
    Side,
    Tolerance,
    diff_sides,
    load_sides,
)
from streamtape.analysis.parallel import map_files
from streamtape.analysis.records import cassette_files
from streamtape.analysis.report import build_report, load_for_report
from streamtape.analysis.stats import Distribution, GroupStats, group_stats, load_metrics
from streamtape.cli._common import (
    echo_json,
    friendly,
    friendly_exit,
    json_option,
    progress_callback,
)
from streamtape.cli._render import table, word_diff

jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to use (default: every core).",
)


def load_both(a: str, b: str, jobs: int | None) -> tuple[list[Side], list[Side]]:
    """The sides of A and B, decoded in one pool run."""
    files_a, files_b = cassette_files([a]), cassette_files([b])
    with progress_callback(len(files_a) + len(files_b), "decoding") as tick:
        loaded = map_files(load_sides, [*files_a, *files_b], jobs=jobs, on_done=tick)
    sides_a = [s for part in loaded[: len(files_a)] for s in part]
    sides_b = [s for part in loaded[len(files_a) :] for s in part]
    return sides_a, sides_b


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_line(change: Change) -> str:
    field = click.style(change.field, bold=True)
    if change.kind == "text" and change.words is not None:
        return f"{field}: {word_diff(change.words)}"
    if change.kind == "timing":
        return f"{field}: {timing_text(change)}" + click.style("  beyond tolerance", fg="yellow")
    old = click.style(_short(change.a), fg="red")
    new = click.style(_short(change.b), fg="green")
    return f"{field}: {old} → {new}"


def timing_text(change: Change) -> str:
    a, b, delta = change.a, change.b, change.delta or 0.0
    percent = f", {delta / a * 100:+.0f}%" if a else ""
    unit = " tok/s" if change.field.endswith("tokens_per_s") else " ms"
    return f"{a:,.1f} → {b:,.1f}{unit} ({delta:+,.1f}{percent})"


def _pair_lines(pair: Pair) -> list[str]:
    mark = (
        click.style("~", fg="yellow", bold=True) if pair.differs else click.style("=", fg="green")
    )
    lines = [f"{mark} {pair.a} ↔ {pair.b}  {pair.request}"]
    lines += [f"    {change_line(c)}" for c in pair.changes]
    within = [t for t in pair.timing if not t.beyond_tolerance]
    if within:
        shown = ", ".join(f"{t.field.removeprefix('timing.')} {t.delta:+,.1f}" for t in within)
        lines.append(click.style(f"    timing within tolerance: {shown}", dim=True))
    return lines


def diff_lines(result: DiffResult, a: str, b: str, show_all: bool = False) -> list[str]:
    differing = sum(p.differs for p in result.pairs)
    lines = [
        click.style(f"A {a}  B {b}", bold=True),
        f"{len(result.pairs)} paired, {differing} differ, {len(result.only_a)} only in A, "
        f"{len(result.only_b)} only in B",
    ]
    for pair in result.pairs:
        if pair.differs or show_all:
            lines += _pair_lines(pair)
    lines += [click.style(f"- only in A: {label}", fg="red") for label in result.only_a]
    lines += [click.style(f"+ only in B: {label}", fg="green") for label in result.only_b]
    verdict = "differ" if result.differs else "equal"
    lines.append(click.style(verdict, bold=True, fg="yellow" if result.differs else "green"))
    return lines


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option(
    "--timing-tolerance",
    default="50%,50ms",
    show_default=True,
    help="A timing change counts beyond both bounds: a percentage and/or milliseconds.",
)
@click.option(
    "--pair",
    "pair_by",
    type=click.Choice(["request", "order"]),
    default="request",
    show_default=True,
    help="Pair by the request (model left out), or by position per endpoint (prompt changes).",
)
@click.option("--all", "show_all", is_flag=True, help="List equal pairs too.")
@jobs_option
@json_option
@friendly_exit(2)
def diff(
    a: str,
    b: str,
    timing_tolerance: str,
    pair_by: str,
    show_all: bool,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Compare the answers in A and B (cassettes or folders); exit 0 equal, 1 differ, 2 error.

    Compares text word by word, tool-call arguments as JSON, refusals, reasoning, stop
    reasons, usage, model and timing (TTFT, duration, tokens/s). Ids, timestamps,
    fingerprints and sequence numbers never count.
    """
    tolerance = Tolerance.parse(timing_tolerance)
    sides_a, sides_b = load_both(a, b, jobs)
    result = diff_sides(sides_a, sides_b, tolerance=tolerance, pair_by=pair_by)
    if as_json:
        echo_json({"a": a, "b": b, "differs": result.differs, **_builtins(result)})
    else:
        for line in diff_lines(result, a, b, show_all):
            click.echo(line)
    raise SystemExit(1 if result.differs else 0)


def _builtins(result: DiffResult) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(result)
    for pair, raw in zip(result.pairs, out["pairs"], strict=True):
        raw["differs"] = pair.differs
    return out


def _dist_cells(d: Distribution, fmt: str) -> list[str]:
    return ["-" if v is None else format(v, fmt) for v in (d.p50, d.p90, d.p99)]


STATS_HEADER = (
    "endpoint", "model", "n", "err%", "cut%",
    "ttft p50", "p90", "p99", "tok/s p50", "p90", "p99", "dur p50", "p90", "p99",
)  # fmt: skip


def stats_rows(groups: list[GroupStats]) -> list[list[str]]:
    return [
        [
            g.endpoint,
            g.model or "-",
            str(g.exchanges),
            f"{g.error_rate * 100:.1f}",
            f"{g.cut_rate * 100:.1f}",
            *_dist_cells(g.ttft_ms, ",.1f"),
            *_dist_cells(g.tokens_per_s, ",.1f"),
            *_dist_cells(g.duration_ms, ",.1f"),
        ]
        for g in groups
    ]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@jobs_option
@json_option
@friendly
def stats(paths: tuple[str, ...], jobs: int | None, as_json: bool) -> None:
    """Percentiles of TTFT (ms), tokens/s and duration (ms), error and cut rates.

    One row per model and endpoint, over every cassette in PATHS (files or folders),
    decoded on every core.
    """
    files = cassette_files(paths)
    with progress_callback(len(files), "decoding") as tick:
        loaded = map_files(load_metrics, files, jobs=jobs, on_done=tick)
    groups = group_stats(m for part in loaded for m in part)
    if as_json:
        echo_json({"cassettes": len(files), "groups": groups})
        return
    if not groups:
        click.echo("(no exchanges)")
        return
    for line in table(STATS_HEADER, stats_rows(groups), right=set(range(2, 14))):
        click.echo(line)
    click.echo(f"{sum(g.exchanges for g in groups)} exchange(s) in {len(files)} cassette(s)")


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path(), required=False)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True
)
@click.option("--timing-tolerance", default="50%,50ms", show_default=True)
@click.option("--pair", "pair_by", type=click.Choice(["request", "order"]), default="request")
@json_option
@friendly
def report(
    a: str, b: str | None, output: str, timing_tolerance: str, pair_by: str, as_json: bool
) -> None:
    """Write one self-contained HTML page: each stream's timing as SVG, A and B side by side.

    The page loads nothing at view time (no scripts, no fonts, no network).
    """
    tolerance = Tolerance.parse(timing_tolerance)
    loaded_a = load_for_report(a)
    loaded_b = load_for_report(b) if b is not None else None
    page, result = build_report(a, loaded_a, b, loaded_b, tolerance=tolerance, pair_by=pair_by)
    Path(output).write_text(page, encoding="utf-8")
    facts: dict[str, Any] = {"report": output, "exchanges": len(loaded_a.sides)}
    if result is not None:
        facts.update(pairs=len(result.pairs), differ=sum(p.differs for p in result.pairs))
    if as_json:
        echo_json(facts)
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in facts.items()))


__all__ = ["change_line", "diff", "diff_lines", "load_both", "report", "stats", "timing_text"]
