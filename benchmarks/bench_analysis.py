"""``diff`` and ``stats`` over 10,000 small cassettes: wall time, speed-up, decoding share.

Run: python benchmarks/bench_analysis.py [--files 10000] [--tokens 40]

Run it on an otherwise idle machine: the speed-up is bounded by the free cores.

Writes two folders of one-exchange cassettes (A and B, half the files each; B
answers the same requests, one in ten with one word changed), then measures in one
run: ``stats`` over all of them and ``diff A B`` on every core and on one; and the
floor, decoding alone (open, read, reassemble every exchange on one core), to give the
share of the one-core CPU time spent outside decoding (summaries, metrics, pairing,
comparing). CPU seconds of all processes are printed too: on a busy machine wall-clock
speed-up says little, while CPU all/one shows what the pool itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from bench_cassette import chat_stream

from streamtape.analysis.diff import Tolerance, diff_sides, load_sides
from streamtape.analysis.parallel import default_jobs, map_files
from streamtape.analysis.records import cassette_files
from streamtape.analysis.stats import group_stats, load_metrics
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.core.splice import splice_reads
from streamtape.formats import assemble


def exchange(seed: int, tokens: int) -> Exchange:
    """A chat stream with a prompt of its own, so requests pair one to one."""
    ex = chat_stream(tokens, seed)
    body = json.loads(ex.request.body)
    body["messages"][0]["content"] = f"Write story number {seed} about a lighthouse."
    request = msgspec.structs.replace(ex.request, body=json.dumps(body).encode())
    return msgspec.structs.replace(ex, request=request)


def one_word_changed(ex: Exchange) -> Exchange:
    body = ex.body
    at = body.index(b'"content":" ') + len(b'"content":" ')
    return msgspec.structs.replace(ex, reads=splice_reads(ex.reads, [(at, at + 1, b"X")]))


def write_corpus(root: Path, files: int, tokens: int) -> tuple[Path, Path, int]:
    a, b = root / "a", root / "b"
    a.mkdir()
    b.mkdir()
    changed = 0
    for seed in range(files // 2):
        ex = exchange(seed, tokens)
        Cassette(a / f"{seed:05d}.tape").append(ex)
        if seed % 10 == 0:
            ex, changed = one_word_changed(ex), changed + 1
        Cassette(b / f"{seed:05d}.tape").append(ex)
    return a, b, changed


def cpu_seconds() -> float:
    """User and system time of this process and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """The best wall time of ``repeat`` runs, the CPU time of that run, and the result."""
    best, cpu, result = float("inf"), 0.0, None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = func()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, cpu_seconds() - start_cpu
    return best, cpu, result


def decode_only(path: Path) -> int:
    """The floor: read and reassemble every exchange, nothing else."""
    n = 0
    for ex in Cassette.open(path):
        assemble(ex)
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    args = parser.parse_args()
    jobs = default_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        t_write, _, (a, b, changed) = timed(
            lambda: write_corpus(Path(tmp), args.files, args.tokens)
        )
        everything = cassette_files([a, b])
        size = sum(f.stat().st_size for f in everything)
        print(
            f"corpus: {len(everything):,} cassettes of one {args.tokens}-token chat stream "
            f"({size / len(everything):,.0f} B each), written in {t_write:.1f} s; {jobs} cores, "
            f"load average {os.getloadavg()[0]:.1f} at the start; best of {args.repeat}"
        )

        def stats(n: int) -> Any:
            return group_stats(
                m for part in map_files(load_metrics, everything, jobs=n) for m in part
            )

        def diff(n: int) -> Any:
            files_a, files_b = cassette_files([a]), cassette_files([b])
            loaded = map_files(load_sides, [*files_a, *files_b], jobs=n)
            side_a = [s for part in loaded[: len(files_a)] for s in part]
            side_b = [s for part in loaded[len(files_a) :] for s in part]
            return diff_sides(side_a, side_b, tolerance=Tolerance())

        t_floor, cpu_floor, decoded = timed(
            lambda: sum(decode_only(f) for f in everything), args.repeat
        )
        rows = []
        for name, func in (("stats", stats), ("diff", diff)):
            t_all, cpu_all, result = timed(lambda func=func: func(jobs), args.repeat)
            t_one, cpu_one, again = timed(lambda func=func: func(1), args.repeat)
            assert msgspec.to_builtins(result) == msgspec.to_builtins(again)
            rows.append((name, t_all, t_one, cpu_all, cpu_one, result))
        print(
            f"floor: decoding alone, one core: {t_floor:.2f} s wall, {cpu_floor:.2f} s CPU "
            f"for {decoded:,} exchanges"
        )
        print(
            f"{'command':<8} {'all cores':>10} {'one core':>10} {'speed-up':>9} "
            f"{'CPU all/one':>14} {'per cassette':>13} {'outside decoding':>17}"
        )
        for name, t_all, t_one, cpu_all, cpu_one, result in rows:
            outside = max(0.0, 1 - cpu_floor / cpu_one)
            print(
                f"{name:<8} {t_all:>9.2f}s {t_one:>9.2f}s {t_one / t_all:>8.2f}x "
                f"{cpu_all:>6.2f}/{cpu_one:<6.2f}s {t_all / len(everything) * 1e6:>10.0f} µs "
                f"{outside:>16.0%}"
            )
            if name == "diff":
                differ = sum(p.differs for p in result.pairs)
                assert differ == changed, (differ, changed)
                print(
                    f"         diff found {differ:,} changed pairs of {len(result.pairs):,} "
                    f"(planted: {changed:,})"
                )


if __name__ == "__main__":
    main()
