"""Overhead of a replayed test: the streamtape pytest plugin vs vcrpy + pytest-recording.

Run: python benchmarks/bench_plugin.py [--tests N] [--runs N]
Needs the bench extra (``pip install -e '.[bench]'``: vcrpy, pytest-recording).

One generated suite of N streaming chat tests (default 50), each posting its own
prompt with ``httpx.Client().stream(...)`` and reading the SSE lines (httpx, not the
openai SDK, because vcrpy patches httpx only). The same suite runs three ways:

- ``streamtape``: ``@pytest.mark.tape``, recorded once with ``--tape-mode=once``;
- ``pytest-recording``: ``@pytest.mark.vcr``, recorded once with ``--record-mode=once``;
- ``floor``: no plugin; the client has an ``httpx.MockTransport`` answering with
  the same bytes from memory, the least a replayed test can cost.

Each suite builds its client once at import, as an application would, so the
figures are the plugins' costs, not the client's TLS setup.

Then each replays ``--runs`` times in fresh processes, taking turns. Printed per
way: suite wall time (process start to exit, median over runs), the in-pytest time
of the test phases, per-test setup and call (median over tests and runs), and the
cassette bytes on disk; then the ratios against pytest-recording and the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamtape.simulator.app import UpstreamServer  # noqa: E402

HEAD = """
import httpx, os, pytest
URL = os.environ["BENCH_URL"] + "/chat/completions"
HEADERS = {"authorization": "Bearer sk-bench-0123456789abcdefghijklmnop"}

CLIENT = httpx.Client()  # built once at import, as an application would

def ask(n, client=CLIENT):
    body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 40,
            "messages": [{"role": "user", "content": f"question {n}"}]}
    with client.stream("POST", URL, json=body, headers=HEADERS) as response:
        return sum(1 for line in response.iter_lines() if line.startswith("data: "))
"""

MARKED = """
@{marker}
def test_{n}():
    assert ask({n}) > 3
"""

FLOOR = """
BODIES = {bodies!r}

def answer(request):
    n = int(request.read().split(b"question ")[1].split(b'"')[0])
    return httpx.Response(200, headers={{"content-type": "text/event-stream"}},
                          content=BODIES[n])

MOCKED = httpx.Client(transport=httpx.MockTransport(answer))
"""
FLOOR_TEST = """
def test_{n}():
    assert ask({n}, MOCKED) > 3
"""

TIMING = """
import json, os, time, pytest
_T = {}

def _timed(phase):
    # tryfirst: outside every plugin's own wrapper, so their setup and teardown count.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def hook(item, *args):
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            _T.setdefault(item.nodeid, {})[phase] = time.perf_counter() - start
    return hook

pytest_runtest_setup = _timed("setup")
pytest_runtest_call = _timed("call")
pytest_runtest_teardown = _timed("teardown")

def pytest_sessionfinish(session):
    with open(os.environ["BENCH_TIMES"], "w") as f:
        json.dump(_T, f)
