"""Faults through the pytest marker and ``fault_matrix``, run as a user runs them (pytester).

The inner suite records one chat answer, then replays it offline (the upstream
stopped) under ``@pytest.mark.tape(faults=...)`` and a fault matrix, with the openai
SDK unchanged; ``tape.faults`` says which fault fired where.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from plugin_support import live_upstream, run

from streamtape.pytest_plugin import STANDARD_FAULTS
from streamtape.simulator.app import UpstreamServer

pytest_plugins = ["pytester"]


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamServer]:
    yield from live_upstream(monkeypatch)


SUITE = """
import openai, pytest
from streamtape.pytest_plugin import fault_matrix

def ask(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me about streams."}],
        stream=True, max_tokens=20)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

def full(tape):
    return tape.responses[-1].choices[0].message.content

@pytest.mark.tape("answer")
def test_record(tape):
    assert ask(openai.OpenAI(max_retries=0))

@pytest.mark.tape("answer", faults=["status:429:attempts=2,retry-after=0.01"])
def test_the_sdk_retries_429(tape):
    text = ask(openai.OpenAI(max_retries=2))
    assert text == full(tape), tape.faults_report()
    assert [f.attempt for f in tape.faults] == [0, 1] and "HTTP 429" in tape.faults_report()

@pytest.mark.tape("answer", faults=["cut:token=2"])
def test_a_cut_answer_is_a_prefix(tape):
    text = ask(openai.OpenAI(max_retries=0))
    assert full(tape).startswith(text) and text != full(tape), tape.faults_report()
    assert "after token 2" in str(tape.faults[0])

@fault_matrix("answer")
def test_matrix(tape, fault):
    try:
        text = ask(openai.OpenAI(max_retries=2))
    except (openai.APIError, ValueError):
        assert fault.kind in ("cut", "error-event", "corrupt"), tape.faults_report()
    else:
        if fault.kind == "cut":
            assert full(tape).startswith(text) and text != full(tape), tape.faults_report()
        else:
            assert text == full(tape), tape.faults_report()
    assert tape.faults, "no fault fired"

@pytest.mark.tape("answer", faults=["cut:tokn=3"])
def test_bad_spec(tape):
    pass
"""


def test_marker_faults_and_the_matrix_replay_offline(
    pytester: pytest.Pytester, live: UpstreamServer
) -> None:
    pytester.makepyfile(test_faulty=SUITE)
    run(pytester, "--tape-mode=once", "-k", "test_record").assert_outcomes(passed=1)
    live.stop()
    result = run(pytester, "-k", "not test_record")
    result.assert_outcomes(passed=2 + len(STANDARD_FAULTS), errors=1)
    failure = [line for line in result.outlines if "bad fault spec" in line]
    assert failure and "unknown option 'tokn=3'" in failure[0] and "cut:token=N" in failure[0]
