"""Shared fixtures: a real loopback upstream and the HTTP libraries our transports serve."""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from _corpus import CORPUS

from streamtape.simulator.app import UpstreamServer
from streamtape.transport.httpcompat import HTTP_LIBS

__all__ = ["CORPUS"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not CORPUS.is_dir():
        raise pytest.UsageError(f"CI is set but the recorded corpus is missing: {CORPUS}")


@pytest.fixture(scope="session")
def upstream() -> Iterator[UpstreamServer]:
    """The simulated OpenAI-compatible API on loopback, 20x faster than life."""
    with UpstreamServer(speed=20.0) as server:
        yield server


@pytest.fixture(params=HTTP_LIBS, ids=lambda lib: lib.__name__)
def http_lib(request: pytest.FixtureRequest) -> types.ModuleType:
    """httpx, and httpx2 where it is installed (the openai SDK >= 3 builds on it)."""
    lib: types.ModuleType = request.param
    return lib


@pytest.fixture
def tape_path(tmp_path: Path) -> Path:
    return tmp_path / "t.tape"


@pytest.fixture(scope="session")
def workload_tape(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Path:
    """One recording of the analysis tests' workload (tests/recordings.py); read it, never write."""
    from recordings import record_workload

    return record_workload(tmp_path_factory.mktemp("workload") / "workload.tape", upstream.base_url)