"""


def _suite(folder: Path, kind: str, tests: int, floor_bodies: dict[int, bytes]) -> None:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(TIMING)
    if kind == "floor":
        parts = [HEAD, FLOOR.format(bodies=floor_bodies)]
        parts += [FLOOR_TEST.format(n=n) for n in range(tests)]
    else:
        marker = "pytest.mark.tape" if kind == "streamtape" else "pytest.mark.vcr"
        parts = [HEAD, *(MARKED.format(marker=marker, n=n) for n in range(tests))]
    (folder / "test_suite.py").write_text("".join(parts))


PLUGINS = {
    "streamtape": ["-p", "streamtape.pytest_plugin", "-p", "no:recording"],
    "pytest-recording": ["-p", "recording", "-p", "no:streamtape.pytest_plugin"],
    "floor": ["-p", "no:recording", "-p", "no:streamtape.pytest_plugin"],
}
RECORD = {"streamtape": ["--tape-mode=once"], "pytest-recording": ["--record-mode=once"]}


def _pytest(folder: Path, kind: str, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    times = folder / "times.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]
    cmd += ["-p", "no:looptime_plugin", "-p", "no:benchmark", "-p", "no:hypothesispytest"]
    cmd += [*PLUGINS[kind], *extra, str(folder)]
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=folder, env={**env, "BENCH_TIMES": str(times)}, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{kind} suite failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, json.loads(times.read_text())


def _disk_bytes(folder: Path) -> int:
    found = [p for p in (folder / "cassettes").rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp, UpstreamServer(speed=200.0) as upstream:
        env["BENCH_URL"] = upstream.base_url
        base = Path(tmp)
        bodies = _floor_bodies(upstream.base_url, args.tests)
        kinds = ("streamtape", "pytest-recording", "floor")
        for kind in kinds:
            _suite(base / kind, kind, args.tests, bodies)
            if kind in RECORD:
                _pytest(base / kind, kind, RECORD[kind], env)
        upstream.stop()  # replay must not need it
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        phases: dict[str, dict[str, list[float]]] = {k: {"setup": [], "call": []} for k in kinds}
        # setup here is setup + teardown: what the plugin adds around the test body.
        for _ in range(args.runs):
            for kind in kinds:
                wall, times = _pytest(base / kind, kind, [], env)
                walls[kind].append(wall)
                phases[kind]["setup"] += [t["setup"] + t["teardown"] for t in times.values()]
                phases[kind]["call"] += [t["call"] for t in times.values()]
        _report(args, kinds, walls, phases, {k: _disk_bytes(base / k) for k in RECORD})


def _floor_bodies(url: str, tests: int) -> dict[int, bytes]:
    import httpx

    bodies = {}
    with httpx.Client() as client:
        for n in range(tests):
            body = {
                "model": "gpt-4o-mini",
                "stream": True,
                "max_tokens": 40,
                "messages": [{"role": "user", "content": f"question {n}"}],
            }
            headers = {"authorization": "Bearer sk-bench-0123456789abcdefghijklmnop"}
            bodies[n] = client.post(url + "/chat/completions", json=body, headers=headers).content
    return bodies


def _report(
    args: argparse.Namespace,
    kinds: tuple[str, ...],
    walls: dict[str, list[float]],
    phases: dict[str, dict[str, list[float]]],
    disk: dict[str, int],
) -> None:
    print(f"== {args.tests} replayed streaming tests per suite, {args.runs} runs, taking turns ==")
    header = ("way", "suite wall", "setup+teardown", "call/test", "cassettes")
    print(f"{header[0]:<18} {header[1]:>11} {header[2]:>15} {header[3]:>10} {header[4]:>11}")
    med = {k: statistics.median(walls[k]) for k in kinds}
    setup = {k: statistics.median(phases[k]["setup"]) for k in kinds}
    call = {k: statistics.median(phases[k]["call"]) for k in kinds}
    for k in kinds:
        size = f"{disk[k]:,} B" if k in disk else "-"
        print(
            f"{k:<18} {med[k]:>10.2f}s {setup[k] * 1e3:>13.3f}ms {call[k] * 1e3:>8.3f}ms {size:>11}"
        )
    st, pr, fl = "streamtape", "pytest-recording", "floor"
    print("\n-- ratios (> 1 means streamtape costs less) --")
    print(f"suite wall   pytest-recording / streamtape  {med[pr] / med[st]:6.2f}x")
    print(
        f"per test     pytest-recording / streamtape  "
        f"{(setup[pr] + call[pr]) / (setup[st] + call[st]):6.2f}x"
    )
    print(f"cassettes    pytest-recording / streamtape  {disk[pr] / disk[st]:6.2f}x")
    print("-- against the floor (in-memory MockTransport; < 1 is the price of replay) --")
    print(
        f"per test     floor / streamtape             "
        f"{(setup[fl] + call[fl]) / (setup[st] + call[st]):6.2f}x"
    )
    print(
        f"per test     floor / pytest-recording       "
        f"{(setup[fl] + call[fl]) / (setup[pr] + call[pr]):6.2f}x"
    )


if __name__ == "__main__":
    main()
