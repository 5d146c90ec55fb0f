"""`streamtape record` and `streamtape serve` run as a user runs them: subprocesses and signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from _servers import GatedUpstream, RawResponse, exchange, gated_server, raw_request, sse

from streamtape import Cassette, Outcome, write_cassette
from streamtape.server.proxy import SHUTDOWN_CUT
from streamtape.simulator.runner import LoopbackServer

STREAMS = 20
READS = sse(*(json.dumps({"i": i}) for i in range(4)), "[DONE]")


class Running:
    """A CLI server in a subprocess, once it has said where it listens."""

    def __init__(self, *args: str | Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamtape", *map(str, args)],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.head: list[str] = []
        for line in self.proc.stderr:
            self.head.append(line)
            found = re.search(r"(?:recording|on) (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                return
        raise AssertionError(f"the server did not start: {''.join(self.head)}")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        self.proc.send_signal(sig)
        _, rest = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, rest
        return "".join(self.head) + rest


@pytest.fixture
def gated() -> Iterator[tuple[GatedUpstream, LoopbackServer]]:
    upstream = GatedUpstream(READS)
    with gated_server(upstream) as server:
        yield upstream, server


def open_streams(url: str) -> list[RawResponse]:
    """``STREAMS`` live streams, each past its first read."""
    responses = []
    for i in range(STREAMS):
        response = raw_request(f"{url}/v1/chat/completions", body=json.dumps({"n": i}).encode())
        assert next(response.chunks()) == READS[0]
        responses.append(response)
    return responses


def test_sigterm_lets_20_live_streams_finish_and_loses_none(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    upstream, server = gated
    tape = tmp_path / "live.tape"
    proxy = Running("record", "--upstream", server.url, "--cassette", tape,
                    "--listen", "127.0.0.1:0", "--grace", "30")  # fmt: skip
    responses = open_streams(proxy.url)
    proxy.proc.send_signal(signal.SIGTERM)
    upstream.release(STREAMS * (len(READS) - 1))
    bodies = [b"".join([READS[0], *r.chunks()]) for r in responses]
    for response in responses:
        response.close()
    log = proxy.stop()
    assert bodies == [b"".join(READS)] * STREAMS
    exchanges = Cassette.open(tape).exchanges()
    assert len(exchanges) == STREAMS and all(e.outcome is Outcome.COMPLETE for e in exchanges)
    assert sorted(json.loads(e.request.body)["n"] for e in exchanges) == list(range(STREAMS))
    assert len(re.findall(r"POST /v1/chat/completions 200 ttft [\d.]+ ms took", log)) == STREAMS
    assert f"wrote {STREAMS} exchange(s)" in log


def test_sigterm_past_the_grace_period_cuts_and_writes_every_stream(
    gated: tuple[GatedUpstream, LoopbackServer], tmp_path: Path
) -> None:
    _, server = gated
    tape = tmp_path / "cut.tape"
    proxy = Running("record", "--upstream", server.url, "--cassette", tape,
                    "--listen", "127.0.0.1:0", "--grace", "0.3", "--quiet")  # fmt: skip
    responses = open_streams(proxy.url)
    log = proxy.stop(signal.SIGINT)
    for response in responses:
        response.close()
    exchanges = Cassette.open(tape).exchanges()
    assert len(exchanges) == STREAMS
    assert all(e.outcome is Outcome.CLIENT_CLOSED and e.error == SHUTDOWN_CUT for e in exchanges)
    assert all(e.body == READS[0] for e in exchanges)
    assert "ttft" not in log and f"wrote {STREAMS} exchange(s)" in log


def test_serve_answers_the_openai_sdk_and_reports_a_miss(tmp_path: Path) -> None:
    tape = tmp_path / "served.tape"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    reply = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                          "finish_reason": "stop"}]}  # fmt: skip
    Cassette.open(tape).append(
        exchange(
            "http://x/v1/chat/completions",
            body,
            [json.dumps(reply).encode()],
            content_type="application/json",
        )
    )
    server = Running("serve", tape, "--listen", "127.0.0.1:0", "--pacing", "instant")
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="any", max_retries=0) as client:
        assert client.chat.completions.create(**body).choices[0].message.content == "hello"
        with pytest.raises(openai.NotFoundError, match="nearest recorded request"):
            client.chat.completions.create(**{**body, "model": "other"})
    log = server.stop(signal.SIGINT)
    assert "replaying 1 exchange(s) from 1 cassette(s)" in log
    assert "miss POST /v1/chat/completions: no recorded exchange matches" in log
    assert 'body.model: recorded "m" != sent "other"' in log


def test_a_non_loopback_listen_address_warns(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtape", "serve", str(tmp_path), "--listen", "0.0.0.0:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    second = proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert first.startswith("warning: listening on 0.0.0.0:0, which other machines can reach")
    assert "replaying 0 exchange(s)" in second and proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["serve", "nowhere.tape"], "nowhere.tape: no such cassette file or folder"),
        (["serve", "x.tape", "--listen", "localhost:http"], "expected HOST:PORT"),
        (["serve", "x.tape", "--pacing", "fastest"], "cannot understand pacing 'fastest'"),
        (["serve", "x.tape", "--mode", "all"], "--mode all needs --upstream URL"),
        (["record", "--upstream", "ftp://h", "--cassette", "t.tape"], "must be an http://"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    write_cassette(tmp_path / "x.tape", [])
    proc = subprocess.run(
        [sys.executable, "-m", "streamtape", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
