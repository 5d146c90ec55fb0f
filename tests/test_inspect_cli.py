"""ls, show, cat and decode on recorded cassettes, as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from recordings import run

from streamtape import Cassette, ReplayTransport, parse_sse, write_cassette
from streamtape.errors import NoMatchError


@pytest.fixture(scope="module")
def tape(workload_tape: Path) -> Path:
    return workload_tape


def test_ls_json_has_the_row_facts(tape: Path) -> None:
    rows = json.loads(run("ls", tape, "--json").stdout)
    exchanges = Cassette.open(tape).exchanges()
    assert [r["number"] for r in rows] == [1, 2, 3, 4]
    assert [r["model"] for r in rows] == [
        "gpt-4o-mini", "gpt-4o-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small"
    ]  # fmt: skip
    assert [r["reads"] for r in rows] == [len(e.reads) for e in exchanges]
    assert [r["bytes"] for r in rows] == [len(e.body) for e in exchanges]
    assert [r["duration_ms"] for r in rows] == [e.end_ns / 1e6 for e in exchanges]
    first = rows[0]
    events = [e for e in parse_sse(exchanges[0].reads) if e.data]
    assert first["ttft_ms"] == events[0].t_end_ns / 1e6
    assert first["output_tokens"] == 30 and not first["tokens_estimated"]
    usage_event = json.loads(events[-2].data)
    span_s = (events[-2].t_end_ns - events[0].t_end_ns) / 1e9
    assert first["tokens_per_s"] == pytest.approx(
        usage_event["usage"]["completion_tokens"] / span_s
    )
    assert rows[3]["ttft_ms"] is None and rows[3]["completion"] is False


def test_ls_over_a_folder_numbers_each_cassette_from_1(tape: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("one.tape", "sub/two.tape"):
        (tmp_path / name).write_bytes(tape.read_bytes())
    out = run("ls", tmp_path).stdout.splitlines()
    assert out[0].startswith("#")
    assert f"{tmp_path / 'one.tape'}: 4 exchange(s)" in out
    numbers = [ln.split()[0] for ln in out[1:] if ln[:1].isdigit()]
    assert numbers == ["1", "2", "3", "4"] * 2


def test_ls_numbers_agree_with_no_match_error(tape: Path) -> None:
    with (
        httpx.Client(transport=ReplayTransport(tape, "instant")) as client,
        pytest.raises(NoMatchError) as info,
    ):
        client.post(
            "http://x.invalid/v1/completions",
            json={"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time", "stream": True},
        )
    found = re.search(r"nearest recorded request \(#(\d+) of 4\): (\S+) (\S+)", str(info.value))
    assert found is not None
    number, method, url = found.groups()
    row = json.loads(run("ls", tape, "--json").stdout)[int(number) - 1]
    assert (row["number"], row["method"], row["url"]) == (int(number), method, url)
    assert run("show", tape, number).stdout.splitlines()[0] == f"#{number}  {method} {url}"


def test_show_prints_the_request_the_answer_and_every_read(tape: Path) -> None:
    exchange = Cassette.open(tape).exchanges()[0]
    out = run("show", tape, "1", "--all-reads").stdout
    assert '"content": "Tell me about streams."' in out  # the request body, pretty
    assert "stop length" in out and "usage in" in out and "out 30" in out
    assert re.search(r"token gaps [▁▂▃▄▅▆▇█]{10,}", out)
    rows = re.findall(r"^\s+(\d+)\s+([\d.,]+)\s+([+-][\d.,]+)\s+([\d,]+)$", out, re.M)
    assert len(rows) == len(exchange.reads)
    assert [float(t.replace(",", "")) for _, t, _, _ in rows] == [
        round(r.t_ns / 1e6, 1) for r in exchange.reads
    ]
    assert [int(b.replace(",", "")) for *_, b in rows] == [len(r.data) for r in exchange.reads]


def test_show_tool_call_arguments_are_pretty_json(tape: Path) -> None:
    out = run("show", tape, "2").stdout
    assert "tool call get_weather" in out and "stop tool_calls" in out
    assert re.search(r'^\s+\{\n\s+"city": ".+"\n\s+\}$', out, re.M)


def test_show_raw_lists_events_with_arrival_times(tape: Path) -> None:
    exchange = Cassette.open(tape).exchanges()[2]
    out = run("show", tape, "3", "--raw").stdout
    events = parse_sse(exchange.reads)
    raw = out.split("events  index, arrival, data\n", 1)[1].splitlines()
    assert len(raw) == len(events)
    assert raw[-1].split()[1] == f"{events[-1].t_end_ns / 1e6:.1f}" and raw[-1].endswith("[DONE]")
    data = json.loads(run("show", tape, "3", "--raw", "--json").stdout)
    assert [e["data"] for e in data["events"]] == [e.text for e in events]


def test_show_reads_one_exchange_without_decoding_the_others(tape: Path, tmp_path: Path) -> None:
    entries = list(Cassette.open(tape).entries())
    data = bytearray(tape.read_bytes())
    end = entries[0].offset + entries[0].record_bytes
    data[end - 40 : end - 8] = bytes(32)  # inside exchange 1's compressed data
    broken = tmp_path / "broken.tape"
    broken.write_bytes(bytes(data))
    assert "get_weather" in run("show", broken, "2").stdout
    proc = run("show", broken, "1", code=1)
    assert proc.stderr.startswith("Error: ") and str(broken) in proc.stderr


def test_decode_on_embeddings_prints_its_json_and_says_what_it_is(tape: Path) -> None:
    proc = run("decode", tape, "4")
    body = json.loads(proc.stdout)
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    assert "not a completion" in proc.stderr and "/v1/embeddings" in proc.stderr
    assert "chat.completion" not in proc.stdout


def test_cat_text_is_a_git_textconv(tape: Path, tmp_path: Path) -> None:
    text = run("cat", tape, "--text").stdout
    assert text.count("=== #") == 4 and "[tool call get_weather]" in text
    assert "ms" not in text.split("=== #1", 1)[1].split("\n", 1)[0]  # no timing in the text
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
        ).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (repo / ".gitattributes").write_text("*.tape diff=streamtape\n")
    git("config", "diff.streamtape.textconv", "python -m streamtape cat --text")
    (repo / "w.tape").write_bytes(tape.read_bytes())
    git("add", ".")
    git("commit", "-qm", "one")
    exchanges = Cassette.open(tape).exchanges()
    write_cassette(repo / "w.tape", exchanges[:3])
    shown = git("diff")
    assert "-=== #4 POST /v1/embeddings -> 200 complete" in shown
    assert "Binary files" not in shown


def test_colour_on_a_terminal_plain_when_piped(tape: Path) -> None:
    assert "\x1b[" not in run("ls", tape).stdout + run("show", tape, "1").stdout
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "streamtape", "ls", str(tape)],
        stdout=follower,
        stderr=follower,
    ) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 0
    os.close(leader)
    assert b"\x1b[1m#" in seen  # the bold header row
