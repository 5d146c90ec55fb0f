"""stats, export --parquet and export --har on a generated corpus, checked against the bytes."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from recordings import record_faults, run

from streamtape import Cassette, Exchange, Read, parse_sse, write_cassette
from streamtape.simulator.app import UpstreamServer

FACTORS = [1.0 + 0.37 * i for i in range(12)]


def scaled(exchange: Exchange, factor: float) -> Exchange:
    """The same exchange, every time stretched by ``factor`` (a slower run of it)."""
    return msgspec.structs.replace(
        exchange,
        reads=[Read(int(r.t_ns * factor), r.data) for r in exchange.reads],
        headers_ns=int(exchange.headers_ns * factor),
        end_ns=int(exchange.end_ns * factor),
    )


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer, workload_tape: Path
) -> Path:
    faults = record_faults(tmp_path_factory.mktemp("faults") / "faults.tape", upstream.base_url)
    exchanges = Cassette.open(workload_tape).exchanges() + Cassette.open(faults).exchanges()
    root = tmp_path_factory.mktemp("corpus")
    for i, factor in enumerate(FACTORS):
        folder = root / f"host{i % 3}"
        folder.mkdir(exist_ok=True)
        write_cassette(folder / f"run{i}.tape", [scaled(e, factor) for e in exchanges])
    return root


# -- the direct computation: from the raw events, not through streamtape's analysis ----------


def chunk_events(exchange: Exchange) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for event in parse_sse(exchange.reads):
        if event.data and event.data != b"[DONE]":
            value = json.loads(event.data)
            if "choices" in value:
                assert event.t_end_ns is not None
                out.append((event.t_end_ns / 1e6, value))
    return out


def direct_tokens(chunks: list[tuple[float, dict[str, Any]]]) -> int:
    for _, chunk in chunks:
        if chunk.get("usage"):
            return int(chunk["usage"]["completion_tokens"])
    chars = 0
    for _, chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            chars += len(choice.get("text") or "") + len(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                chars += len(call["function"].get("arguments") or "")
    return round(chars / 4)


def direct_rows(root: Path) -> dict[tuple[str, str], dict[str, list[float]]]:
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for tape in sorted(root.rglob("*.tape")):
        for ex in Cassette.open(tape):
            key = (f"{ex.method} {urlsplit(ex.url).path}", json.loads(ex.request.body)["model"])
            g = groups.setdefault(key, {"ttft": [], "tps": [], "dur": [], "err": [], "cut": []})
            g["dur"].append(ex.end_ns / 1e6)
            if not ex.is_event_stream:
                g["err"].append(float(ex.status >= 400))
                g["cut"].append(0.0)
                continue
            chunks = chunk_events(ex)
            events = [json.loads(e.data) for e in parse_sse(ex.reads) if e.data.startswith(b"{")]
            error = any("error" in e for e in events)
            g["err"].append(float(error))
            g["cut"].append(float(not error and not ex.body.endswith(b"data: [DONE]\n\n")))
            first, last = chunks[0][0], chunks[-1][0]
            g["ttft"].append(first)
            g["tps"].append(direct_tokens(chunks) / ((last - first) / 1e3))
    return groups


def pcts(values: list[float]) -> list[float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return [q[49], q[89], q[98]]


def test_stats_equal_a_direct_computation(corpus: Path) -> None:
    data = json.loads(run("stats", corpus, "--json").stdout)
    assert data["cassettes"] == len(FACTORS)
    direct = direct_rows(corpus)
    got = {(g["endpoint"], g["model"]): g for g in data["groups"]}
    assert set(got) == set(direct)
    for key, want in direct.items():
        g = got[key]
        assert g["exchanges"] == len(want["dur"])
        assert g["error_rate"] == pytest.approx(statistics.fmean(want["err"]))
        assert g["cut_rate"] == pytest.approx(statistics.fmean(want["cut"]))
        for name, values in (
            ("ttft_ms", want["ttft"]),
            ("tokens_per_s", want["tps"]),
            ("duration_ms", want["dur"]),
        ):
            d = g[name]
            if not values:
                assert d["count"] == 0 and d["p50"] is None
                continue
            assert [d["p50"], d["p90"], d["p99"]] == pytest.approx(pcts(values)), (key, name)
    chat = got[("POST /v1/chat/completions", "gpt-4o-mini")]
    assert chat["errors"] == len(FACTORS) and chat["cuts"] == len(FACTORS)  # one of each per run


def test_stats_on_one_core_is_the_same_and_the_table_has_a_header(corpus: Path) -> None:
    many = json.loads(run("stats", corpus, "--json").stdout)
    one = json.loads(run("stats", corpus, "--json", "-j", "1").stdout)
    assert many == one
    lines = run("stats", corpus).stdout.splitlines()
    assert lines[0].split()[:5] == ["endpoint", "model", "n", "err%", "cut%"]
    assert lines[-1] == f"{6 * len(FACTORS)} exchange(s) in {len(FACTORS)} cassette(s)"


README_SQL = """
SELECT model, path,
       count(*)                       AS n,
       quantile_cont(ttft_ms, 0.50)   AS ttft_p50,
       quantile_cont(ttft_ms, 0.90)   AS ttft_p90,
       quantile_cont(ttft_ms, 0.99)   AS ttft_p99
