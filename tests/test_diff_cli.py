"""``streamtape diff`` on recorded cassettes: known changes are found and nothing else is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from recordings import edited, record_workload, run

from streamtape import Cassette
from streamtape.formats import assemble, summarize
from streamtape.simulator.app import UpstreamServer


@pytest.fixture(scope="module")
def tapes(
    tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer, workload_tape: Path
) -> dict[str, Path]:
    """Two recordings of the same requests, one of a slower server, one with another model."""
    root = tmp_path_factory.mktemp("diff")
    out = {
        "a": workload_tape,
        "b": record_workload(root / "b.tape", upstream.base_url),
        "model": record_workload(root / "model.tape", upstream.base_url, model="gpt-4o"),
    }
    with UpstreamServer(speed=2.0) as slow:
        out["slow"] = record_workload(root / "slow.tape", slow.base_url)
    return out


def diff_json(a: Path, b: Path, *extra: str, code: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run("diff", a, b, "--json", *extra, code=code).stdout)
    return data


def changed_fields(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["a"].rsplit("#", 1)[1], c["field"]) for p in result["pairs"] for c in p["changes"]]


def test_two_recordings_of_the_same_requests_are_equal(tapes: dict[str, Path]) -> None:
    result = diff_json(tapes["a"], tapes["b"], code=0)
    assert result["differs"] is False
    assert len(result["pairs"]) == 4 and not result["only_a"] and not result["only_b"]
    assert changed_fields(result) == []
    human = run("diff", tapes["a"], tapes["b"]).stdout
    assert "4 paired, 0 differ" in human and human.rstrip().endswith("equal")


def first_text(tape: Path) -> str:
    return summarize(assemble(Cassette.open(tape).exchanges()[0])).text


def test_one_changed_word_is_the_only_change(tapes: dict[str, Path], tmp_path: Path) -> None:
    text = first_text(tapes["b"])
    body = Cassette.open(tapes["b"]).exchanges()[0].body
    word = next(
        w
        for w in re.findall(r"\b[a-z]{5,}\b", text)
        if text.count(w) == 1 and f'"content":" {w}"'.encode() in body
    )
    changed = edited(
        tapes["b"],
        tmp_path / "word.tape",
        1,
        [(f'"content":" {word}"'.encode(), f'"content":" {word.upper()}"'.encode(), 1)],
    )
    result = diff_json(tapes["a"], changed, code=1)
    assert changed_fields(result) == [("1", "output[0].text")]
    words = result["pairs"][0]["changes"][0]["words"]
    assert [w for w in words if w[0] != "="] == [["-", word], ["+", word.upper()]]
    human = run("diff", tapes["a"], changed, code=1).stdout
    assert f"[-{word}-]{{+{word.upper()}+}}" in human and "1 differ" in human


def test_a_tool_argument_is_a_json_change(tapes: dict[str, Path], tmp_path: Path) -> None:
    changed = edited(
        tapes["b"],
        tmp_path / "tool.tape",
        2,
        [(b'"arguments":"{\\""', b'"arguments":"{\\"unit\\":\\"celsius\\",\\""', 1)],
    )
    result = diff_json(tapes["a"], changed, code=1)
    assert changed_fields(result) == [("2", "output[0].tool_calls[0].arguments.unit")]
    change = result["pairs"][1]["changes"][0]
    assert change["a"] is None and change["b"] == "celsius"


def test_a_stop_reason_change(tapes: dict[str, Path], tmp_path: Path) -> None:
    changed = edited(
        tapes["b"],
        tmp_path / "stop.tape",
        1,
        [(b'"finish_reason":"length"', b'"finish_reason":"stop"', 1)],
    )
    result = diff_json(tapes["a"], changed, code=1)
    assert changed_fields(result) == [("1", "output[0].stop_reason")]
    change = result["pairs"][0]["changes"][0]
    assert (change["a"], change["b"]) == ("length", "stop")


def test_volatile_fields_never_show(tapes: dict[str, Path], tmp_path: Path) -> None:
    body = Cassette.open(tapes["b"]).exchanges()[0].body.decode()
    ident = re.search(r'"id":"(chatcmpl-[^"]+)"', body)
    created = re.search(r'"created":(\d+)', body)
    fingerprint = re.search(r'"system_fingerprint":"([^"]+)"', body)
    assert ident and created and fingerprint
    changed = edited(
        tapes["b"],
        tmp_path / "volatile.tape",
        1,
        [
            (ident.group(1).encode(), b"chatcmpl-another-run", 0),
            (f'"created":{created.group(1)}'.encode(), b'"created":1', 0),
            (fingerprint.group(1).encode(), b"fp_elsewhere", 0),
        ],
    )
    assert (
        Cassette.open(changed).exchanges()[0].body != Cassette.open(tapes["a"]).exchanges()[0].body
    )
    result = diff_json(tapes["a"], changed, code=0)
    assert changed_fields(result) == []


def test_timing_beyond_tolerance_and_within_a_wider_one(tapes: dict[str, Path]) -> None:
    result = diff_json(tapes["a"], tapes["slow"], code=1)
    fields = changed_fields(result)
    assert fields and all(field.startswith("timing.") for _, field in fields)
    assert ("1", "timing.ttft_ms") in fields
    ttft = next(c for c in result["pairs"][0]["changes"] if c["field"] == "timing.ttft_ms")
    assert ttft["delta"] == pytest.approx(ttft["b"] - ttft["a"]) and ttft["b"] > 2 * ttft["a"]
    assert "beyond tolerance" in run("diff", tapes["a"], tapes["slow"], code=1).stdout
    diff_json(tapes["a"], tapes["slow"], "--timing-tolerance", "100000%", code=0)


def test_another_model_pairs_by_request_and_shows_model_and_text(tapes: dict[str, Path]) -> None:
    result = diff_json(tapes["a"], tapes["model"], code=1)
    fields = changed_fields(result)
    assert ("1", "model") in fields and ("2", "model") in fields
    assert ("1", "output[0].text") in fields
    assert all(
        n in ("1", "2") for n, _ in fields
    )  # the text completion and embeddings kept their model


def test_unpaired_exchanges_are_listed_and_pair_order_pairs_them(
    tapes: dict[str, Path], tmp_path: Path, upstream: UpstreamServer
) -> None:
    other = record_workload(
        tmp_path / "prompt.tape",
        upstream.base_url,
        prompt=[{"role": "user", "content": "Tell me about rivers."}],
    )
    result = diff_json(tapes["a"], other, code=1)
    assert [x.split(" ", 1)[1] for x in result["only_a"]] == ["POST /v1/chat/completions"]
    assert [x.split(" ", 1)[1] for x in result["only_b"]] == ["POST /v1/chat/completions"]
    assert result["only_a"][0].startswith(f"{tapes['a']}#1 ")
    human = run("diff", tapes["a"], other, code=1).stdout
    assert f"only in A: {tapes['a']}#1" in human and f"only in B: {other}#1" in human
    by_order = diff_json(tapes["a"], other, "--pair", "order", code=1)
    assert not by_order["only_a"] and not by_order["only_b"]
    assert ("1", "output[0].text") in changed_fields(by_order)
    assert all(n == "1" for n, _ in changed_fields(by_order))


def test_folders_pair_across_files(tapes: dict[str, Path], tmp_path: Path) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    right.mkdir()
    (left / "x.tape").write_bytes(tapes["a"].read_bytes())
    (right / "nested").mkdir()
    (right / "nested" / "y.tape").write_bytes(tapes["b"].read_bytes())
    result = diff_json(left, right, code=0)
    assert len(result["pairs"]) == 4


def test_errors_exit_2_with_one_line(tapes: dict[str, Path], tmp_path: Path) -> None:
    for args in (
        (tapes["a"], tmp_path / "missing.tape"),
        (tapes["a"], tapes["b"], "--timing-tolerance", "fast"),
    ):
        proc = run("diff", *args, code=2)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in proc.stderr
    junk = tmp_path / "junk.tape"
    junk.write_bytes(b"not a cassette")
    assert "not a streamtape cassette" in run("diff", tapes["a"], junk, code=2).stderr
