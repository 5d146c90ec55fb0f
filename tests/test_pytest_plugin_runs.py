"""The pytest plugin's timing and scale: pacing, virtual time, xdist, vcrpy migration.

Real inner test files under ``pytester``, as in ``test_pytest_plugin.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from plugin_support import FAKE_KEY, NO_ASYNC, PLUGIN, QUIET, live_upstream, run, tapes

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.simulator.app import UpstreamServer

pytest_plugins = ["pytester"]


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamServer]:
    yield from live_upstream(monkeypatch)


# --------------------------------------------------------------------------- pacing


def _chat_exchange(gap_ns: int, count: int) -> Exchange:
    """A chat stream whose reads were recorded ``gap_ns`` apart."""
    chunks = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
        }
        for i in range(count)
    ]
    events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
    events[-1] += b"data: [DONE]\n\n"
    body = {"messages": [{"content": "Count.", "role": "user"}], "model": "gpt-4o-mini"}
    return Exchange(
        request=RecordedRequest(
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            headers=[("content-type", "application/json")],
            body=json.dumps({**body, "stream": True}).encode(),
        ),
        status=200,
        response_headers=[("content-type", "text/event-stream")],
        reads=[Read((i + 1) * gap_ns, e) for i, e in enumerate(events)],
        headers_ns=gap_ns // 2,
        end_ns=count * gap_ns,
    )


def _write_tape(path: Path, *exchanges: Exchange) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Cassette(path) as cassette:
        for exchange in exchanges:
            cassette.append(exchange)


PACED_SUITE = """
import time, openai, pytest

GAP_S = {gap}
COUNT = {count}

def arrivals():
    client = openai.OpenAI(max_retries=0, api_key="sk-test", base_url="http://api.invalid/v1")
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "Count."}}], stream=True)
    return [time.perf_counter() - start for chunk in stream]

def check(tape, seen):
    assert len(seen) == COUNT
    if tape.pacing.instant:
        assert seen[-1] < GAP_S * COUNT  # far less than the recorded span
    else:  # original pacing never releases a read before its recorded offset
        assert all(t >= (i + 1) * GAP_S for i, t in enumerate(seen)), seen

@pytest.mark.tape("paced", pacing="original")
def test_marked_original(tape):
    seen = arrivals()
    assert not tape.pacing.instant
    check(tape, seen)

@pytest.mark.tape("paced")
def test_default(tape):
    check(tape, arrivals())
"""


def test_pacing_is_instant_by_default_and_original_on_request(pytester: pytest.Pytester) -> None:
    gap, count = 0.15, 4
    _write_tape(pytester.path / "cassettes" / "paced.tape", _chat_exchange(int(gap * 1e9), count))
    pytester.makepyfile(test_paced=PACED_SUITE.format(gap=gap, count=count))
    run(pytester).assert_outcomes(passed=2)
    result = run(pytester, "--tape-pacing=original", "-k", "default")
    result.assert_outcomes(passed=1)


LOOPTIME_SUITE = """
import asyncio, time, openai, pytest

@pytest.mark.asyncio
@pytest.mark.looptime
@pytest.mark.tape("slow", pacing="original")
async def test_virtual_time(tape):
    loop = asyncio.get_running_loop()
    client = openai.AsyncOpenAI(max_retries=0, api_key="sk-test", base_url="http://api.invalid/v1")
    wall, start = time.perf_counter(), loop.time()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count."}], stream=True)
    seen = [loop.time() - start async for chunk in stream]
    wall = time.perf_counter() - wall
    # The code under test saw the recorded 5 s on its loop's clock...
    assert [round(t, 3) for t in seen] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # ...and the run spent well under a second of real time.
    assert wall < 1.0, wall
"""


def test_looptime_replays_original_pacing_in_virtual_time(pytester: pytest.Pytester) -> None:
    pytest.importorskip("looptime")
    pytest.importorskip("pytest_asyncio")
    _write_tape(pytester.path / "cassettes" / "slow.tape", _chat_exchange(1_000_000_000, 5))
    pytester.makepyfile(test_slow=LOOPTIME_SUITE)
    scope = ("-o", "asyncio_default_fixture_loop_scope=function")
    result = pytester.runpytest(*PLUGIN, *QUIET, *scope)
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- xdist


XDIST_SUITE = """
import os, httpx, pytest

# httpx rather than the SDK here: four workers start faster without importing openai.
URL = os.environ["OPENAI_BASE_URL"]
AUTH = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
CLIENT = httpx.Client(headers=AUTH)

@pytest.mark.parametrize("n", range(6))
@pytest.mark.tape("shared")
def test_shared(n, tape):
    body = {"model": "gpt-4o-mini", "max_tokens": 8, "stream": True,
            "messages": [{"role": "user", "content": f"prompt {n}"}]}
    with CLIENT.stream("POST", URL + "/chat/completions", json=body) as reply:
        assert b"data: [DONE]" in reply.read()

@pytest.mark.parametrize("n", range(2))
@pytest.mark.tape
def test_own(n):
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": f"own {n}", "max_tokens": 4}
    assert CLIENT.post(URL + "/completions", json=body).status_code == 200
"""


def test_xdist_workers_record_and_replay_one_suite_without_corruption(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_par=XDIST_SUITE)
    lean = ("-p", "no:hypothesispytest", "-p", "no:benchmark")
    args = (*PLUGIN, *QUIET, *NO_ASYNC, *lean, "-n", "4")
    pytester.runpytest_subprocess(*args, "--tape-mode=new_episodes").assert_outcomes(passed=8)
    shared = Cassette.open(pytester.path / "cassettes" / "shared.tape", strict=True)
    prompts = sorted(json.loads(ex.request.body)["messages"][0]["content"] for ex in shared)
    assert prompts == [f"prompt {n}" for n in range(6)]  # six writers, one intact file
    assert len(tapes(pytester)) == 3

    live.stop()
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=8)


# --------------------------------------------------------------------------- migration


def test_a_vcrpy_cassette_imports_and_replays_through_the_plugin(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    vcr = pytest.importorskip("vcr")
    pytest.importorskip("yaml")
    body = {
        "messages": [{"role": "user", "content": "From vcrpy."}],
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "stream": True,
    }
    yaml_path = pytester.path / "cassettes" / "test_migrated" / "test_migrated.yaml"
    # vcrpy patches httpx only (not httpx2), so it records with a plain httpx client.
    with vcr.use_cassette(str(yaml_path)), httpx.Client() as client:
        with client.stream(
            "POST",
            live.base_url + "/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {FAKE_KEY}"},
        ) as response:
            live_body = b"".join(response.iter_raw())
    assert FAKE_KEY in yaml_path.read_text()  # vcrpy kept the key; the import must not

    done = subprocess.run(
        [sys.executable, "-m", "streamtape", "import", str(yaml_path), "--gap", "0.01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 exchange(s)" in done.stdout
    tape_path = yaml_path.with_suffix(".tape")
    [exchange] = Cassette.open(tape_path).exchanges()
    assert exchange.body == live_body and len(exchange.reads) > 3
    assert FAKE_KEY not in repr(exchange.request) and exchange.redacted

    live.stop()
    pytester.makepyfile(
        test_migrated="""
        import openai, pytest

        @pytest.mark.tape
        def test_migrated(tape):
            stream = openai.OpenAI(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", max_tokens=20, stream=True,
                messages=[{"role": "user", "content": "From vcrpy."}])
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert text == tape.responses[0].choices[0].message.content
        """
    )
    run(pytester, "--tape-strict").assert_outcomes(passed=1)