FROM 'DIR/exchanges.parquet'
GROUP BY model, path
ORDER BY model, path
"""


def test_parquet_read_back_by_duckdb_gives_the_stats(corpus: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "pq"
    facts = json.loads(run("export", corpus, "--parquet", out, "--json").stdout)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert README_SQL.strip().replace("DIR/", "out/") in readme  # the README shows this query
    rows = duckdb.sql(README_SQL.replace("DIR", str(out))).fetchall()
    stats = json.loads(run("stats", corpus, "--json").stdout)["groups"]
    by_key = {(g["model"], g["endpoint"].split(" ", 1)[1]): g for g in stats}
    assert len(rows) == len(by_key)
    for model, path, n, p50, p90, p99 in rows:
        g = by_key[(model, path)]
        assert n == g["exchanges"]
        want = g["ttft_ms"]
        if want["count"]:
            assert [p50, p90, p99] == pytest.approx([want["p50"], want["p90"], want["p99"]])
        else:
            assert p50 is None
    total_reads = sum(len(e.reads) for t in corpus.rglob("*.tape") for e in Cassette.open(t))
    assert (
        facts["reads"]
        == total_reads
        == duckdb.sql(f"SELECT count(*) FROM '{out}/reads.parquet'").fetchall()[0][0]
    )
    joined = duckdb.sql(
        f"SELECT e.file, e.number, count(*), max(r.t_ms) FROM '{out}/exchanges.parquet' e "
        f"JOIN '{out}/reads.parquet' r USING (file, number) GROUP BY ALL"
    ).fetchall()
    assert len(joined) == facts["exchanges"] == 6 * len(FACTORS)


def test_har_validates_against_the_har_1_2_shape(corpus: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    tape = next(corpus.rglob("*.tape"))
    har_path = tmp_path / "out.har"
    run("export", tape, "--har", har_path)
    har = json.loads(har_path.read_text())
    schema = json.loads((Path(__file__).parent / "fixtures" / "har-1.2.schema.json").read_text())
    jsonschema.validate(har, schema)
    exchanges = Cassette.open(tape).exchanges()
    entries = har["log"]["entries"]
    assert len(entries) == len(exchanges)
    for entry, ex in zip(entries, exchanges, strict=True):
        reads = entry["_streamtape"]["reads"]
        assert [(r["t_ms"], r["bytes"]) for r in reads] == [
            (r.t_ns / 1e6, len(r.data)) for r in ex.reads
        ]
        assert entry["time"] == pytest.approx(
            entry["timings"]["wait"] + entry["timings"]["receive"]
        )
        assert entry["response"]["status"] == ex.status
        assert entry["response"]["content"]["text"].encode() == ex.body
    assert entries[0]["request"]["postData"]["mimeType"] == "application/json"
    bad = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [{}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
